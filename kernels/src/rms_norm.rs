//! RMSNorm, `y = x / rms(x) · γ` over the last dimension, as one operation with a
//! backward of its own.
//!
//! Built from burn's operations it is a square, a mean, a square root, a division and
//! a product, each a pass over the activations with broadcasts, and under autodiff a
//! backward of about twice as many; on the CPU backends each of those passes runs on
//! one thread. Here the forward reads `x` once for the row sums and once to write `y`;
//! the backward recomputes `1/rms` and makes a few short loops over each row (which
//! stays in cache) for `∂x`, and sums `∂γ` per chunk of rows (chunks added in order, so the result does not depend on
//! the thread count), rows in parallel on rayon's pool. Other dtypes than f32 and
//! other backends take the trait's default, burn's own formula (rms in f32).
//!
//! With `r = 1/sqrt(mean(x²) + ε)` and `g = ∂y·γ` per row of width `d`:
//! `∂x = r·g − x·r³·(Σ g·x)/d`, `∂γ = Σ_rows ∂y·x·r`.

use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, TensorMetadata, TensorPrimitive};
use rayon::prelude::*;

use crate::backend_ext::{all_f32, device_values, float, host_values, FusedLayerBackend};

/// RMSNorm of `x` over its last dimension with scale `gamma` (`[d]`). Differentiable
/// on `Autodiff<B>` with respect to both.
pub fn rms_norm<B: FusedLayerBackend, const D: usize>(
    x: Tensor<B, D>,
    gamma: Tensor<B, 1>,
    epsilon: f64,
) -> Tensor<B, D> {
    assert_eq!(
        x.dims()[D - 1],
        gamma.dims()[0],
        "rms_norm: gamma does not match the last dimension"
    );
    let out = B::rms_norm(
        x.into_primitive().tensor(),
        gamma.into_primitive().tensor(),
        epsilon,
    );
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// Rows per task on rayon's pool.
const ROWS_PER_TASK: usize = 64;

/// `Σ a·b` with eight independent lanes, so that the compiler can vectorise it (a
/// single running sum is a serial dependency it may not reorder).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let (a_rest, b_rest) = (a8.remainder(), b8.remainder());
    for (a, b) in a8.zip(b8) {
        for k in 0..8 {
            lanes[k] += a[k] * b[k];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(a, b)| a * b).sum();
    lanes.iter().sum::<f32>() + tail
}

#[inline(always)]
fn inverse_rms(row: &[f32], epsilon: f64) -> f32 {
    (1.0 / ((dot(row, row) / row.len() as f32) as f64 + epsilon).sqrt()) as f32
}

/// `out = x · r · γ` per row of width `gamma.len()`.
pub(crate) fn forward_slices(x: &[f32], gamma: &[f32], epsilon: f64, out: &mut [f32]) {
    let d = gamma.len();
    assert!(
        d > 0 && x.len() == out.len() && x.len() % d == 0,
        "rms_norm: slice lengths"
    );
    out.par_chunks_mut(d * ROWS_PER_TASK)
        .zip(x.par_chunks(d * ROWS_PER_TASK))
        .for_each(|(out, x)| {
            for (out, x) in out.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                let r = inverse_rms(x, epsilon);
                for ((o, &v), &g) in out.iter_mut().zip(x).zip(gamma) {
                    *o = v * r * g;
                }
            }
        });
}

/// `∂x` into `grad_x` and `∂γ` returned, from the output gradient `grad`.
pub(crate) fn backward_slices(
    x: &[f32],
    gamma: &[f32],
    epsilon: f64,
    grad: &[f32],
    grad_x: &mut [f32],
) -> Vec<f32> {
    let d = gamma.len();
    assert!(
        d > 0 && x.len() % d == 0 && grad.len() == x.len() && grad_x.len() == x.len(),
        "rms_norm: slice lengths"
    );
    let partial_grad_gamma: Vec<Vec<f64>> = grad_x
        .par_chunks_mut(d * ROWS_PER_TASK)
        .zip(
            x.par_chunks(d * ROWS_PER_TASK)
                .zip(grad.par_chunks(d * ROWS_PER_TASK)),
        )
        .map(|(grad_x, (x, grad))| {
            let mut grad_gamma = vec![0.0f64; d];
            let mut scaled = vec![0.0f32; d];
            for ((grad_x, x), grad) in grad_x
                .chunks_exact_mut(d)
                .zip(x.chunks_exact(d))
                .zip(grad.chunks_exact(d))
            {
                let r = inverse_rms(x, epsilon);
                for ((s, &dy), &g) in scaled.iter_mut().zip(grad).zip(gamma) {
                    *s = dy * g;
                }
                let coefficient = r * r * r * dot(&scaled, x) / d as f32;
                for ((dx, &s), &v) in grad_x.iter_mut().zip(&scaled).zip(x) {
                    *dx = r * s - v * coefficient;
                }
                for ((acc, &dy), &v) in grad_gamma.iter_mut().zip(grad).zip(x) {
                    *acc += (dy * v * r) as f64;
                }
            }
            grad_gamma
        })
        .collect();
    let mut grad_gamma = vec![0.0f64; d];
    for partial in &partial_grad_gamma {
        for (acc, &p) in grad_gamma.iter_mut().zip(partial) {
            *acc += p;
        }
    }
    grad_gamma.into_iter().map(|v| v as f32).collect()
}

/// `x` as `[rows, d]` (burn's operations need a rank).
fn rows<B: Backend>(x: FloatTensor<B>) -> Tensor<B, 2> {
    let shape = x.shape();
    let d = shape[shape.num_dims() - 1];
    let flat = B::float_reshape(x, Shape::new([shape.num_elements() / d, d]));
    Tensor::from_primitive(TensorPrimitive::Float(flat))
}

fn reshaped<B: Backend>(t: Tensor<B, 2>, shape: Shape) -> FloatTensor<B> {
    B::float_reshape(t.into_primitive().tensor(), shape)
}

/// burn's formula (`burn::nn::RmsNorm`): the trait's default and the tests' oracle.
pub mod reference {
    use super::*;

    pub fn forward<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        epsilon: f64,
    ) -> FloatTensor<B> {
        let shape = x.shape();
        let x = rows::<B>(x);
        let dtype = x.dtype();
        let rms = (x.clone().cast(DType::F32).square().mean_dim(1) + epsilon).sqrt();
        let out = (x / rms.cast(dtype)) * float::<B, 1>(gamma).unsqueeze();
        reshaped(out, shape)
    }

    pub fn backward<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        epsilon: f64,
        grad: FloatTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>) {
        let shape = x.shape();
        let (x, grad) = (rows::<B>(x), rows::<B>(grad));
        let dtype = x.dtype();
        let d = x.dims()[1] as f64;
        // In f32 throughout, cast back at the end: in f16, `1/rms` cubed overflows for
        // rows with rms below ~0.025 (an all-zero row would give inf · 0 = NaN).
        let (x, grad) = (x.cast(DType::F32), grad.cast(DType::F32));
        let gamma = float::<B, 1>(gamma).cast(DType::F32);
        let inverse = (x.clone().square().mean_dim(1) + epsilon).sqrt().recip();
        let scaled = grad.clone() * gamma.unsqueeze();
        let coefficient =
            inverse.clone().powi_scalar(3) * (scaled.clone() * x.clone()).sum_dim(1) / d;
        let grad_x = scaled * inverse.clone() - x.clone() * coefficient;
        let grad_gamma = (grad * x * inverse).sum_dim(0).reshape([-1]);
        (
            reshaped(grad_x.cast(dtype), shape),
            grad_gamma.cast(dtype).into_primitive().tensor(),
        )
    }
}

/// The host loops through one host copy of each input: any CPU backend.
pub(crate) mod host {
    use super::*;

    pub fn forward<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        epsilon: f64,
    ) -> FloatTensor<B> {
        if !all_f32::<B>(&[&x, &gamma]) {
            return reference::forward::<B>(x, gamma, epsilon);
        }
        let (shape, device) = (x.shape(), B::float_device(&x));
        let (x, gamma) = (host_values::<B>(x), host_values::<B>(gamma));
        let mut out = vec![0.0; x.len()];
        forward_slices(&x, &gamma, epsilon, &mut out);
        device_values::<B>(out, shape, &device)
    }

    pub fn backward<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        epsilon: f64,
        grad: FloatTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>) {
        if !all_f32::<B>(&[&x, &gamma, &grad]) {
            return reference::backward::<B>(x, gamma, epsilon, grad);
        }
        let (shape, device) = (x.shape(), B::float_device(&x));
        let (x, gamma, grad) = (
            host_values::<B>(x),
            host_values::<B>(gamma),
            host_values::<B>(grad),
        );
        let mut grad_x = vec![0.0; x.len()];
        let grad_gamma = backward_slices(&x, &gamma, epsilon, &grad, &mut grad_x);
        let d = grad_gamma.len();
        (
            device_values::<B>(grad_x, shape, &device),
            device_values::<B>(grad_gamma, Shape::new([d]), &device),
        )
    }
}

/// burn-flex: the same loops straight over the tensors' buffers.
#[cfg(feature = "flex")]
pub(crate) mod flex {
    use super::*;
    use crate::flex_slices::{contiguous, flex_tensor, values};
    use burn::backend::flex::FlexTensor;
    use burn::backend::Flex;

    pub fn forward(x: FlexTensor, gamma: FlexTensor, epsilon: f64) -> FlexTensor {
        if !all_f32::<Flex>(&[&x, &gamma]) {
            return reference::forward::<Flex>(x, gamma, epsilon);
        }
        let (x, gamma) = (contiguous(x), contiguous(gamma));
        let mut out = vec![0.0; x.layout().num_elements()];
        forward_slices(values(&x), values(&gamma), epsilon, &mut out);
        flex_tensor(out, x.shape())
    }

    pub fn backward(
        x: FlexTensor,
        gamma: FlexTensor,
        epsilon: f64,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        if !all_f32::<Flex>(&[&x, &gamma, &grad]) {
            return reference::backward::<Flex>(x, gamma, epsilon, grad);
        }
        let (x, gamma, grad) = (contiguous(x), contiguous(gamma), contiguous(grad));
        let mut grad_x = vec![0.0; x.layout().num_elements()];
        let grad_gamma = backward_slices(
            values(&x),
            values(&gamma),
            epsilon,
            values(&grad),
            &mut grad_x,
        );
        let d = grad_gamma.len();
        (
            flex_tensor(grad_x, x.shape()),
            flex_tensor(grad_gamma, Shape::new([d])),
        )
    }
}
