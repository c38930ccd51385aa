//! The reward step of PretrainZero's GRPO update (DESIGN.md §7) as custom CubeCL
//! kernels, as host loops on the CPU backends, and as a plain-tensor reference (the
//! fallback for other backends and the oracle of the tests):
//!
//! - [`masked_token_logprob_entropy`]: log-probability of each sampled token and the
//!   entropy of its distribution, forward and backward, one pass over the logits each;
//! - [`group_advantages`] and [`generator_rewards`]: GRPO's group normalisation and
//!   PretrainZero's min-max generator reward, on the device.
//!
//! Dispatch is by backend type through [`RewardStepBackend`]: ndarray and burn-flex →
//! host loops over the rows on rayon's pool, `CubeBackend` (WGPU, CUDA) → kernels,
//! `Autodiff<B>` → `B`'s forward plus a custom backward.
//!
//! The decoder's fused SwiGLU gating, [`swiglu`], and its RMSNorm, [`rms_norm`], are
//! dispatched the same way through [`FusedLayerBackend`] (host loops on the CPU
//! backends, burn's operations on GPUs), and so are its linear products, [`linear`],
//! and its grouped-query attention, [`attention`] (`gemm` calls over burn-flex's
//! buffers, burn's operations elsewhere).

pub mod attention;
mod autodiff;
mod backend_ext;
#[cfg(feature = "cube")]
mod cube;
mod fast_exp;
#[cfg(feature = "flex")]
mod flex_gemm;
#[cfg(feature = "flex")]
mod flex_slices;
mod host;
mod lanes;
pub mod linear;
pub mod reference;
pub mod rms_norm;
pub mod swiglu;

use burn::prelude::*;
use burn::tensor::TensorPrimitive;

pub use attention::attention;
pub use backend_ext::{FusedLayerBackend, RewardStepBackend};
pub use linear::linear;
pub use rms_norm::rms_norm;
pub use swiglu::swiglu;

/// burn's CUDA backend without its fusion wrapper, which would hide these kernels
/// (burn-cuda does not export the unfused type).
#[cfg(feature = "cuda")]
pub type CudaBackend = burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, f32, i32, u8>;

/// Bound on the extra memory of the reward step: rows are processed in chunks whose
/// logits fit this many bytes (the reference path materialises a few `[rows, V]`
/// temporaries per chunk, the CPU host loops one host copy of the chunk's logits, the
/// kernels only `rows × 4` values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowChunking {
    pub budget_bytes: usize,
}

impl Default for RowChunking {
    /// 1 GiB: whole batches on small vocabularies, ~1,700 rows of Qwen3's 151,936.
    fn default() -> Self {
        Self {
            budget_bytes: 1 << 30,
        }
    }
}

impl RowChunking {
    pub fn rows_per_chunk(&self, vocab: usize) -> usize {
        (self.budget_bytes / (vocab.max(1) * std::mem::size_of::<f32>())).max(1)
    }
}

/// `logits [N, V]`, `targets [N]`, `mask [N]` (1 = the row is a response token) →
/// `(logprob [N], entropy [N])`, both 0 where `mask = 0`. Differentiable on
/// `Autodiff<B>` with respect to `logits`. The logits may be f32 or, where the backend
/// has it, bf16 (half the bytes to read); the sums are f32 (f64 in the CPU host loops)
/// either way, the outputs are f32, and the gradient has the logits' type.
pub fn masked_token_logprob_entropy<B: RewardStepBackend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    mask: Tensor<B, 1>,
    chunking: RowChunking,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [rows, vocab] = logits.dims();
    let mask = mask.cast(burn::tensor::FloatDType::F32);
    let per_chunk = chunking.rows_per_chunk(vocab);
    let forward = |logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>, mask: Tensor<B, 1>| {
        let (out, _stats) = B::logprob_entropy_forward(
            logits.into_primitive().tensor(),
            targets.into_primitive(),
            mask.into_primitive().tensor(),
        );
        Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(out))
    };
    // One chunk takes the logits whole: a slice would cost its backward a zeroed
    // full-size gradient and a copy into it.
    let out = if per_chunk >= rows {
        forward(logits, targets, mask)
    } else {
        let mut outputs = Vec::new();
        for start in (0..rows).step_by(per_chunk) {
            let end = (start + per_chunk).min(rows);
            outputs.push(forward(
                logits.clone().slice([start..end, 0..vocab]),
                targets.clone().slice([start..end]),
                mask.clone().slice([start..end]),
            ));
        }
        Tensor::cat(outputs, 0)
    };
    let logprob = out.clone().slice([0..rows, 0..1]).reshape([rows]);
    let entropy = out.slice([0..rows, 1..2]).reshape([rows]);
    (logprob, entropy)
}

/// GRPO advantages per consecutive group of `group_size` rewards:
/// `(advantages [M], keep [M])`, keep 1.0 for samples of groups with unequal rewards.
pub fn group_advantages<B: RewardStepBackend>(
    rewards: Tensor<B, 1>,
    group_size: usize,
    scale: bool,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    assert!(
        group_size > 0 && rewards.dims()[0] % group_size == 0,
        "rewards must fill whole groups"
    );
    let (advantages, keep) =
        B::group_advantages(rewards.into_primitive().tensor(), group_size, scale);
    (
        Tensor::from_primitive(TensorPrimitive::Float(advantages)),
        Tensor::from_primitive(TensorPrimitive::Float(keep)),
    )
}

/// Generator reward per mask from its group of `answers_per_mask` predictor rewards.
pub fn generator_rewards<B: RewardStepBackend>(
    predictor_rewards: Tensor<B, 1>,
    answers_per_mask: usize,
) -> Tensor<B, 1> {
    assert!(
        answers_per_mask > 0 && predictor_rewards.dims()[0] % answers_per_mask == 0,
        "predictor rewards must fill whole groups"
    );
    Tensor::from_primitive(TensorPrimitive::Float(B::generator_rewards(
        predictor_rewards.into_primitive().tensor(),
        answers_per_mask,
    )))
}
