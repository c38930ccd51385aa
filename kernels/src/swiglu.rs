//! SwiGLU's gating, `silu(gate) · up`, as one operation with a backward of its own.
//!
//! Built from burn's operations it is a sigmoid, two products and, under autodiff,
//! a backward of five more elementwise passes; on the CPU backends every sigmoid
//! called the C library's `expf` once per element, on one thread. Here the forward
//! reads `gate` and `up` once and writes the output, the backward reads them and the
//! output gradient once and writes both input gradients, with a vectorised `exp`,
//! over chunks on rayon's pool. On other backends the trait's default (burn's
//! operations) runs.
//!
//! With `s = sigmoid(g)`: `out = g·s·u`, `∂out/∂u = g·s`, `∂out/∂g = u·s·(1 + g·(1 − s))`.

use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{TensorMetadata, TensorPrimitive};
use rayon::prelude::*;

use crate::backend_ext::{all_f32, device_values, host_values, FusedLayerBackend};
use crate::fast_exp;

/// `silu(gate) · up`, elementwise; `gate` and `up` have one shape. Differentiable on
/// `Autodiff<B>` with respect to both.
pub fn swiglu<B: FusedLayerBackend, const D: usize>(
    gate: Tensor<B, D>,
    up: Tensor<B, D>,
) -> Tensor<B, D> {
    assert_eq!(
        gate.dims(),
        up.dims(),
        "swiglu: gate and up differ in shape"
    );
    let out = B::swiglu(gate.into_primitive().tensor(), up.into_primitive().tensor());
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// Elements per task on rayon's pool: large enough that scheduling is negligible,
/// small enough that a `[tokens, intermediate]` activation spreads over the threads.
const CHUNK: usize = 1 << 14;

#[inline(always)]
fn sigmoid(g: f32) -> f32 {
    1.0 / (1.0 + fast_exp::exp(-g))
}

/// `out = silu(gate) · up` over host slices of one length.
pub(crate) fn forward_slices(gate: &[f32], up: &[f32], out: &mut [f32]) {
    assert!(
        gate.len() == up.len() && up.len() == out.len(),
        "swiglu: slice lengths differ"
    );
    out.par_chunks_mut(CHUNK)
        .zip(gate.par_chunks(CHUNK).zip(up.par_chunks(CHUNK)))
        .for_each(|(out, (gate, up))| {
            for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
                *o = g * sigmoid(g) * u;
            }
        });
}

/// Both input gradients from the output gradient, over host slices of one length.
pub(crate) fn backward_slices(
    gate: &[f32],
    up: &[f32],
    grad: &[f32],
    grad_gate: &mut [f32],
    grad_up: &mut [f32],
) {
    let n = gate.len();
    assert!(
        [up.len(), grad.len(), grad_gate.len(), grad_up.len()]
            .iter()
            .all(|&len| len == n),
        "swiglu: slice lengths differ"
    );
    grad_gate
        .par_chunks_mut(CHUNK)
        .zip(grad_up.par_chunks_mut(CHUNK))
        .zip(gate.par_chunks(CHUNK).zip(up.par_chunks(CHUNK)))
        .zip(grad.par_chunks(CHUNK))
        .for_each(|(((grad_gate, grad_up), (gate, up)), grad)| {
            let inputs = gate.iter().zip(up).zip(grad);
            for ((dg, du), ((&g, &u), &d)) in
                grad_gate.iter_mut().zip(grad_up.iter_mut()).zip(inputs)
            {
                let s = sigmoid(g);
                *du = d * g * s;
                *dg = d * u * s * (1.0 + g * (1.0 - s));
            }
        });
}

/// The plain-tensor version: the trait's default and the tests' oracle.
pub mod reference {
    use super::*;

    pub fn forward<B: Backend>(gate: FloatTensor<B>, up: FloatTensor<B>) -> FloatTensor<B> {
        let silu = B::float_mul(gate.clone(), B::sigmoid(gate));
        B::float_mul(silu, up)
    }

    pub fn backward<B: Backend>(
        gate: FloatTensor<B>,
        up: FloatTensor<B>,
        grad: FloatTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>) {
        let s = B::sigmoid(gate.clone());
        let gs = B::float_mul(gate.clone(), s.clone());
        let grad_up = B::float_mul(grad.clone(), gs.clone());
        // 1 + g·(1 − s) = 1 + g − g·s
        let slope = B::float_add_scalar(B::float_sub(gate, gs), 1.0.into());
        let grad_gate = B::float_mul(B::float_mul(B::float_mul(grad, up), s), slope);
        (grad_gate, grad_up)
    }
}

/// The host loops through one host copy of each input: any CPU backend.
pub(crate) mod host {
    use super::*;

    pub fn forward<B: Backend>(gate: FloatTensor<B>, up: FloatTensor<B>) -> FloatTensor<B> {
        if !all_f32::<B>(&[&gate, &up]) {
            return reference::forward::<B>(gate, up);
        }
        let (shape, device) = (gate.shape(), B::float_device(&gate));
        let (gate, up) = (host_values::<B>(gate), host_values::<B>(up));
        let mut out = vec![0.0; gate.len()];
        forward_slices(&gate, &up, &mut out);
        device_values::<B>(out, shape, &device)
    }

    pub fn backward<B: Backend>(
        gate: FloatTensor<B>,
        up: FloatTensor<B>,
        grad: FloatTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>) {
        if !all_f32::<B>(&[&gate, &up, &grad]) {
            return reference::backward::<B>(gate, up, grad);
        }
        let (shape, device) = (gate.shape(), B::float_device(&gate));
        let (gate, up, grad) = (
            host_values::<B>(gate),
            host_values::<B>(up),
            host_values::<B>(grad),
        );
        let (mut grad_gate, mut grad_up) = (vec![0.0; gate.len()], vec![0.0; gate.len()]);
        backward_slices(&gate, &up, &grad, &mut grad_gate, &mut grad_up);
        (
            device_values::<B>(grad_gate, shape.clone(), &device),
            device_values::<B>(grad_up, shape, &device),
        )
    }
}

/// burn-flex: the same loops straight over the tensors' buffers (no host copy of the
/// inputs, which the autodiff graph still holds).
#[cfg(feature = "flex")]
pub(crate) mod flex {
    use super::*;
    use crate::flex_slices::{contiguous, flex_tensor, values};
    use burn::backend::flex::FlexTensor;
    use burn::backend::Flex;

    pub fn forward(gate: FlexTensor, up: FlexTensor) -> FlexTensor {
        if !all_f32::<Flex>(&[&gate, &up]) {
            return reference::forward::<Flex>(gate, up);
        }
        let (gate, up) = (contiguous(gate), contiguous(up));
        let mut out = vec![0.0; gate.layout().num_elements()];
        forward_slices(values(&gate), values(&up), &mut out);
        flex_tensor(out, gate.shape())
    }

    pub fn backward(
        gate: FlexTensor,
        up: FlexTensor,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        if !all_f32::<Flex>(&[&gate, &up, &grad]) {
            return reference::backward::<Flex>(gate, up, grad);
        }
        let (gate, up, grad) = (contiguous(gate), contiguous(up), contiguous(grad));
        let n = gate.layout().num_elements();
        let (mut grad_gate, mut grad_up) = (vec![0.0; n], vec![0.0; n]);
        backward_slices(
            values(&gate),
            values(&up),
            values(&grad),
            &mut grad_gate,
            &mut grad_up,
        );
        (
            flex_tensor(grad_gate, gate.shape()),
            flex_tensor(grad_up, gate.shape()),
        )
    }
}
