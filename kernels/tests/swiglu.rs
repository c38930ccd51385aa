//! The fused SwiGLU gating, `silu(gate) · up`, against independent oracles: forward
//! values against an f64 host computation, gradients against burn's autodiff of
//! `silu(gate) · up` built from burn's own operations (not against our backward
//! formula), on ndarray and burn-flex, each also on non-contiguous (transposed)
//! inputs; and the trait's default (burn's operations, which GPUs run) against both.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::prelude::*;
use burn::tensor::activation::silu;
use burn::tensor::Distribution;
use pretrainzero_kernels::{swiglu, FusedLayerBackend};

mod common;
use common::{close, host_values, primitive_values};

/// Both sides compute in f32; agreement to 1e-5 of `1 + |value|`.
const TOLERANCE: f32 = 1e-5;

/// `[rows, width]` inputs spanning the sigmoid's saturated ends (±40) and its middle.
fn inputs<B: Backend>(device: &B::Device) -> (Tensor<B, 2>, Tensor<B, 2>) {
    B::seed(device, 7);
    let gate = Tensor::<B, 2>::random([37, 70], Distribution::Normal(0.0, 3.0), device);
    let extremes =
        Tensor::<B, 2>::from_floats([[-40.0, -12.0, -0.5, 0.0, 0.5, 12.0, 40.0]], device);
    let gate = Tensor::cat(vec![gate, extremes.repeat_dim(1, 10)], 0);
    let up = Tensor::<B, 2>::random([38, 70], Distribution::Normal(0.0, 1.0), device);
    (gate, up)
}

fn check_forward<B: FusedLayerBackend>(device: &B::Device) {
    let (gate, up) = inputs::<B>(device);
    // A transposed (non-contiguous) view goes through the same path.
    for (gate, up) in [
        (gate.clone(), up.clone()),
        (gate.transpose(), up.transpose()),
    ] {
        let got = host_values(swiglu(gate.clone(), up.clone()));
        let (g, u) = (host_values(gate), host_values(up));
        for i in 0..g.len() {
            let (g, u) = (g[i] as f64, u[i] as f64);
            let expected = g / (1.0 + (-g).exp()) * u;
            let error = (got[i] as f64 - expected).abs();
            assert!(
                error <= 1e-5 * (1.0 + expected.abs()),
                "element {i}: {} vs {expected}",
                got[i]
            );
        }
    }
}

fn check_gradients<B: FusedLayerBackend>(device: &B::Device) {
    let (gate, up) = inputs::<Autodiff<B>>(device);
    // A weighting that differs per element, so that a swapped or transposed gradient shows.
    let weights =
        Tensor::<Autodiff<B>, 2>::random(gate.dims(), Distribution::Normal(0.0, 1.0), device);
    // `transposed`: the op sees non-contiguous views (and its gradients flow back
    // through the transposes).
    let gradients = |fused: bool, transposed: bool| {
        let (gate, up) = (gate.clone().require_grad(), up.clone().require_grad());
        let (g, u) = if transposed {
            (gate.clone().transpose(), up.clone().transpose())
        } else {
            (gate.clone(), up.clone())
        };
        let out = if fused { swiglu(g, u) } else { silu(g) * u };
        let out = if transposed { out.transpose() } else { out };
        let grads = (out * weights.clone()).sum().backward();
        (
            host_values(gate.grad(&grads).unwrap()),
            host_values(up.grad(&grads).unwrap()),
        )
    };
    for transposed in [false, true] {
        let (fused_gate, fused_up) = gradients(true, transposed);
        let (burn_gate, burn_up) = gradients(false, transposed);
        for (name, fused, burn) in [("gate", fused_gate, burn_gate), ("up", fused_up, burn_up)] {
            close(
                &fused,
                &burn,
                TOLERANCE,
                &format!("d{name} (transposed: {transposed})"),
            );
        }
    }
}

#[test]
fn forward_matches_f64_on_ndarray_and_flex() {
    check_forward::<NdArray<f32>>(&Default::default());
    check_forward::<Flex>(&Default::default());
}

#[test]
fn gradients_match_burns_autodiff_on_ndarray_and_flex() {
    check_gradients::<NdArray<f32>>(&Default::default());
    check_gradients::<Flex>(&Default::default());
}

#[test]
fn reference_default_matches_the_host_loops() {
    // The trait's default (burn's operations), as GPUs run it, against the CPU loops.
    let device = Default::default();
    let (gate, up) = inputs::<NdArray<f32>>(&device);
    let reference = pretrainzero_kernels::swiglu::reference::forward::<NdArray<f32>>(
        gate.clone().into_primitive().tensor(),
        up.clone().into_primitive().tensor(),
    );
    let reference = primitive_values::<NdArray<f32>, 2>(reference);
    let fused = host_values(swiglu(gate, up));
    close(&fused, &reference, TOLERANCE, "output");
}

#[test]
fn reference_backward_matches_burns_autodiff() {
    // The trait's default backward, which GPUs run, against burn's autodiff of silu · up.
    type Ad = Autodiff<NdArray<f32>>;
    let device = Default::default();
    let (gate, up) = inputs::<Ad>(&device);
    let weights = Tensor::<Ad, 2>::random(gate.dims(), Distribution::Normal(0.0, 1.0), &device);
    let (g, u) = (gate.clone().require_grad(), up.clone().require_grad());
    let grads = ((silu(g.clone()) * u.clone()) * weights.clone())
        .sum()
        .backward();
    let (burn_gate, burn_up) = (
        host_values(g.grad(&grads).unwrap()),
        host_values(u.grad(&grads).unwrap()),
    );
    let prim = |t: Tensor<NdArray<f32>, 2>| t.into_primitive().tensor();
    let (ref_gate, ref_up) = pretrainzero_kernels::swiglu::reference::backward::<NdArray<f32>>(
        prim(gate.inner()),
        prim(up.inner()),
        prim(weights.inner()),
    );
    let host = primitive_values::<NdArray<f32>, 2>;
    close(&host(ref_gate), &burn_gate, TOLERANCE, "reference dgate");
    close(&host(ref_up), &burn_up, TOLERANCE, "reference dup");
}
