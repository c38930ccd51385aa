//! One GRPO update on a rollout batch: recompute the rollout policy's log-probs with
//! the training engine (`logp_old`, so rollout and training never disagree), then
//! `ppo_mini_batches` optimizer steps, each accumulating gradients over micro-batches
//! so that any number of sequences fits in memory (on the CPU, micro-batches or their
//! shards run concurrently, see `concurrent_pieces` and `optim::sharded_backward`).
//! On several devices each replica learns from its share of every mini-batch, and the
//! gradients and statistics are summed over the replicas before each step (see
//! `parallel`).

use crate::kernels::RewardStepBackend;
use crate::kernels::RowChunking;
use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, Optimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::grpo_loss::{grpo_token_loss, LossAggregation, PolicyLossConfig};
use super::token_logprobs::{response_token_scores, ResponseBatch};
use crate::models::Decoder;
use crate::optim::{
    accumulate_sharded_gradients, clip_global_norm, is_finite_step, run_concurrently,
    BackwardShards,
};
use crate::parallel::PeerSync;

/// One sequence to learn from: its prompt, the sampled response, its advantage.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySample {
    pub prompt_ids: Vec<u32>,
    pub response_ids: Vec<u32>,
    pub advantage: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UpdateConfig {
    pub loss: PolicyLossConfig,
    pub aggregation: LossAggregation,
    pub ppo_mini_batches: usize,
    /// Sequences per forward/backward pass (gradient accumulation below that).
    pub micro_batch_size: usize,
    pub max_grad_norm: f64,
    /// Memory bound of the reward step: rows of logits are processed in chunks of at
    /// most this many bytes.
    pub reward_step_budget_bytes: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UpdateStats {
    pub optimizer_steps: usize,
    pub loss: f64,
    pub clip_low_fraction: f64,
    pub clip_high_fraction: f64,
    pub grad_norm: f64,
    /// Mean entropy of the rollout policy over response tokens.
    pub entropy: f64,
    pub response_tokens: usize,
    /// Optimizer steps skipped because their loss or gradient norm was NaN or
    /// infinite (the weights and AdamW moments stay as they were).
    pub nonfinite_steps: usize,
}

type Ad<B> = Autodiff<B>;

/// Runs the update on one device and returns the new model. Samples with an empty
/// prompt or response are ignored. Up to `shards` pieces run concurrently (see
/// `concurrent_pieces`).
#[allow(clippy::too_many_arguments)]
pub fn update_policy<B, O>(
    model: Decoder<Ad<B>>,
    optimizer: &mut O,
    reference: Option<&Decoder<B>>,
    samples: &[PolicySample],
    config: &UpdateConfig,
    shards: BackwardShards,
    lr: f64,
    device: &B::Device,
) -> (Decoder<Ad<B>>, UpdateStats)
where
    B: RewardStepBackend,
    O: Optimizer<Decoder<Ad<B>>, Ad<B>>,
{
    update_policy_on_peer(
        model,
        optimizer,
        reference,
        samples,
        config,
        shards,
        lr,
        device,
        PeerSync::single(),
    )
}

/// The update as one replica of a data-parallel group runs it. Every replica is given
/// all of the step's `samples` and cuts the same mini-batches from them; it computes
/// the gradients of its share of each mini-batch (whose loss weights are those of the
/// whole mini-batch), and the summed gradients make every replica take the step that
/// one device would take on the whole batch. The returned statistics are the group's.
#[allow(clippy::too_many_arguments)]
pub fn update_policy_on_peer<B, O>(
    mut model: Decoder<Ad<B>>,
    optimizer: &mut O,
    reference: Option<&Decoder<B>>,
    samples: &[PolicySample],
    config: &UpdateConfig,
    shards: BackwardShards,
    lr: f64,
    device: &B::Device,
    peer: PeerSync,
) -> (Decoder<Ad<B>>, UpdateStats)
where
    B: RewardStepBackend,
    O: Optimizer<Decoder<Ad<B>>, Ad<B>>,
{
    let samples: Vec<&PolicySample> = samples
        .iter()
        .filter(|s| !s.response_ids.is_empty() && !s.prompt_ids.is_empty())
        .collect();
    let mut stats = UpdateStats::default();
    if samples.is_empty() {
        return (model, stats);
    }
    let micro = config.micro_batch_size.max(1);
    let mini_batches = config.ppo_mini_batches.clamp(1, samples.len());
    let per_mini = samples.len().div_ceil(mini_batches);

    // logp_old (and logp_ref) per piece, computed once before any step. A mini-batch
    // is a list of rounds, and a round a list of pieces whose forward and backward
    // passes run concurrently (see `concurrent_pieces`).
    let rollout_policy = model.valid();
    // The reference policy is only scored when the KL term is on.
    let reference = reference.filter(|_| config.loss.kl_coef > 0.0);
    let chunking = RowChunking {
        budget_bytes: config.reward_step_budget_bytes,
    };
    let mut entropy_sum = 0.0;
    let mut plans: Vec<Vec<Vec<Piece<B>>>> = Vec::new();
    for mini in samples.chunks(per_mini) {
        let tokens: usize = mini.iter().map(|s| s.response_ids.len()).sum();
        let mut round_plans = Vec::new();
        for piece_samples in concurrent_pieces(peer.share(mini), micro, shards) {
            // The rollout policy's scores of the pieces, computed concurrently like
            // their backward passes below.
            let jobs: Vec<_> = piece_samples
                .iter()
                .map(|piece| {
                    let pairs: Vec<(&[u32], &[u32])> = piece
                        .iter()
                        .map(|s| (&s.prompt_ids[..], &s.response_ids[..]))
                        .collect();
                    let batch = ResponseBatch::<B>::new(&pairs, device);
                    (rollout_policy.clone(), reference.cloned(), batch)
                })
                .collect();
            let scored = run_concurrently(jobs, |(policy, reference, batch)| {
                let (logp_old, entropy) = response_token_scores(&policy, &batch, chunking);
                let logp_ref = reference.map(|r| response_token_scores(&r, &batch, chunking).0);
                let entropy_sum = entropy.sum().into_scalar().elem::<f64>();
                (batch, logp_old, logp_ref, entropy_sum)
            });
            let mut pieces = Vec::new();
            for (piece, (batch, logp_old, logp_ref, entropy)) in piece_samples.iter().zip(scored) {
                entropy_sum += entropy;
                // Per response token, in the batch's order (sequence by sequence).
                let mut advantages = Vec::with_capacity(batch.response_len());
                let mut weights = Vec::with_capacity(batch.response_len());
                for sample in *piece {
                    let len = sample.response_ids.len();
                    let weight = config.aggregation.token_weight(len, mini.len(), tokens);
                    advantages.extend(std::iter::repeat_n(sample.advantage, len));
                    weights.extend(std::iter::repeat_n(weight, len));
                }
                let rows = advantages.len();
                pieces.push(Piece {
                    batch,
                    logp_old,
                    logp_ref,
                    advantages: Tensor::from_data(TensorData::new(advantages, [rows]), device),
                    weight_sum: weights.iter().map(|&w| f64::from(w)).sum(),
                    weights: Tensor::from_data(TensorData::new(weights, [rows]), device),
                });
            }
            round_plans.push(pieces);
        }
        stats.response_tokens += tokens;
        plans.push(round_plans);
    }
    let entropy_sum = peer.sum_values::<B>(&[entropy_sum], device)[0];
    stats.entropy = entropy_sum / stats.response_tokens.max(1) as f64;

    let piece_loss = |model: &Decoder<Ad<B>>, piece: Piece<B>| {
        let batch = piece.batch.into_autodiff();
        let (logp_new, _) = response_token_scores(model, &batch, chunking);
        let out = grpo_token_loss(
            logp_new,
            Tensor::from_inner(piece.logp_old),
            Tensor::from_inner(piece.advantages),
            Tensor::from_inner(piece.weights),
            piece.logp_ref.map(Tensor::from_inner),
            &config.loss,
        );
        let summary = PieceOutcome {
            loss: out.loss.clone().into_scalar().elem::<f64>(),
            clip_low: out.clip_low_fraction.into_scalar().elem::<f64>(),
            clip_high: out.clip_high_fraction.into_scalar().elem::<f64>(),
            weight: piece.weight_sum,
        };
        (out.loss, summary)
    };

    for round_plans in plans {
        let mut accumulator = GradientsAccumulator::<Decoder<Ad<B>>>::new();
        let mut outcomes = Vec::new();
        for pieces in round_plans {
            outcomes.extend(accumulate_sharded_gradients(
                &model,
                pieces,
                piece_loss,
                &mut accumulator,
            ));
        }
        // Clip fractions are per piece over its own tokens' weights: weigh them back
        // into fractions of the mini-batch (of all replicas' shares).
        let sums = peer.sum_values::<B>(
            &[
                outcomes.iter().map(|o| o.loss).sum(),
                outcomes.iter().map(|o| o.clip_low * o.weight).sum(),
                outcomes.iter().map(|o| o.clip_high * o.weight).sum(),
                outcomes.iter().map(|o| o.weight).sum(),
            ],
            device,
        );
        let (loss, clip_low_weight, clip_high_weight) = (sums[0], sums[1], sums[2]);
        let total_weight = sums[3].max(1e-12);
        let mut grads = peer.sum_gradients(&model, accumulator.grads());
        let grad_norm = clip_global_norm(&model, &mut grads, config.max_grad_norm);
        if !is_finite_step(loss, grad_norm) {
            stats.nonfinite_steps += 1;
            continue;
        }
        model = optimizer.step(lr, model, grads);
        stats.optimizer_steps += 1;
        stats.loss += loss;
        stats.clip_low_fraction += clip_low_weight / total_weight;
        stats.clip_high_fraction += clip_high_weight / total_weight;
        stats.grad_norm += grad_norm;
    }
    let steps = stats.optimizer_steps.max(1) as f64;
    stats.loss /= steps;
    stats.clip_low_fraction /= steps;
    stats.clip_high_fraction /= steps;
    stats.grad_norm /= steps;
    (model, stats)
}

/// The pieces of a mini-batch's samples, in rounds whose pieces run concurrently.
///
/// A GRPO group's sequences share their prompt, which [`ResponseBatch`] runs once per
/// piece; splitting one micro-batch into shards runs a group's prompt once per shard.
/// So whole micro-batches run `shards` at a time, one per thread (peak memory: that
/// many micro-batches). A round with fewer micro-batches than shards (a short
/// mini-batch, or the last round) splits its micro-batches so that every thread
/// still has a piece.
fn concurrent_pieces<T>(samples: &[T], micro: usize, shards: BackwardShards) -> Vec<Vec<&[T]>> {
    let micro_batches: Vec<&[T]> = samples.chunks(micro).collect();
    micro_batches
        .chunks(shards.count())
        .map(|round| {
            let split = BackwardShards::new(shards.count() / round.len());
            round.iter().flat_map(|batch| split.split(batch)).collect()
        })
        .collect()
}

/// One piece of a micro-batch: its sequences, and per response token (`[R]`) the rest.
struct Piece<B: Backend> {
    batch: ResponseBatch<B>,
    logp_old: Tensor<B, 1>,
    logp_ref: Option<Tensor<B, 1>>,
    advantages: Tensor<B, 1>,
    weights: Tensor<B, 1>,
    /// Sum of `weights`.
    weight_sum: f64,
}

/// What one piece's loss pass reports besides its gradients.
struct PieceOutcome {
    loss: f64,
    clip_low: f64,
    clip_high: f64,
    weight: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(rounds: &[Vec<&[usize]>]) -> Vec<Vec<usize>> {
        rounds
            .iter()
            .map(|round| round.iter().map(|piece| piece.len()).collect())
            .collect()
    }

    #[test]
    fn whole_micro_batches_run_together_when_there_is_one_per_shard() {
        let samples: Vec<usize> = (0..10).collect();
        let two = BackwardShards::new(2);
        // Three micro-batches (4, 4, 2): a round of two whole micro-batches, then the
        // last one split in two.
        let rounds = concurrent_pieces(&samples, 4, two);
        assert_eq!(lengths(&rounds), vec![vec![4, 4], vec![1, 1]]);
        assert_eq!(rounds[1], vec![&[8][..], &[9][..]]);
        // Four shards, three micro-batches: each split in one piece (4 / 3 = 1).
        assert_eq!(
            lengths(&concurrent_pieces(&samples, 4, BackwardShards::new(4))),
            vec![vec![4, 4, 2]]
        );
        // Four shards, two micro-batches: each split in two.
        assert_eq!(
            lengths(&concurrent_pieces(&samples[..8], 4, BackwardShards::new(4))),
            vec![vec![2, 2, 2, 2]]
        );
        // One micro-batch: split into the shards.
        assert_eq!(
            lengths(&concurrent_pieces(&samples[..4], 4, two)),
            vec![vec![2, 2]]
        );
        // One shard: one micro-batch per round.
        assert_eq!(
            lengths(&concurrent_pieces(&samples, 4, BackwardShards::new(1))),
            vec![vec![4], vec![4], vec![2]]
        );
    }
}
