//! Scaled dot-product attention with grouped-query heads and a backward of its own,
//! for the CPU training step.
//!
//! `out = softmax(q·kᵀ / √d, masked) · v` with `q [batch, heads, queries, d]` and `k`,
//! `v [batch, kv_heads, keys, d]`: query head `h` reads key/value head
//! `h / (heads / kv_heads)`. A key is hidden from a query where the boolean mask is
//! true and, with `is_causal`, where it lies after the query (the boundary at the
//! bottom-right corner when there are more keys than queries, as after a KV cache). A
//! query that sees no key gets zeros, as in burn's attention.
//!
//! burn's attention wants one key/value head per query head and is composed of
//! operations: a product, two mask fills, a max, an exponential, a sum and a division
//! over the `[batch, heads, queries, keys]` scores, another product, and under autodiff
//! a backward for each, with copies of the broadcast mask and of permuted views in
//! between. On burn-flex this runs per `(batch, head)` pair on rayon's pool instead:
//! one `gemm` call for the scores, the masked softmax in place while the row is in
//! cache, one `gemm` for the output, written straight into the `[batch, queries,
//! heads, d]` order that the output projection reads (the result is a permuted view of
//! it, so the decoder's reshape copies nothing). The forward keeps the probabilities
//! for the backward (as burn's keeps its softmax), and the backward is four products
//! and one pass over the scores: `∂v = pᵀ·∂out`, `∂p = ∂out·vᵀ`,
//! `∂s = p ⊙ (∂p − Σ p ⊙ ∂p)`, `∂q = ∂s·k / √d`, `∂k = ∂sᵀ·q / √d`, with `∂k` and `∂v`
//! summed over the query heads of a group.
//!
//! Other backends run burn's attention (and its autodiff), with the query heads of a
//! group stacked along the query axis so that keys and values are not repeated.

use burn::prelude::*;
use burn::tensor::ops::{AttentionModuleOptions, BoolTensor, FloatTensor};
use burn::tensor::{TensorMetadata, TensorPrimitive};

use crate::backend_ext::FusedLayerBackend;

/// Attention of `q [batch, heads, queries, d]` over `k`, `v [batch, kv_heads, keys, d]`
/// (`kv_heads` divides `heads`), scaled by `1/√d`; `mask [batch, 1 or heads, queries,
/// keys]` is true where a key is hidden. Returns `[batch, heads, queries, d_v]`.
/// Differentiable on `Autodiff<B>` with respect to `q`, `k` and `v`.
pub fn attention<B: FusedLayerBackend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
    is_causal: bool,
) -> Tensor<B, 4> {
    let [batch, heads, queries, d] = q.dims();
    let [k_batch, kv_heads, keys, k_d] = k.dims();
    let [v_batch, v_heads, v_keys, _] = v.dims();
    assert!(
        k_batch == batch && v_batch == batch && v_heads == kv_heads && v_keys == keys && k_d == d,
        "attention: q {:?}, k {:?}, v {:?} do not fit",
        q.dims(),
        k.dims(),
        v.dims()
    );
    assert!(
        kv_heads > 0 && heads % kv_heads == 0,
        "attention: {heads} query heads over {kv_heads} key/value heads"
    );
    if let Some(mask) = &mask {
        let [mask_batch, mask_heads, mask_queries, mask_keys] = mask.dims();
        assert!(
            mask_batch == batch
                && (mask_heads == 1 || mask_heads == heads)
                && mask_queries == queries
                && mask_keys == keys,
            "attention: mask {:?} for {heads} heads, {queries} queries, {keys} keys",
            mask.dims()
        );
    }
    let out = B::scaled_attention(
        q.into_primitive().tensor(),
        k.into_primitive().tensor(),
        v.into_primitive().tensor(),
        mask.map(Tensor::into_primitive),
        is_causal,
    );
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// `1/√d`, the scale of the scores (burn's default).
fn scale_of<B: Backend>(q: &FloatTensor<B>) -> f32 {
    let d = q.shape()[3];
    1.0 / (d as f32).sqrt()
}

/// The plain-tensor version: the trait's defaults and the tests' oracle.
pub mod reference {
    use super::*;
    use crate::backend_ext::{float, primitive};
    use burn::tensor::TensorData;

    fn options(is_causal: bool) -> AttentionModuleOptions {
        AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal,
        }
    }

    /// Every hidden key as one mask of `shape = [batch, heads, queries, keys]`, the
    /// causal rule included; `None` when nothing is hidden.
    fn hidden_keys<B: Backend>(
        mask: Option<BoolTensor<B>>,
        is_causal: bool,
        shape: [usize; 4],
        device: &B::Device,
    ) -> Option<Tensor<B, 4, Bool>> {
        let mask = mask.map(|mask| Tensor::<B, 4, Bool>::from_primitive(mask).expand(shape));
        if !is_causal {
            return mask;
        }
        let [_, _, queries, keys] = shape;
        let causal = stacked_causal_mask::<B>(1, queries, keys, device).expand(shape);
        Some(match mask {
            Some(mask) => mask.bool_or(causal),
            None => causal,
        })
    }

    /// `[1, 1, groups · queries, keys]`, true where stacked query row `g · queries + t`
    /// (query `t`, after the `keys − queries` keys before it) must not see a key.
    fn stacked_causal_mask<B: Backend>(
        groups: usize,
        queries: usize,
        keys: usize,
        device: &B::Device,
    ) -> Tensor<B, 4, Bool> {
        let offset = keys as i64 - queries as i64;
        let hidden: Vec<bool> = (0..groups * queries)
            .flat_map(|row| {
                let query = (row % queries) as i64;
                (0..keys as i64).map(move |key| key > query + offset)
            })
            .collect();
        Tensor::from_data(
            TensorData::new(hidden, [1, 1, groups * queries, keys]),
            device,
        )
    }

    /// `[batch, kv_heads, keys, d]` → `[batch, heads, keys, d]`: each key/value head
    /// repeated for the query heads of its group.
    fn repeat_heads<B: Backend>(t: Tensor<B, 4>, heads: usize) -> Tensor<B, 4> {
        let [batch, kv_heads, keys, d] = t.dims();
        t.reshape([batch, kv_heads, 1, keys, d])
            .expand([batch, kv_heads, heads / kv_heads, keys, d])
            .reshape([batch, heads, keys, d])
    }

    /// The adjoint of [`repeat_heads`]: the sum over the query heads of each group.
    fn sum_groups<B: Backend>(t: Tensor<B, 4>, kv_heads: usize) -> Tensor<B, 4> {
        let [batch, heads, keys, d] = t.dims();
        t.reshape([batch, kv_heads, heads / kv_heads, keys, d])
            .sum_dim(2)
            .reshape([batch, kv_heads, keys, d])
    }

    /// The backend's own attention. With several query heads per key/value head, the
    /// heads of a group are stacked along the query axis, `[batch, kv_heads, groups ·
    /// queries, d]`, each stacked row with its own mask row, so that keys and values
    /// are not repeated (which would copy a whole KV cache on every decode step).
    pub fn forward<B: Backend>(
        q: FloatTensor<B>,
        k: FloatTensor<B>,
        v: FloatTensor<B>,
        mask: Option<BoolTensor<B>>,
        is_causal: bool,
    ) -> FloatTensor<B> {
        let [batch, heads, queries, d] = q.shape().dims::<4>();
        let [_, kv_heads, keys, _] = k.shape().dims::<4>();
        let value_width = v.shape()[3];
        let groups = heads / kv_heads;
        let full = [batch, heads, queries, keys];
        if groups == 1 {
            let mask = mask.map(|mask| {
                Tensor::<B, 4, Bool>::from_primitive(mask)
                    .expand(full)
                    .into_primitive()
            });
            return B::attention(q, k, v, mask, None, options(is_causal));
        }
        let device = B::float_device(&q);
        let stacked_rows = [batch, kv_heads, groups * queries, keys];
        let hidden = match (mask, is_causal) {
            // The causal rule alone: one `[groups · queries, keys]` pattern, broadcast
            // over batch and key/value heads as a view.
            (None, true) => {
                Some(stacked_causal_mask::<B>(groups, queries, keys, &device).expand(stacked_rows))
            }
            (mask, is_causal) => hidden_keys::<B>(mask, is_causal, full, &device)
                .map(|mask| mask.reshape(stacked_rows)),
        }
        .map(Tensor::into_primitive);
        let q = B::float_reshape(q, Shape::new([batch, kv_heads, groups * queries, d]));
        let out = B::attention(q, k, v, hidden, None, options(false));
        B::float_reshape(out, Shape::new([batch, heads, queries, value_width]))
    }

    /// `(out, probabilities)` from burn's operations, the formula of burn's attention;
    /// keys and values are repeated per query head.
    pub fn forward_with_probabilities<B: Backend>(
        q: FloatTensor<B>,
        k: FloatTensor<B>,
        v: FloatTensor<B>,
        mask: Option<BoolTensor<B>>,
        is_causal: bool,
    ) -> (FloatTensor<B>, FloatTensor<B>) {
        let scale = scale_of::<B>(&q);
        let q = float::<B, 4>(q);
        let [batch, heads, queries, _] = q.dims();
        let (k, v) = (
            repeat_heads(float::<B, 4>(k), heads),
            repeat_heads(float::<B, 4>(v), heads),
        );
        let keys = k.dims()[2];
        let device = q.device();
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
        let scores = match hidden_keys::<B>(mask, is_causal, [batch, heads, queries, keys], &device)
        {
            Some(mask) => scores.mask_fill(mask, f32::NEG_INFINITY),
            None => scores,
        };
        // The dtype's own limits, as burn's attention: a row with every key hidden
        // becomes zeros.
        let limits = scores.dtype().finfo().expect("float scores");
        let max = scores.clone().max_dim(3).clamp_min(limits.min);
        let exp = (scores - max).exp();
        let sum = exp.clone().sum_dim(3).clamp_min(limits.min_positive);
        let probabilities = exp / sum;
        (
            primitive(probabilities.clone().matmul(v)),
            primitive(probabilities),
        )
    }

    /// `(∂q, ∂k, ∂v)` from burn's operations.
    pub fn backward<B: Backend>(
        q: FloatTensor<B>,
        k: FloatTensor<B>,
        v: FloatTensor<B>,
        probabilities: FloatTensor<B>,
        grad: FloatTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
        let scale = scale_of::<B>(&q);
        let (q, p, grad) = (
            float::<B, 4>(q),
            float::<B, 4>(probabilities),
            float::<B, 4>(grad),
        );
        let heads = q.dims()[1];
        let kv_heads = k.shape()[1];
        let (k, v) = (
            repeat_heads(float::<B, 4>(k), heads),
            repeat_heads(float::<B, 4>(v), heads),
        );
        let grad_v = p.clone().swap_dims(2, 3).matmul(grad.clone());
        let grad_p = grad.matmul(v.swap_dims(2, 3));
        let dot = (p.clone() * grad_p.clone()).sum_dim(3);
        let grad_s = p * (grad_p - dot);
        let grad_q = grad_s.clone().matmul(k).mul_scalar(scale);
        let grad_k = grad_s.swap_dims(2, 3).matmul(q).mul_scalar(scale);
        (
            primitive(grad_q),
            primitive(sum_groups(grad_k, kv_heads)),
            primitive(sum_groups(grad_v, kv_heads)),
        )
    }
}

/// burn-flex: per `(batch, head)` pair, `gemm` calls over the tensors' buffers in
/// whatever layout they have, and the softmax in place.
#[cfg(feature = "flex")]
pub(crate) mod flex {
    use super::*;
    use crate::backend_ext::all_f32;
    use crate::flex_gemm::{product, Destination, Matrix, Unwritten};
    use crate::flex_slices::{flex_tensor, strided_flex_tensor};
    use crate::{fast_exp, lanes};
    use burn::backend::flex::FlexTensor;
    use burn::backend::Flex;
    use burn::tensor::DType;
    use gemm::Parallelism;
    use rayon::prelude::*;

    /// The mask as bytes, read with its strides (a broadcast mask has zero strides).
    struct HiddenKeys<'a> {
        bytes: &'a [u8],
        start: isize,
        strides: [isize; 4],
    }

    impl<'a> HiddenKeys<'a> {
        fn of(mask: &'a FlexTensor) -> Self {
            let s = mask.layout().strides();
            // A mask with one head applies to every head.
            let head_stride = if mask.layout().shape()[1] == 1 {
                0
            } else {
                s[1]
            };
            Self {
                bytes: mask.bytes(),
                start: mask.layout().start_offset() as isize,
                strides: [s[0], head_stride, s[2], s[3]],
            }
        }

        /// Sets the scores of the keys hidden from query `row` of pair `(b, h)` to −∞.
        fn hide(&self, b: usize, h: usize, row: usize, scores: &mut [f32]) {
            let [sb, sh, sr, sc] = self.strides;
            let first = self.start + b as isize * sb + h as isize * sh + row as isize * sr;
            if sc == 1 {
                let hidden = &self.bytes[first as usize..first as usize + scores.len()];
                for (s, &hidden) in scores.iter_mut().zip(hidden) {
                    if hidden != 0 {
                        *s = f32::NEG_INFINITY;
                    }
                }
            } else {
                for (col, s) in scores.iter_mut().enumerate() {
                    if self.bytes[(first + col as isize * sc) as usize] != 0 {
                        *s = f32::NEG_INFINITY;
                    }
                }
            }
        }
    }

    /// The sizes of one call.
    #[derive(Clone, Copy)]
    struct Sizes {
        batch: usize,
        heads: usize,
        kv_heads: usize,
        queries: usize,
        keys: usize,
        d: usize,
        value_width: usize,
    }

    impl Sizes {
        fn of(q: &FlexTensor, k: &FlexTensor, v: &FlexTensor) -> Self {
            let (qs, ks, vs) = (q.layout().shape(), k.layout().shape(), v.layout().shape());
            Self {
                batch: qs[0],
                heads: qs[1],
                kv_heads: ks[1],
                queries: qs[2],
                keys: ks[2],
                d: qs[3],
                value_width: vs[3],
            }
        }

        /// The key/value head that query head `h` reads.
        fn kv_head(&self, h: usize) -> usize {
            h / (self.heads / self.kv_heads)
        }

        /// Pair `(b, h)`'s `[queries, width]` block in a buffer laid out `[batch,
        /// queries, heads, width]`, the order the output projection reads.
        fn token_major(
            &self,
            buffer: Destination,
            b: usize,
            h: usize,
            width: usize,
        ) -> Destination {
            let offset = (b * self.queries * self.heads + h) * width;
            Destination {
                // SAFETY: (b, h) indexes a block inside a buffer of that layout.
                first: unsafe { buffer.first.add(offset) },
                row_stride: (self.heads * width) as isize,
            }
        }

        /// A `[batch, heads, queries, width]` tensor over a `[batch, queries, heads,
        /// width]` buffer.
        fn heads_view(&self, values: Vec<f32>, width: usize) -> FlexTensor {
            let (q, h) = (self.queries, self.heads);
            strided_flex_tensor(
                values,
                Shape::new([self.batch, h, q, width]),
                vec![
                    (q * h * width) as isize,
                    width as isize,
                    (h * width) as isize,
                    1,
                ],
            )
        }
    }

    /// The shapes this path handles: f32 values, the same batch size, `kv_heads` dividing
    /// `heads`, no empty dimension, a one-byte boolean mask of one or all heads.
    fn supported(
        q: &FlexTensor,
        k: &FlexTensor,
        v: &FlexTensor,
        mask: Option<&FlexTensor>,
    ) -> bool {
        let (qs, ks, vs) = (q.layout().shape(), k.layout().shape(), v.layout().shape());
        if qs.num_dims() != 4 || ks.num_dims() != 4 || vs.num_dims() != 4 {
            return false;
        }
        let nonempty = (0..4).all(|i| qs[i] > 0 && ks[i] > 0 && vs[i] > 0);
        let grid =
            qs[0] == ks[0] && ks[0] == vs[0] && ks[1] == vs[1] && ks[1] > 0 && qs[1] % ks[1] == 0;
        let inner = qs[3] == ks[3] && ks[2] == vs[2];
        let mask_fits = mask.is_none_or(|m| {
            let ms = m.layout().shape();
            matches!(m.dtype(), DType::Bool(_))
                && m.dtype().size() == 1
                && ms.num_dims() == 4
                && ms[0] == qs[0]
                && (ms[1] == 1 || ms[1] == qs[1])
                && ms[2] == qs[2]
                && ms[3] == ks[2]
        });
        nonempty && all_f32::<Flex>(&[q, k, v]) && grid && inner && mask_fits
    }

    /// `out` and, with `keep`, the probabilities `[batch, heads, queries, keys]`.
    fn forward_pairs(
        q: &FlexTensor,
        k: &FlexTensor,
        v: &FlexTensor,
        mask: Option<&FlexTensor>,
        is_causal: bool,
        keep: bool,
    ) -> (FlexTensor, Option<FlexTensor>) {
        let n = Sizes::of(q, k, v);
        let scale = scale_of::<Flex>(q);
        let hidden = mask.map(HiddenKeys::of);
        // Causal: key `col` is hidden from query `row` where col > row + offset.
        let offset = n.keys as isize - n.queries as isize;
        let mut out = Unwritten::new(n.batch * n.queries * n.heads * n.value_width);
        let out_start = out.start();
        let scores_per_pair = n.queries * n.keys;
        // One pair: scores (into the task's own `[queries, keys]` block), the masked
        // softmax in place, then the output rows.
        let pair = |pair: usize, scores_out: Destination| {
            let (b, h) = (pair / n.heads, pair % n.heads);
            let kv = n.kv_head(h);
            let (qm, km, vm) = (
                Matrix::of(q, &[b, h]),
                Matrix::of(k, &[b, kv]),
                Matrix::of(v, &[b, kv]),
            );
            // SAFETY: `scores_out` is this task's own block.
            unsafe {
                product(
                    scores_out,
                    n.queries,
                    n.keys,
                    n.d,
                    qm,
                    km.transposed(),
                    scale,
                    false,
                    Parallelism::None,
                )
            };
            // SAFETY: the product above wrote the whole block.
            let scores = unsafe { scores_out.written(scores_per_pair) };
            for (row, scores) in scores.chunks_mut(n.keys).enumerate() {
                if let Some(hidden) = &hidden {
                    hidden.hide(b, h, row, scores);
                }
                if is_causal {
                    // Keys after `row + offset` are in the query's future.
                    let visible = (row as isize + offset + 1).clamp(0, n.keys as isize) as usize;
                    scores[visible..].fill(f32::NEG_INFINITY);
                }
                softmax_in_place(scores);
            }
            let destination = n.token_major(out_start, b, h, n.value_width);
            // SAFETY: pair (b, h) owns its block of `out`, which outlives the loop.
            unsafe {
                product(
                    destination,
                    n.queries,
                    n.value_width,
                    n.keys,
                    Matrix::dense(scores, n.keys),
                    vm,
                    1.0,
                    false,
                    Parallelism::None,
                )
            };
        };
        let pairs = n.batch * n.heads;
        let probabilities = if keep {
            let mut probabilities = Unwritten::new(pairs * scores_per_pair);
            let start = probabilities.start();
            (0..pairs).into_par_iter().for_each(|i| {
                // SAFETY: pair i's block of the probabilities.
                pair(i, unsafe { start.block(i * scores_per_pair, n.keys) })
            });
            // SAFETY: every pair wrote its block.
            let probabilities = unsafe { probabilities.into_written() };
            Some(flex_tensor(
                probabilities,
                Shape::new([n.batch, n.heads, n.queries, n.keys]),
            ))
        } else {
            (0..pairs).into_par_iter().for_each(|i| {
                let mut scores = Unwritten::new(scores_per_pair);
                // SAFETY: the task's own buffer.
                pair(i, unsafe { scores.start().block(0, n.keys) })
            });
            None
        };
        // SAFETY: every pair wrote its block of the output.
        let out = unsafe { out.into_written() };
        (n.heads_view(out, n.value_width), probabilities)
    }

    /// Softmax of one row whose hidden keys are −∞; a row with every key hidden becomes
    /// zeros (the max is clamped to the lowest finite value, the sum to the smallest
    /// positive one, as in burn's attention).
    fn softmax_in_place(row: &mut [f32]) {
        let max = lanes::max(row).max(f32::MIN);
        for s in row.iter_mut() {
            // The vectorised exp clamps its input, so a hidden key is zeroed explicitly.
            *s = if *s == f32::NEG_INFINITY {
                0.0
            } else {
                fast_exp::exp(*s - max)
            };
        }
        let inverse = 1.0 / lanes::sum(row).max(f32::MIN_POSITIVE);
        for s in row.iter_mut() {
            *s *= inverse;
        }
    }

    pub fn forward(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        mask: Option<FlexTensor>,
        is_causal: bool,
    ) -> FlexTensor {
        if !supported(&q, &k, &v, mask.as_ref()) {
            return reference::forward::<Flex>(q, k, v, mask, is_causal);
        }
        forward_pairs(&q, &k, &v, mask.as_ref(), is_causal, false).0
    }

    pub fn forward_with_probabilities(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        mask: Option<FlexTensor>,
        is_causal: bool,
    ) -> (FlexTensor, FlexTensor) {
        if !supported(&q, &k, &v, mask.as_ref()) {
            return reference::forward_with_probabilities::<Flex>(q, k, v, mask, is_causal);
        }
        let (out, probabilities) = forward_pairs(&q, &k, &v, mask.as_ref(), is_causal, true);
        (out, probabilities.expect("kept"))
    }

    /// Per `(batch, key/value head)`: the query heads of its group one after another,
    /// `∂k` and `∂v` summed over them, `∂q` written in the `[batch, queries, heads, d]`
    /// order that the query projection's backward reads.
    pub fn backward(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        probabilities: FlexTensor,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let n = Sizes::of(&q, &k, &v);
        let dense_probabilities = probabilities.as_slice::<f32>().is_some()
            && probabilities.layout().shape().dims::<4>() == [n.batch, n.heads, n.queries, n.keys];
        let grad_fits =
            grad.layout().shape().dims::<4>() == [n.batch, n.heads, n.queries, n.value_width];
        if !supported(&q, &k, &v, None)
            || !all_f32::<Flex>(&[&grad])
            || !dense_probabilities
            || !grad_fits
        {
            return reference::backward::<Flex>(q, k, v, probabilities, grad);
        }
        let scale = scale_of::<Flex>(&q);
        let groups = n.heads / n.kv_heads;
        let all_probabilities = probabilities.as_slice::<f32>().expect("checked above");
        let scores_per_pair = n.queries * n.keys;
        let mut grad_q = Unwritten::new(n.batch * n.queries * n.heads * n.d);
        let mut grad_k = Unwritten::new(n.batch * n.kv_heads * n.keys * n.d);
        let mut grad_v = Unwritten::new(n.batch * n.kv_heads * n.keys * n.value_width);
        let (grad_q_start, grad_k_start, grad_v_start) =
            (grad_q.start(), grad_k.start(), grad_v.start());
        (0..n.batch * n.kv_heads)
            .into_par_iter()
            .for_each(|kv_pair| {
                let (b, kv) = (kv_pair / n.kv_heads, kv_pair % n.kv_heads);
                let (km, vm) = (Matrix::of(&k, &[b, kv]), Matrix::of(&v, &[b, kv]));
                // SAFETY: pair (b, kv)'s blocks of ∂k and ∂v.
                let (grad_k, grad_v) = unsafe {
                    (
                        grad_k_start.block(kv_pair * n.keys * n.d, n.d),
                        grad_v_start.block(kv_pair * n.keys * n.value_width, n.value_width),
                    )
                };
                let mut grad_s_buffer = Unwritten::new(scores_per_pair);
                // SAFETY: the task's own buffer.
                let grad_s_out = unsafe { grad_s_buffer.start().block(0, n.keys) };
                for g in 0..groups {
                    let h = kv * groups + g;
                    let pair = b * n.heads + h;
                    let p =
                        &all_probabilities[pair * scores_per_pair..(pair + 1) * scores_per_pair];
                    let pm = Matrix::dense(p, n.keys);
                    let (qm, gm) = (Matrix::of(&q, &[b, h]), Matrix::of(&grad, &[b, h]));
                    let accumulate = g > 0;
                    // SAFETY: this task owns pair (b, kv)'s blocks of ∂k and ∂v (written
                    // whole by g = 0, accumulated after), its own ∂s buffer, and the
                    // (b, h) blocks of ∂q for the heads of its group.
                    unsafe {
                        product(
                            grad_v,
                            n.keys,
                            n.value_width,
                            n.queries,
                            pm.transposed(),
                            gm,
                            1.0,
                            accumulate,
                            Parallelism::None,
                        );
                        // ∂p, then ∂s in its place.
                        product(
                            grad_s_out,
                            n.queries,
                            n.keys,
                            n.value_width,
                            gm,
                            vm.transposed(),
                            1.0,
                            false,
                            Parallelism::None,
                        );
                    }
                    // SAFETY: the product above wrote the whole buffer.
                    let grad_s = unsafe { grad_s_out.written(scores_per_pair) };
                    for (grad_s, p) in grad_s.chunks_mut(n.keys).zip(p.chunks(n.keys)) {
                        let dot = lanes::dot(grad_s, p);
                        for (g, &p) in grad_s.iter_mut().zip(p) {
                            *g = p * (*g - dot);
                        }
                    }
                    let sm = Matrix::dense(grad_s, n.keys);
                    let grad_q_out = n.token_major(grad_q_start, b, h, n.d);
                    // SAFETY: as above.
                    unsafe {
                        product(
                            grad_q_out,
                            n.queries,
                            n.d,
                            n.keys,
                            sm,
                            km,
                            scale,
                            false,
                            Parallelism::None,
                        );
                        product(
                            grad_k,
                            n.keys,
                            n.d,
                            n.queries,
                            sm.transposed(),
                            qm,
                            scale,
                            accumulate,
                            Parallelism::None,
                        );
                    }
                }
            });
        (
            // SAFETY: every task wrote its blocks of all three (∂q for each head of its
            // group; ∂k and ∂v with the group's first head).
            n.heads_view(unsafe { grad_q.into_written() }, n.d),
            flex_tensor(
                unsafe { grad_k.into_written() },
                Shape::new([n.batch, n.kv_heads, n.keys, n.d]),
            ),
            flex_tensor(
                unsafe { grad_v.into_written() },
                Shape::new([n.batch, n.kv_heads, n.keys, n.value_width]),
            ),
        )
    }
}
