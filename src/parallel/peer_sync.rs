//! What one replica of a data-parallel run needs to agree with the others: its share
//! of each batch, and sums over all replicas through burn-collective's all-reduce.
//!
//! Every all-reduce blocks until all peers have called it, on the same tensors in the
//! same order, so each replica runs on a thread of its own and calls exactly the same
//! sequence of sums (one per optimizer step, whether or not its share was empty).

use burn::collective::{
    all_reduce, finish_collective, register, reset_collective, CollectiveConfig, PeerId,
    ReduceOperation,
};
use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorPrimitive;

use crate::optim::run_concurrently;

/// One replica's place in the group: `index` of `count`, and its collective peer id
/// when there is more than one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSync {
    peer: Option<PeerId>,
    index: usize,
    count: usize,
}

impl PeerSync {
    /// The only replica: shares are everything and sums are the values themselves.
    pub fn single() -> Self {
        Self {
            peer: None,
            index: 0,
            count: 1,
        }
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// This replica's contiguous part of `items` when they are cut into `count`
    /// near-equal parts (the first ones one longer). It may be empty.
    pub fn share<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let base = items.len() / self.count;
        let extra = items.len() % self.count;
        let start = self.index * base + self.index.min(extra);
        let len = base + usize::from(self.index < extra);
        &items[start..start + len]
    }

    /// The sum of every replica's gradients, on every replica. A parameter this
    /// replica has no gradient for (an empty share) takes part with zeros, so that all
    /// replicas reduce the same parameters.
    pub fn sum_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        model: &M,
        mut grads: GradientsParams,
    ) -> GradientsParams {
        let Some(peer) = self.peer else {
            return grads;
        };
        model.visit(&mut FillMissingWithZeros::<B> {
            grads: &mut grads,
            _backend: std::marker::PhantomData,
        });
        grads
            .all_reduce::<B::InnerBackend>(peer, ReduceOperation::Sum)
            .unwrap_or_else(|e| panic!("gradient all-reduce failed on {peer}: {e:?}"))
    }

    /// The sum over all replicas of each of `values` (a step's statistics).
    pub fn sum_values<B: Backend>(&self, values: &[f64], device: &B::Device) -> Vec<f64> {
        let Some(peer) = self.peer else {
            return values.to_vec();
        };
        let tensor = Tensor::<B, 1>::from_data(TensorData::from(values), device);
        let summed = all_reduce::<B>(peer, tensor.into_primitive().tensor(), ReduceOperation::Sum)
            .unwrap_or_else(|e| panic!("all-reduce of step statistics failed on {peer}: {e:?}"));
        Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(summed))
            .into_data()
            .convert::<f64>()
            .to_vec()
            .expect("a float tensor converts to f64")
    }
}

/// The replicas of a run, registered with burn-collective (several devices) or not
/// (one device).
pub struct PeerGroup<B: Backend> {
    pub syncs: Vec<PeerSync>,
    devices: Vec<B::Device>,
}

impl<B: Backend> PeerGroup<B> {
    /// Registers one peer per device. The collective is per backend type and per
    /// process, so a second group of the same backend must not run at the same time;
    /// registering resets whatever an earlier group left behind.
    pub fn register(devices: &[B::Device]) -> anyhow::Result<Self> {
        let count = devices.len();
        if count <= 1 {
            return Ok(Self {
                syncs: vec![PeerSync::single()],
                devices: devices.to_vec(),
            });
        }
        reset_collective::<B>();
        let config = CollectiveConfig::default().with_num_devices(count);
        let jobs: Vec<(usize, B::Device)> = devices.iter().cloned().enumerate().collect();
        // Registration returns once every peer has registered: one thread per peer.
        let results = run_concurrently(jobs, |(index, device)| {
            register::<B>(PeerId::from(index), device, config.clone())
        });
        for (index, result) in results.into_iter().enumerate() {
            result.map_err(|e| {
                anyhow::anyhow!("device {index}: burn-collective registration failed: {e:?}")
            })?;
        }
        let syncs = (0..count)
            .map(|index| PeerSync {
                peer: Some(PeerId::from(index)),
                index,
                count,
            })
            .collect();
        Ok(Self {
            syncs,
            devices: devices.to_vec(),
        })
    }

    pub fn len(&self) -> usize {
        self.syncs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.syncs.is_empty()
    }

    /// Unregisters every peer.
    pub fn finish(self) -> anyhow::Result<()> {
        let peers: Vec<PeerId> = self.syncs.iter().filter_map(|s| s.peer).collect();
        if peers.is_empty() {
            return Ok(());
        }
        drop(self.devices);
        for (peer, result) in peers
            .iter()
            .zip(run_concurrently(peers.clone(), finish_collective::<B>))
        {
            result.map_err(|e| anyhow::anyhow!("{peer}: burn-collective finish failed: {e:?}"))?;
        }
        Ok(())
    }
}

/// Registers a zero gradient for every trainable parameter that has none.
struct FillMissingWithZeros<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for FillMissingWithZeros<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        if value.is_require_grad() && self.grads.get::<B::InnerBackend, D>(param.id).is_none() {
            let zeros = Tensor::<B::InnerBackend, D>::zeros(value.shape(), &value.device());
            self.grads.register(param.id, zeros);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_items_once_in_order() {
        let items: Vec<usize> = (0..7).collect();
        let parts: Vec<&[usize]> = (0..3)
            .map(|index| {
                PeerSync {
                    peer: None,
                    index,
                    count: 3,
                }
                .share(&items)
            })
            .collect();
        assert_eq!(parts, [&[0, 1, 2][..], &[3, 4], &[5, 6]]);
        let two = PeerSync {
            peer: None,
            index: 1,
            count: 2,
        };
        assert!(two.share(&[9usize]).is_empty());
        assert_eq!(PeerSync::single().share(&items), &items[..]);
    }
}
