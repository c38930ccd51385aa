//! Key/value cache for incremental decoding: per layer, keys and values (after RoPE)
//! of every position written so far, preallocated to the sequence capacity so that a
//! decode step writes in place instead of concatenating.

use burn::prelude::*;

#[derive(Debug, Clone)]
pub struct LayerCache<B: Backend> {
    /// `[batch, kv_heads, capacity, head_dim]`.
    keys: Tensor<B, 4>,
    values: Tensor<B, 4>,
    /// Number of positions written.
    len: usize,
}

impl<B: Backend> LayerCache<B> {
    /// Writes this chunk's keys/values `[batch, kv_heads, seq, head_dim]` after the
    /// existing ones and returns all of them, `[batch, kv_heads, len + seq, head_dim]`.
    pub fn append(
        &mut self,
        keys: Tensor<B, 4>,
        values: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let [batch, heads, seq, dim] = keys.dims();
        let capacity = self.keys.dims()[2];
        assert!(
            self.len + seq <= capacity,
            "KV cache overflow: {} + {seq} positions > capacity {capacity}",
            self.len
        );
        let end = self.len + seq;
        let range = [0..batch, 0..heads, self.len..end, 0..dim];
        self.keys = self.keys.clone().slice_assign(range.clone(), keys);
        self.values = self.values.clone().slice_assign(range, values);
        self.len = end;
        let written = [0..batch, 0..heads, 0..end, 0..dim];
        (
            self.keys.clone().slice(written.clone()),
            self.values.clone().slice(written),
        )
    }
}

#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    layers: Vec<LayerCache<B>>,
}

impl<B: Backend> KvCache<B> {
    pub fn new(
        num_layers: usize,
        batch: usize,
        kv_heads: usize,
        capacity: usize,
        head_dim: usize,
        device: &B::Device,
    ) -> Self {
        let empty = || Tensor::zeros([batch, kv_heads, capacity, head_dim], device);
        Self {
            layers: (0..num_layers)
                .map(|_| LayerCache {
                    keys: empty(),
                    values: empty(),
                    len: 0,
                })
                .collect(),
        }
    }

    pub fn layer(&mut self, index: usize) -> &mut LayerCache<B> {
        &mut self.layers[index]
    }

    /// Positions written so far (the same in every layer).
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.layers.first().map_or(0, |l| l.keys.dims()[2])
    }
}
