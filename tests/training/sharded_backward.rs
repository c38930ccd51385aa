//! A micro-batch run as concurrent shards must train exactly like the same micro-batch
//! in one pass: the same reported loss and statistics, and (with plain SGD, whose step
//! is linear in the gradient) the same weights afterwards, within float round-off.

use std::path::Path;

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::SgdConfig;
use burn::prelude::*;
use pretrainzero::models::{random_decoder, Decoder, ModelConfig};
use pretrainzero::optim::BackwardShards;
use pretrainzero::pretrain::loss::next_token_loss;
use pretrainzero::pretrain::trainer::train_step;
use pretrainzero::pretrain::TokenChunk;
use pretrainzero::update::policy_update::update_policy;
use pretrainzero::update::{
    LossAggregation, PolicyLossConfig, PolicySample, UpdateConfig, UpdateStats,
};

use crate::Cpu;

pub(crate) fn small_model() -> Decoder<Autodiff<Cpu>> {
    let config = ModelConfig::from_json(
        serde_json::json!({"model_type": "qwen3", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
            "tie_word_embeddings": true}),
        Path::new("sharded"),
    )
    .unwrap();
    random_decoder(&config, 7, &Default::default())
}

/// Deterministic token ids in `1..64`.
pub(crate) fn ids(seed: usize, len: usize) -> Vec<u32> {
    (0..len)
        .map(|t| ((seed * 31 + t * 17 + 5) % 63 + 1) as u32)
        .collect()
}

/// Logits of a fixed probe batch, flattened.
pub(crate) fn probe_logits(model: &Decoder<Autodiff<Cpu>>) -> Vec<f32> {
    let probe: Vec<i64> = ids(99, 12).into_iter().map(i64::from).collect();
    let tokens =
        Tensor::<Cpu, 2, Int>::from_data(TensorData::new(probe, [1, 12]), &Default::default());
    model.valid().forward(tokens).into_data().to_vec().unwrap()
}

pub(crate) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn a_sharded_pretraining_step_equals_the_unsharded_step() {
    let device = Default::default();
    // One model for both runs (the forward pass initialises its lazy parameters; the
    // runs then start from clones of the same values).
    let base = small_model();
    let initial = probe_logits(&base);
    // Two micro-batches of 6 chunks; 3 shards split each into 3 × 2 chunks. Some
    // targets do not count (as a task prompt's under the answer-only loss), unevenly
    // over the shards and micro-batches, so the step's mean must weigh each shard by
    // its scored targets.
    let micro_batches: Vec<Vec<TokenChunk>> = (0..2)
        .map(|m| {
            (0..6)
                .map(|c| {
                    let chunk = m * 6 + c;
                    TokenChunk {
                        tokens: ids(chunk, 17),
                        scored: (0..17)
                            .map(|t| (t + chunk) % (chunk % 4 + 1) == 0)
                            .collect(),
                    }
                })
                .collect()
        })
        .collect();
    let all_chunks: Vec<TokenChunk> = micro_batches.iter().flatten().cloned().collect();
    let step_mean = next_token_loss(&base, &all_chunks, &device)
        .into_scalar()
        .elem::<f64>();
    let run = |shards: usize| {
        let mut optimizer = SgdConfig::new().init::<Autodiff<Cpu>, Decoder<Autodiff<Cpu>>>();
        let (model, outcome) = train_step(
            base.clone(),
            &mut optimizer,
            &micro_batches,
            BackwardShards::new(shards),
            0.5,
            1e9,
            &device,
        );
        (probe_logits(&model), outcome)
    };
    let (whole, whole_outcome) = run(1);
    let (sharded, sharded_outcome) = run(3);
    assert!(
        max_abs_diff(&whole, &initial) > 1e-3,
        "the step must move the weights for the comparison to mean anything"
    );
    assert!(
        (whole_outcome.loss - step_mean).abs() < 1e-5,
        "the step's loss {} is the mean over its scored targets {step_mean}",
        whole_outcome.loss
    );
    assert!((whole_outcome.loss - sharded_outcome.loss).abs() < 1e-5);
    assert!((whole_outcome.grad_norm - sharded_outcome.grad_norm).abs() < 1e-5);
    let diff = max_abs_diff(&whole, &sharded);
    assert!(diff < 1e-5, "logits after the step differ by {diff}");
}

#[test]
fn a_sharded_grpo_update_equals_the_unsharded_update() {
    let device = Default::default();
    // One model for both runs (the forward pass initialises its lazy parameters; the
    // runs then start from clones of the same values).
    let base = small_model();
    let initial = probe_logits(&base);
    // Two groups with different prompts, responses of different lengths, and advantages
    // of both signs; two mini-batches, so the second step sees a moved policy and
    // clipping can happen.
    let samples: Vec<PolicySample> = (0..12)
        .map(|i| PolicySample {
            prompt_ids: ids(i / 6, 5 + i / 6),
            response_ids: ids(100 + i, 1 + i % 4),
            advantage: if i % 3 == 0 { 1.5 } else { -0.75 },
        })
        .collect();
    let config = UpdateConfig {
        loss: PolicyLossConfig::default(),
        aggregation: LossAggregation::TokenMean,
        ppo_mini_batches: 2,
        micro_batch_size: 4,
        max_grad_norm: 1e9,
        reward_step_budget_bytes: 1 << 20,
    };
    let run = |shards: usize| {
        let mut optimizer = SgdConfig::new().init::<Autodiff<Cpu>, Decoder<Autodiff<Cpu>>>();
        let (model, stats) = update_policy(
            base.clone(),
            &mut optimizer,
            None,
            &samples,
            &config,
            BackwardShards::new(shards),
            0.3,
            &device,
        );
        (probe_logits(&model), stats)
    };
    let (whole, whole_stats) = run(1);
    assert_eq!(whole_stats.optimizer_steps, 2);
    // Two shards: each mini-batch's two micro-batches run as concurrent pieces. Four:
    // each of the two micro-batches is split in two.
    for shards in [2, 4] {
        let (sharded, sharded_stats) = run(shards);
        check_same_update(&whole, &whole_stats, &sharded, &sharded_stats, &initial);
    }
}

fn check_same_update(
    whole: &[f32],
    whole_stats: &UpdateStats,
    sharded: &[f32],
    sharded_stats: &UpdateStats,
    initial: &[f32],
) {
    assert_eq!(whole_stats.response_tokens, sharded_stats.response_tokens);
    for (name, a, b) in [
        ("loss", whole_stats.loss, sharded_stats.loss),
        ("grad_norm", whole_stats.grad_norm, sharded_stats.grad_norm),
        ("entropy", whole_stats.entropy, sharded_stats.entropy),
        (
            "clip_low",
            whole_stats.clip_low_fraction,
            sharded_stats.clip_low_fraction,
        ),
        (
            "clip_high",
            whole_stats.clip_high_fraction,
            sharded_stats.clip_high_fraction,
        ),
    ] {
        // Relative: the pieces' products round differently from the whole batch's.
        assert!(
            (a - b).abs() < 2e-5 * a.abs().max(1.0),
            "{name}: {a} vs {b}"
        );
    }
    let diff = max_abs_diff(whole, sharded);
    let moved = max_abs_diff(whole, initial);
    assert!(moved > 1e-2, "the update must move the weights");
    // Two steps, the second from the moved weights: float round-off of the first
    // grows a little, so the bound is relative to how far the logits moved. A lost or
    // double-counted piece would move them by a sizeable fraction of `moved`.
    assert!(
        diff < 1e-4 * moved,
        "logits after the update differ by {diff} (moved {moved})"
    );
}
