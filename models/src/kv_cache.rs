//! Key/value cache for incremental decoding: per layer, keys and values (after RoPE)
//! of every position written so far, preallocated to the sequence capacity so that a
//! decode step writes in place instead of concatenating.

use burn::prelude::*;

#[derive(Debug, Clone)]
pub struct LayerCache<B: Backend> {
    /// `[batch, kv_heads, capacity, head_dim]`; `None` only while being written
    /// (see [`LayerCache::append`]).
    keys: Option<Tensor<B, 4>>,
    values: Option<Tensor<B, 4>>,
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
        let capacity = self.capacity();
        assert!(
            self.len + seq <= capacity,
            "KV cache overflow: {} + {seq} positions > capacity {capacity}",
            self.len
        );
        let end = self.len + seq;
        let range = [0..batch, 0..heads, self.len..end, 0..dim];
        // The cache is moved out, not cloned, before the write: a backend writes in
        // place only into a buffer nobody else holds, and a clone would make it copy
        // the whole cache on every decode step.
        let write = |slot: &mut Option<Tensor<B, 4>>, new: Tensor<B, 4>| {
            let cache = slot
                .take()
                .expect("the cache is put back after every write");
            let cache = cache.slice_assign(range.clone(), new);
            let written = cache.clone().slice([0..batch, 0..heads, 0..end, 0..dim]);
            *slot = Some(cache);
            written
        };
        let keys = write(&mut self.keys, keys);
        let values = write(&mut self.values, values);
        self.len = end;
        (keys, values)
    }

    fn capacity(&self) -> usize {
        self.keys.as_ref().map_or(0, |k| k.dims()[2])
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
        options: (&B::Device, burn::tensor::DType),
    ) -> Self {
        let empty = || Tensor::zeros([batch, kv_heads, capacity, head_dim], options);
        Self {
            layers: (0..num_layers)
                .map(|_| LayerCache {
                    keys: Some(empty()),
                    values: Some(empty()),
                    len: 0,
                })
                .collect(),
        }
    }

    /// A cache whose row `i` is row `rows[i]` of this one (rows may repeat): how a
    /// prompt prefilled once is handed to every response sampled from it.
    pub fn select_rows(self, rows: Tensor<B, 1, Int>) -> Self {
        let pick = |t: Option<Tensor<B, 4>>| t.map(|t| t.select(0, rows.clone()));
        Self {
            layers: self
                .layers
                .into_iter()
                .map(|layer| LayerCache {
                    keys: pick(layer.keys),
                    values: pick(layer.values),
                    len: layer.len,
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
        self.layers.first().map_or(0, LayerCache::capacity)
    }
}
