//! The backend extension traits: [`FusedLayerBackend`] for the decoder's layers,
//! [`RewardStepBackend`] for the reward step (and everything training needs). Their
//! default methods are the plain-tensor reference; the CPU backends (ndarray,
//! burn-flex) override the reward step, SwiGLU and RMSNorm with host loops, burn-flex
//! also the linear products and attention, `CubeBackend` (WGPU, CUDA) the reward step
//! with the CubeCL kernels, and `Autodiff<B>` adds the custom backward on top of
//! whichever `B` it wraps.

use burn::prelude::*;
use burn::tensor::ops::{BoolTensor, FloatTensor, IntTensor};
use burn::tensor::{DType, TensorData, TensorMetadata, TensorPrimitive};

use crate::reference;

// Conversions between the backend's primitives and tensors, shared by the default
// methods below and the CPU host loops.

/// The f32 values of a float primitive of any rank, as one host copy.
pub(crate) fn host_values<B: Backend>(t: FloatTensor<B>) -> Vec<f32> {
    let elements = TensorMetadata::shape(&t).num_elements();
    let flat = B::float_reshape(t, Shape::new([elements]));
    float::<B, 1>(flat)
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("converted to f32")
}

/// A float primitive of `shape` on `device` from host values.
pub(crate) fn device_values<B: Backend>(
    values: Vec<f32>,
    shape: Shape,
    device: &B::Device,
) -> FloatTensor<B> {
    B::float_from_data(TensorData::new(values, shape), device)
}

/// Whether every tensor is f32: the fused host loops' condition, other dtypes take the
/// plain-tensor reference.
pub(crate) fn all_f32<B: Backend>(tensors: &[&FloatTensor<B>]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

pub(crate) fn float<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

pub(crate) fn int<B: Backend, const D: usize>(t: IntTensor<B>) -> Tensor<B, D, Int> {
    Tensor::from_primitive(t)
}

pub(crate) fn primitive<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

/// Fused operations of the decoder's layers (see `swiglu.rs`, `rms_norm.rs`).
pub trait FusedLayerBackend: Backend {
    /// RMSNorm of `x` over its last dimension, scaled by `gamma` (`[d]`).
    fn rms_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self> {
        crate::rms_norm::reference::forward::<Self>(x, gamma, epsilon)
    }

    /// `(∂/∂x, ∂/∂gamma)` of [`Self::rms_norm`] given the output gradient.
    fn rms_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        epsilon: f64,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        crate::rms_norm::reference::backward::<Self>(x, gamma, epsilon, grad)
    }

    /// `lhs [m, k] · rhs [k, n]`: a linear layer's product and the two of its
    /// backward, where an operand may be a transposed view.
    fn linear_product(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        crate::linear::reference::product::<Self>(lhs, rhs)
    }

    /// Whether [`Self::scaled_attention_with_probabilities`] and
    /// [`Self::scaled_attention_backward`] are the backend's own loops: `Autodiff` over
    /// it then runs attention as one operation with that backward. Otherwise it runs
    /// burn's attention and burn's autodiff of it.
    const OWN_ATTENTION_BACKWARD: bool = false;

    /// Attention scaled by `1/√d` (see `attention.rs`): `q [batch, heads, queries, d]`,
    /// `k`, `v [batch, kv_heads, keys, d]`, `mask` true where a key is hidden.
    fn scaled_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        mask: Option<BoolTensor<Self>>,
        is_causal: bool,
    ) -> FloatTensor<Self> {
        crate::attention::reference::forward::<Self>(q, k, v, mask, is_causal)
    }

    /// [`Self::scaled_attention`] and its probabilities `[batch, heads, queries, keys]`.
    fn scaled_attention_with_probabilities(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        mask: Option<BoolTensor<Self>>,
        is_causal: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        crate::attention::reference::forward_with_probabilities::<Self>(q, k, v, mask, is_causal)
    }

    /// `(∂q, ∂k, ∂v)` of [`Self::scaled_attention`] given its probabilities and the
    /// output gradient.
    fn scaled_attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        probabilities: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        crate::attention::reference::backward::<Self>(q, k, v, probabilities, grad)
    }

    /// `silu(gate) · up`, elementwise.
    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        crate::swiglu::reference::forward::<Self>(gate, up)
    }

    /// `(∂/∂gate, ∂/∂up)` of [`Self::swiglu`] given the output gradient.
    fn swiglu_backward(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        crate::swiglu::reference::backward::<Self>(gate, up, grad)
    }
}

pub trait RewardStepBackend: FusedLayerBackend {
    /// Whether the backend computes on the CPU, on rayon's global thread pool. Training
    /// then runs a micro-batch as one concurrent shard per pool thread (the CPU
    /// backends multi-thread their matrix products but not their elementwise work).
    const CPU_THREAD_POOL: bool = false;

    /// How many independent pieces of work (training shards, generation batches) run
    /// at the same time: one per thread of rayon's pool on the CPU backends, one on a
    /// GPU, where a single stream already keeps the device busy.
    fn concurrent_pieces() -> usize {
        if Self::CPU_THREAD_POOL {
            rayon::current_num_threads()
        } else {
            1
        }
    }

    /// `logits [N, V]`, `targets [N]`, `mask [N]` → `(out [N, 2], stats [N, 2])`:
    /// `out = (log p(target), entropy)` (zero where `mask = 0`),
    /// `stats = (row max, ln Σ exp(x − max))` for the backward.
    fn logprob_entropy_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        mask: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (out, stats) =
            reference::logprob_entropy_forward::<Self>(float(logits), int(targets), float(mask));
        (primitive(out), primitive(stats))
    }

    /// `grad_logits [N, V]` from `grad_out [N, 2]`.
    fn logprob_entropy_backward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        mask: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        out: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        reference::logprob_entropy_backward::<Self>(
            float(logits),
            int(targets),
            float(mask),
            float(stats),
            float(out),
            float(grad_out),
        )
        .into_primitive()
        .tensor()
    }

    /// `(advantages [M], keep [M])` per consecutive group of `group_size`.
    fn group_advantages(
        rewards: FloatTensor<Self>,
        group_size: usize,
        scale: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (advantages, keep) =
            reference::group_advantages::<Self>(float(rewards), group_size, scale);
        (primitive(advantages), primitive(keep))
    }

    /// Bytes the device's memory pool has reserved, where the backend can tell (the
    /// CubeCL backends); benchmarks read peak usage from its growth.
    fn reserved_memory_bytes(_device: &Self::Device) -> Option<u64> {
        None
    }

    /// How the masked-token reward step runs on `device`, for benchmark reports.
    fn reward_step_form(_device: &Self::Device) -> &'static str {
        "plain-tensor reference"
    }

    /// `[M / answers_per_mask]` generator rewards from predictor rewards.
    fn generator_rewards(
        predictor_rewards: FloatTensor<Self>,
        answers_per_mask: usize,
    ) -> FloatTensor<Self> {
        reference::generator_rewards::<Self>(float(predictor_rewards), answers_per_mask)
            .into_primitive()
            .tensor()
    }
}

/// The CPU backends run the reward step over host slices (`host.rs`); `$forward` is the
/// forward, which reads the logits through a host copy or, on burn-flex, in place.
macro_rules! host_reward_step {
    ($forward:expr) => {
        const CPU_THREAD_POOL: bool = true;

        fn reward_step_form(_device: &Self::Device) -> &'static str {
            "host loops"
        }

        fn logprob_entropy_forward(
            logits: FloatTensor<Self>,
            targets: IntTensor<Self>,
            mask: FloatTensor<Self>,
        ) -> (FloatTensor<Self>, FloatTensor<Self>) {
            $forward(logits, targets, mask)
        }

        fn logprob_entropy_backward(
            logits: FloatTensor<Self>,
            targets: IntTensor<Self>,
            mask: FloatTensor<Self>,
            stats: FloatTensor<Self>,
            out: FloatTensor<Self>,
            grad_out: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            crate::host::logprob_entropy_backward::<Self>(
                logits, targets, mask, stats, out, grad_out,
            )
        }
    };
}

/// The CPU backends run the fused layer operations as host loops: `host` reads the
/// tensors through one host copy (any backend), `flex` straight from burn-flex's
/// buffers. Both modules exist in `rms_norm.rs` and `swiglu.rs`.
#[cfg(any(feature = "ndarray", feature = "flex"))]
macro_rules! fused_layers_on_host {
    ($module:ident $(::<$backend:ty>)?) => {
        fn rms_norm(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            epsilon: f64,
        ) -> FloatTensor<Self> {
            crate::rms_norm::$module::forward$(::<$backend>)?(x, gamma, epsilon)
        }

        fn rms_norm_backward(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            epsilon: f64,
            grad: FloatTensor<Self>,
        ) -> (FloatTensor<Self>, FloatTensor<Self>) {
            crate::rms_norm::$module::backward$(::<$backend>)?(x, gamma, epsilon, grad)
        }

        fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
            crate::swiglu::$module::forward$(::<$backend>)?(gate, up)
        }

        fn swiglu_backward(
            gate: FloatTensor<Self>,
            up: FloatTensor<Self>,
            grad: FloatTensor<Self>,
        ) -> (FloatTensor<Self>, FloatTensor<Self>) {
            crate::swiglu::$module::backward$(::<$backend>)?(gate, up, grad)
        }
    };
}

#[cfg(feature = "ndarray")]
impl RewardStepBackend for burn::backend::ndarray::NdArray<f32> {
    host_reward_step!(crate::host::logprob_entropy_forward::<Self>);
}

#[cfg(feature = "ndarray")]
impl FusedLayerBackend for burn::backend::ndarray::NdArray<f32> {
    fused_layers_on_host!(host::<Self>);
}

#[cfg(feature = "flex")]
impl RewardStepBackend for burn::backend::Flex {
    host_reward_step!(crate::host::flex::logprob_entropy_forward);
}

#[cfg(feature = "flex")]
impl FusedLayerBackend for burn::backend::Flex {
    fused_layers_on_host!(flex);

    fn linear_product(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        crate::linear::flex::product(lhs, rhs)
    }

    const OWN_ATTENTION_BACKWARD: bool = true;

    fn scaled_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        mask: Option<BoolTensor<Self>>,
        is_causal: bool,
    ) -> FloatTensor<Self> {
        crate::attention::flex::forward(q, k, v, mask, is_causal)
    }

    fn scaled_attention_with_probabilities(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        mask: Option<BoolTensor<Self>>,
        is_causal: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        crate::attention::flex::forward_with_probabilities(q, k, v, mask, is_causal)
    }

    fn scaled_attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        probabilities: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        crate::attention::flex::backward(q, k, v, probabilities, grad)
    }
}
