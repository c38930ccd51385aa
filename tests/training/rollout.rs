//! Generation batches that run at the same time give the rollouts they give one after
//! another: each batch's sampling seed derives from its index, not from the order in
//! which batches finish.

use std::path::PathBuf;

use pretrainzero::models::{PretrainedModel, SamplingConfig};
use pretrainzero::policy::prompts::PromptTemplates;
use pretrainzero::rollout::{Rollout, RolloutEngine};

use crate::Cpu;

const PARAGRAPHS: [&str; 3] = [
    "The river rises in the northern hills and flows south through the old market town.",
    "In 1904 the railway reached the valley, and the village grew into a small town.",
    "The church was rebuilt in stone after a fire destroyed the wooden nave in 1820.",
];

#[test]
fn concurrent_generation_batches_equal_sequential_ones() {
    let device = Default::default();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/pretrainzero-wiki-tiny");
    let pretrained = PretrainedModel::<Cpu>::load(&dir, &device).unwrap();
    let tokenizer = pretrained.tokenizer.as_ref().unwrap();
    let template = PromptTemplates::default().predictor_direct;
    // Four answers per paragraph, sampled at temperature 1: 12 prompts in batches of 4.
    let mut prompts = Vec::new();
    for paragraph in PARAGRAPHS {
        let masked = paragraph.replacen("the", "[mask]", 1);
        let ids = tokenizer
            .encode(&PromptTemplates::fill(&template, &masked), false)
            .unwrap();
        prompts.extend(std::iter::repeat_n(ids, 4));
    }
    let rollouts = |concurrent_batches: usize| -> Vec<Rollout> {
        let engine = RolloutEngine {
            model: &pretrained.model,
            tokenizer,
            eos_token_ids: &[0],
            sampling: SamplingConfig::with_temperature(1.0),
            max_new_tokens: 6,
            batch_size: 4,
            concurrent_batches,
            device: &device,
        };
        engine.run(&prompts, &["}".to_string()], 11).unwrap()
    };
    let sequential = rollouts(1);
    let concurrent = rollouts(3);
    assert_eq!(sequential.len(), prompts.len());
    assert_eq!(concurrent.len(), prompts.len());
    for (i, (a, b)) in sequential.iter().zip(&concurrent).enumerate() {
        assert_eq!(a.prompt_ids, b.prompt_ids, "row {i}: prompts out of order");
        assert_eq!(a.response_ids, b.response_ids, "row {i}: different tokens");
        assert_eq!(a.finish_reason, b.finish_reason, "row {i}");
        for (x, y) in a.logprobs.iter().zip(&b.logprobs) {
            assert!((x - y).abs() <= 1e-5, "row {i}: logprob {x} vs {y}");
        }
    }
    // Sampling at temperature 1 gives a group more than one answer somewhere, so the
    // comparison covers the per-batch seeds and not only a greedy argmax.
    let distinct: std::collections::HashSet<&Vec<u32>> =
        sequential.iter().map(|r| &r.response_ids).collect();
    assert!(distinct.len() > PARAGRAPHS.len(), "{distinct:?}");
}
