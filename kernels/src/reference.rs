//! The reward step in plain Burn tensor ops: the fallback on GPU backends built
//! without CubeCL and for non-f32 logits on the CPU, and the oracle the kernels and
//! the CPU host loops are tested against.
//!
//! Logits may be of any float type (bf16 on a GPU); the computation and its outputs
//! are f32, as in the kernels, and the gradient comes back in the logits' type.
//!
//! Row statistics are kept in the shifted form the kernels use, `max` and
//! `log_sum = ln Σ exp(x − max)`, so `log p = (x − max) − log_sum` never subtracts
//! two large numbers (logits of ±1e4 stay exact to f32 rounding).
//!
//! Its full-row `max_dim` / `sum_dim` are exact on the CPU backends; on WGPU
//! burn 0.21's reductions are wrong for rows of ≥ 65,536 elements (see the model
//! crate's `row_ops.rs`), so there it appears only as the baseline column of
//! `bench kernels`, whose values nobody reads.

use burn::prelude::*;
use burn::tensor::FloatDType;

/// Forward: `(out [N, 2] = (logprob, entropy), stats [N, 2] = (max, log_sum))`,
/// `out` zero on rows with `mask = 0`.
pub fn logprob_entropy_forward<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    mask: Tensor<B, 1>,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let [rows, _] = logits.dims();
    let logits = logits.cast(FloatDType::F32);
    let mask = mask.cast(FloatDType::F32);
    let max = logits.clone().max_dim(1);
    let shifted = logits - max.clone();
    let log_sum = shifted.clone().exp().sum_dim(1).log();
    let logp = shifted - log_sum.clone();
    let picked = logp.clone().gather(1, targets.reshape([rows, 1]));
    // p · log p with p = 0 (a −inf logit) counted as 0, not 0 · −inf.
    let p = logp.clone().exp();
    let plogp = (p.clone() * logp).mask_fill(p.equal_elem(0.0), 0.0);
    let entropy = plogp.sum_dim(1).neg();
    let keep = mask.reshape([rows, 1]);
    let out = Tensor::cat(vec![picked, entropy], 1) * keep;
    (out, Tensor::cat(vec![max, log_sum], 1))
}

/// Backward: `grad_logits [N, V]` from `grad_out [N, 2]` (gradients of logprob and
/// entropy), with `p = softmax(logits)` recomputed from `stats`:
/// `g_lp · (1[v = t] − p_v) − g_ent · p_v · (log p_v + H)`, zero on masked rows.
pub fn logprob_entropy_backward<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    mask: Tensor<B, 1>,
    stats: Tensor<B, 2>,
    out: Tensor<B, 2>,
    grad_out: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let [rows, vocab] = logits.dims();
    let logits_dtype = logits.dtype();
    let logits = logits.cast(FloatDType::F32);
    let mask = mask.cast(FloatDType::F32);
    let max = stats.clone().slice([0..rows, 0..1]);
    let log_sum = stats.slice([0..rows, 1..2]);
    let entropy = out.slice([0..rows, 1..2]);
    let keep = mask.reshape([rows, 1]);
    let g_lp = grad_out.clone().slice([0..rows, 0..1]) * keep.clone();
    let g_ent = grad_out.slice([0..rows, 1..2]) * keep;
    let logp = logits - max - log_sum;
    let p = logp.clone().exp();
    let one_hot = Tensor::<B, 2>::zeros([rows, vocab], &p.device()).scatter(
        1,
        targets.reshape([rows, 1]),
        Tensor::ones([rows, 1], &p.device()),
        burn::tensor::IndexingUpdateOp::Add,
    );
    let entropy_term = (p.clone() * (logp + entropy)).mask_fill(p.clone().equal_elem(0.0), 0.0);
    (g_lp * (one_hot - p) - g_ent * entropy_term).cast(logits_dtype)
}

/// `(r − mean) / (std + 1e-6)` per consecutive group of `group_size` (population std),
/// or `r − mean` when `scale` is false; groups whose rewards are all equal get
/// advantage 0 and keep 0. Returns `(advantages [M], keep [M])`, keep as 1.0 / 0.0.
pub fn group_advantages<B: Backend>(
    rewards: Tensor<B, 1>,
    group_size: usize,
    scale: bool,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [m] = rewards.dims();
    let groups = m / group_size;
    let r = rewards.reshape([groups, group_size]);
    let mean = r.clone().mean_dim(1);
    let centred = r.clone() - mean;
    let std = centred.clone().powi_scalar(2).mean_dim(1).sqrt();
    let spread = r.clone().max_dim(1) - r.min_dim(1);
    let keep = spread.greater_elem(0.0).float();
    let advantages = if scale {
        centred / (std + 1e-6)
    } else {
        centred
    };
    let keep = keep.expand([groups, group_size]);
    ((advantages * keep.clone()).reshape([m]), keep.reshape([m]))
}

/// Generator reward of each mask from its predictor group: `acc = mean(rewards)`,
/// reward `0` if `acc == 0` (an unpredictable span) else `1 − acc`.
pub fn generator_rewards<B: Backend>(
    predictor_rewards: Tensor<B, 1>,
    answers_per_mask: usize,
) -> Tensor<B, 1> {
    let [m] = predictor_rewards.dims();
    let tasks = m / answers_per_mask;
    let accuracy = predictor_rewards
        .reshape([tasks, answers_per_mask])
        .mean_dim(1)
        .reshape([tasks]);
    let solved_by_some = accuracy.clone().greater_elem(0.0).float();
    (accuracy.neg() + 1.0) * solved_by_some
}
