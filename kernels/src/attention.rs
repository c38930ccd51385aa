//! Scaled dot-product attention with a backward of its own, for the CPU training step.
//!
//! `out = softmax(q·kᵀ / √d, masked) · v` over `[batch, heads, queries, d]` queries and
//! `[batch, heads, keys, d]` keys and values. A key is hidden from a query where the
//! boolean mask is true and, with `is_causal`, where it lies after the query (the
//! boundary at the bottom-right corner when there are more keys than queries). A
//! query that sees no key gets zeros, as in burn's attention.
//!
//! burn's attention is composed of operations: a product, two mask fills, a max, an
//! exponential, a sum and a division over the `[batch, heads, queries, keys]` scores,
//! another product, and under autodiff a backward for each, with copies of the
//! broadcast mask and of permuted views in between. On burn-flex this runs per
//! `(batch, head)` pair on rayon's pool instead: one `gemm` call for the scores, the
//! masked softmax in place while the row is in cache, one `gemm` for the output. The
//! forward keeps the probabilities for the backward (as burn's keeps its softmax), and
//! the backward is four products and one pass over the scores:
//! `∂v = pᵀ·∂out`, `∂p = ∂out·vᵀ`, `∂s = p ⊙ (∂p − Σ p ⊙ ∂p)`, `∂q = ∂s·k / √d`,
//! `∂k = ∂sᵀ·q / √d`.
//!
//! Other backends run burn's attention and its autodiff.

use burn::prelude::*;
use burn::tensor::ops::{AttentionModuleOptions, BoolTensor, FloatTensor};
use burn::tensor::{TensorMetadata, TensorPrimitive};

use crate::backend_ext::FusedLayerBackend;

/// Attention of `q [batch, heads, queries, d]` over `k`, `v [batch, heads, keys, d]`,
/// scaled by `1/√d`; `mask [batch, heads, queries, keys]` is true where a key is
/// hidden. Differentiable on `Autodiff<B>` with respect to `q`, `k` and `v`.
pub fn attention<B: FusedLayerBackend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
    is_causal: bool,
) -> Tensor<B, 4> {
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

    fn options(is_causal: bool) -> AttentionModuleOptions {
        AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal,
        }
    }

    /// The backend's own attention.
    pub fn forward<B: Backend>(
        q: FloatTensor<B>,
        k: FloatTensor<B>,
        v: FloatTensor<B>,
        mask: Option<BoolTensor<B>>,
        is_causal: bool,
    ) -> FloatTensor<B> {
        B::attention(q, k, v, mask, None, options(is_causal))
    }

    /// `(out, probabilities)` from burn's operations, the formula of burn's attention.
    pub fn forward_with_probabilities<B: Backend>(
        q: FloatTensor<B>,
        k: FloatTensor<B>,
        v: FloatTensor<B>,
        mask: Option<BoolTensor<B>>,
        is_causal: bool,
    ) -> (FloatTensor<B>, FloatTensor<B>) {
        let scale = scale_of::<B>(&q);
        let scores = B::float_mul_scalar(B::float_matmul(q, B::float_transpose(k)), scale.into());
        let [batch, heads, queries, keys] = scores.shape().dims::<4>();
        let device = B::float_device(&scores);
        let mut hidden = mask;
        if is_causal {
            let offset = keys as i64 - queries as i64;
            let after: Vec<bool> = (0..queries as i64)
                .flat_map(|row| (0..keys as i64).map(move |col| col > row + offset))
                .collect();
            let causal = Tensor::<B, 4, Bool>::from_data(
                burn::tensor::TensorData::new(after, [1, 1, queries, keys]),
                &device,
            )
            .expand([batch, heads, queries, keys]);
            hidden = Some(match hidden {
                Some(mask) => Tensor::<B, 4, Bool>::from_primitive(mask)
                    .bool_or(causal)
                    .into_primitive(),
                None => causal.into_primitive(),
            });
        }
        let scores = match hidden {
            Some(mask) => B::float_mask_fill(scores, mask, f32::NEG_INFINITY.into()),
            None => scores,
        };
        let max = B::float_clamp_min(B::float_max_dim(scores.clone(), 3), f32::MIN.into());
        let exp = B::float_exp(B::float_sub(scores, max));
        let sum = B::float_clamp_min(B::float_sum_dim(exp.clone(), 3), f32::MIN_POSITIVE.into());
        let probabilities = B::float_div(exp, sum);
        (B::float_matmul(probabilities.clone(), v), probabilities)
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
        let grad_v = B::float_matmul(B::float_transpose(probabilities.clone()), grad.clone());
        let grad_p = B::float_matmul(grad, B::float_transpose(v));
        let dot = B::float_sum_dim(B::float_mul(probabilities.clone(), grad_p.clone()), 3);
        let grad_s = B::float_mul(probabilities, B::float_sub(grad_p, dot));
        let grad_q = B::float_mul_scalar(B::float_matmul(grad_s.clone(), k), scale.into());
        let grad_k =
            B::float_mul_scalar(B::float_matmul(B::float_transpose(grad_s), q), scale.into());
        (grad_q, grad_k, grad_v)
    }
}

/// burn-flex: per `(batch, head)` pair, `gemm` calls over the tensors' buffers in
/// whatever layout they have, and the softmax in place.
#[cfg(feature = "flex")]
pub(crate) mod flex {
    use super::*;
    use crate::backend_ext::all_f32;
    use crate::flex_slices::flex_tensor;
    use crate::{fast_exp, lanes};
    use burn::backend::flex::FlexTensor;
    use burn::backend::Flex;
    use burn::tensor::DType;
    use rayon::prelude::*;

    /// A `[rows, cols]` matrix inside a tensor's buffer: its first element and strides.
    #[derive(Clone, Copy)]
    struct Matrix {
        first: *const f32,
        row_stride: isize,
        col_stride: isize,
    }

    // SAFETY: a `Matrix` only points into a tensor that outlives the parallel loop
    // which reads it; nothing writes through it.
    unsafe impl Send for Matrix {}
    unsafe impl Sync for Matrix {}

    impl Matrix {
        /// The `[dims 2, 3]` matrix of pair `(b, h)` of a 4-D f32 tensor.
        fn of(t: &FlexTensor, b: usize, h: usize) -> Self {
            let s = t.layout().strides();
            let storage: &[f32] = t.storage();
            let offset = t.layout().start_offset() as isize + b as isize * s[0] + h as isize * s[1];
            // SAFETY: the offset of an element of the tensor lies inside its storage.
            let first = unsafe { storage.as_ptr().offset(offset) };
            Self {
                first,
                row_stride: s[2],
                col_stride: s[3],
            }
        }

        /// A contiguous row-major `[rows, cols]` matrix.
        fn dense(first: *const f32, cols: usize) -> Self {
            Self {
                first,
                row_stride: cols as isize,
                col_stride: 1,
            }
        }

        fn transposed(self) -> Self {
            Self {
                first: self.first,
                row_stride: self.col_stride,
                col_stride: self.row_stride,
            }
        }
    }

    /// `out [m, n] = scale · lhs [m, k] · rhs [k, n]`, `out` row-major and written
    /// whole, on the calling thread (pairs already run in parallel).
    fn product(
        out: &mut [f32],
        m: usize,
        n: usize,
        k: usize,
        lhs: Matrix,
        rhs: Matrix,
        scale: f32,
    ) {
        assert_eq!(out.len(), m * n, "attention product: output size");
        // SAFETY: `out` holds m·n values, written row-major and not read
        // (`read_dst = false`); the operands point into live tensors with their strides.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                out.as_mut_ptr(),
                1,
                n as isize,
                false,
                lhs.first,
                lhs.col_stride,
                lhs.row_stride,
                rhs.first,
                rhs.col_stride,
                rhs.row_stride,
                0.0,
                scale,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }

    /// A buffer of `len` values that the caller writes whole before reading.
    fn unfilled(len: usize) -> Vec<f32> {
        let mut values = Vec::with_capacity(len);
        // SAFETY: f32 has no invalid bit patterns, and every caller overwrites the
        // whole buffer (a `gemm` with `read_dst = false`) before reading it.
        #[allow(clippy::uninit_vec)]
        unsafe {
            values.set_len(len)
        };
        values
    }

    /// The mask as bytes, read with its strides (a broadcast mask has zero strides).
    struct HiddenKeys<'a> {
        bytes: &'a [u8],
        start: isize,
        strides: [isize; 4],
    }

    impl<'a> HiddenKeys<'a> {
        fn of(mask: &'a FlexTensor) -> Self {
            let s = mask.layout().strides();
            Self {
                bytes: mask.bytes(),
                start: mask.layout().start_offset() as isize,
                strides: [s[0], s[1], s[2], s[3]],
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

    /// The shapes this path handles: f32 values, one `(batch, heads)` grid for all three
    /// tensors, no empty dimension, a full-shape one-byte boolean mask.
    fn supported(
        q: &FlexTensor,
        k: &FlexTensor,
        v: &FlexTensor,
        mask: Option<&FlexTensor>,
    ) -> bool {
        let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
        if qs.num_dims() != 4 || ks.num_dims() != 4 || vs.num_dims() != 4 {
            return false;
        }
        let grid = qs[0] == ks[0] && qs[1] == ks[1] && ks[0] == vs[0] && ks[1] == vs[1];
        let inner = qs[3] == ks[3] && ks[2] == vs[2];
        let nonempty = (0..4).all(|i| qs[i] > 0 && ks[i] > 0 && vs[i] > 0);
        let mask_fits = mask.is_none_or(|m| {
            matches!(m.dtype(), DType::Bool(_))
                && m.dtype().size() == 1
                && m.shape().num_dims() == 4
                && (0..4).all(|i| m.shape()[i] == if i == 3 { ks[2] } else { qs[i] })
        });
        all_f32::<Flex>(&[q, k, v]) && grid && inner && nonempty && mask_fits
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
        let (batch, heads, queries, d) = (q.shape()[0], q.shape()[1], q.shape()[2], q.shape()[3]);
        let (keys, dv) = (k.shape()[2], v.shape()[3]);
        let scale = scale_of::<Flex>(q);
        let hidden = mask.map(HiddenKeys::of);
        // Causal: key `col` is hidden from query `row` where col > row + offset.
        let offset = keys as isize - queries as isize;
        // One pair: scores, the masked softmax in place, then the output rows.
        let pair = |pair: usize, out: &mut [f32], scores: &mut [f32]| {
            let (b, h) = (pair / heads, pair % heads);
            let (qm, km, vm) = (
                Matrix::of(q, b, h),
                Matrix::of(k, b, h),
                Matrix::of(v, b, h),
            );
            product(scores, queries, keys, d, qm, km.transposed(), scale);
            for (row, scores) in scores.chunks_mut(keys).enumerate() {
                if let Some(hidden) = &hidden {
                    hidden.hide(b, h, row, scores);
                }
                if is_causal {
                    // Keys after `row + offset` are in the query's future.
                    let visible = (row as isize + offset + 1).clamp(0, keys as isize) as usize;
                    scores[visible..].fill(f32::NEG_INFINITY);
                }
                softmax_in_place(scores);
            }
            product(
                out,
                queries,
                dv,
                keys,
                Matrix::dense(scores.as_ptr(), keys),
                vm,
                1.0,
            );
        };
        let mut out = unfilled(batch * heads * queries * dv);
        let out_chunks = out.par_chunks_mut(queries * dv).enumerate();
        let probabilities = if keep {
            let mut probabilities = unfilled(batch * heads * queries * keys);
            out_chunks
                .zip(probabilities.par_chunks_mut(queries * keys))
                .for_each(|((i, out), scores)| pair(i, out, scores));
            Some(flex_tensor(
                probabilities,
                Shape::new([batch, heads, queries, keys]),
            ))
        } else {
            out_chunks.for_each(|(i, out)| pair(i, out, &mut unfilled(queries * keys)));
            None
        };
        (
            flex_tensor(out, Shape::new([batch, heads, queries, dv])),
            probabilities,
        )
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

    pub fn backward(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        probabilities: FlexTensor,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let dense_probabilities = probabilities.as_slice::<f32>().is_some();
        if !supported(&q, &k, &v, None) || !all_f32::<Flex>(&[&grad]) || !dense_probabilities {
            return reference::backward::<Flex>(q, k, v, probabilities, grad);
        }
        let (batch, heads, queries, d) = (q.shape()[0], q.shape()[1], q.shape()[2], q.shape()[3]);
        let (keys, dv) = (k.shape()[2], v.shape()[3]);
        let scale = scale_of::<Flex>(&q);
        let p_all = probabilities.as_slice::<f32>().expect("checked above");
        let mut grad_q = unfilled(batch * heads * queries * d);
        let mut grad_k = unfilled(batch * heads * keys * d);
        let mut grad_v = unfilled(batch * heads * keys * dv);
        grad_q
            .par_chunks_mut(queries * d)
            .zip(grad_k.par_chunks_mut(keys * d))
            .zip(grad_v.par_chunks_mut(keys * dv))
            .enumerate()
            .for_each(|(pair, ((grad_q, grad_k), grad_v))| {
                let (b, h) = (pair / heads, pair % heads);
                let p = &p_all[pair * queries * keys..(pair + 1) * queries * keys];
                let pm = Matrix::dense(p.as_ptr(), keys);
                let (qm, km, vm) = (
                    Matrix::of(&q, b, h),
                    Matrix::of(&k, b, h),
                    Matrix::of(&v, b, h),
                );
                let gm = Matrix::of(&grad, b, h);
                product(grad_v, keys, dv, queries, pm.transposed(), gm, 1.0);
                // ∂p, then ∂s in its place.
                let mut grad_s = unfilled(queries * keys);
                product(&mut grad_s, queries, keys, dv, gm, vm.transposed(), 1.0);
                for (grad_s, p) in grad_s.chunks_mut(keys).zip(p.chunks(keys)) {
                    let dot = lanes::dot(grad_s, p);
                    for (g, &p) in grad_s.iter_mut().zip(p) {
                        *g = p * (*g - dot);
                    }
                }
                let sm = Matrix::dense(grad_s.as_ptr(), keys);
                product(grad_q, queries, d, keys, sm, km, scale);
                product(grad_k, keys, d, queries, sm.transposed(), qm, scale);
            });
        (
            flex_tensor(grad_q, Shape::new([batch, heads, queries, d])),
            flex_tensor(grad_k, Shape::new([batch, heads, keys, d])),
            flex_tensor(grad_v, Shape::new([batch, heads, keys, dv])),
        )
    }
}
