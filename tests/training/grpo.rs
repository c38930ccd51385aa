//! The policy gradient points the right way: on a one-step bandit (the reward is 1
//! for one particular token after a fixed prompt) the GRPO loop — sampling, group
//! advantages, clipped update — drives the reward up within a bounded number of steps.

use std::path::Path;

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::AdamWConfig;
use pretrainzero::advantage::group_advantages;
use pretrainzero::models::{
    generate, random_decoder, Decoder, GenerationConfig, ModelConfig, SamplingConfig,
};
use pretrainzero::optim::BackwardShards;
use pretrainzero::update::policy_update::update_policy;
use pretrainzero::update::{LossAggregation, PolicyLossConfig, PolicySample, UpdateConfig};

use crate::Cpu;

#[test]
fn grpo_learns_a_one_step_bandit() {
    let config = ModelConfig::from_json(
        serde_json::json!({"model_type": "qwen3", "vocab_size": 16, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
            "tie_word_embeddings": false}),
        Path::new("bandit"),
    )
    .unwrap();
    let device = Default::default();
    let mut model: Decoder<Autodiff<Cpu>> = random_decoder(&config, 1, &device);
    let mut optimizer = AdamWConfig::new().init::<Autodiff<Cpu>, Decoder<Autodiff<Cpu>>>();
    let update = UpdateConfig {
        loss: PolicyLossConfig::default(),
        aggregation: LossAggregation::TokenMean,
        ppo_mini_batches: 2,
        micro_batch_size: 8,
        max_grad_norm: 1.0,
        // A few rows per chunk, so the chunked reward step is what learns here.
        reward_step_budget_bytes: 4 * config.vocab_size * 4,
    };
    let prompt = vec![1u32, 2, 3];
    let best = 5u32;
    let group = 16;
    let mut history = Vec::new();
    for step in 0..40 {
        let rollout =
            GenerationConfig::fixed_length(1, SamplingConfig::with_temperature(1.0), step);
        let responses = generate(
            &model.valid(),
            &vec![prompt.clone(); group],
            &rollout,
            None,
            &device,
        )
        .unwrap();
        let rewards: Vec<f32> = responses
            .iter()
            .map(|r| if r.tokens[0] == best { 1.0 } else { 0.0 })
            .collect();
        history.push(rewards.iter().sum::<f32>() / group as f32);
        let advantages = group_advantages(&rewards, &[group], true);
        let samples: Vec<PolicySample> = responses
            .iter()
            .zip(&advantages.advantages)
            .filter(|_| advantages.keep[0])
            .map(|(r, &a)| PolicySample {
                prompt_ids: prompt.clone(),
                response_ids: r.tokens.clone(),
                advantage: a,
            })
            .collect();
        let stats;
        (model, stats) = update_policy(
            model,
            &mut optimizer,
            None,
            &samples,
            &update,
            BackwardShards::new(1),
            0.02,
            &device,
        );
        if !samples.is_empty() {
            assert_eq!(stats.optimizer_steps, 2);
            assert!(stats.entropy > 0.0);
        }
    }
    let start: f32 = history[..5].iter().sum::<f32>() / 5.0;
    let end: f32 = history[history.len() - 5..].iter().sum::<f32>() / 5.0;
    assert!(
        start < 0.3,
        "a random 16-token policy rarely hits the best token: {start}"
    );
    assert!(
        end > 0.8,
        "reward after 40 GRPO steps: {end} (history {history:?})"
    );
}
