//! Scores and greedy continuations match PyTorch transformers (fp32, eager) on every
//! fixture: Qwen3 (q/k norm, head_dim ≠ hidden/heads), Qwen2 (qkv bias), Llama with an
//! untied head, and the pretrained stories260K Llama.

use burn::prelude::Backend;
use pretrainzero::models::{
    generate, score_sequence, GenerationConfig, PretrainedModel, SamplingConfig,
};

use crate::reference::{max_abs_diff, Reference};
use crate::{require_shared, Cpu, FIXTURE_MODELS};

/// Checks one fixture on backend `B`; returns the worst log-prob difference.
pub fn check_fixture<B: Backend>(name: &str, device: &B::Device) -> Option<f32> {
    let dir = crate::common::shared_data(&format!("models/{name}"))?;
    let reference = Reference::load(&dir);
    let pretrained = PretrainedModel::<B>::load(&dir, device).unwrap();

    let scores = score_sequence(&pretrained.model, &reference.input_ids, device).unwrap();
    let logprob_diff = max_abs_diff(&scores.target_logprobs, &reference.target_logprobs);
    let lse_diff = max_abs_diff(&scores.logsumexp, &reference.logsumexp);
    assert!(
        logprob_diff <= 1e-4,
        "{name}: target log-prob differs by {logprob_diff}"
    );
    assert!(
        lse_diff <= 1e-4,
        "{name}: log-sum-exp differs by {lse_diff}"
    );
    let nll_rel = (scores.mean_nll() - reference.mean_nll).abs() / reference.mean_nll.abs();
    assert!(
        nll_rel <= 1e-5,
        "{name}: mean NLL {} vs {} (relative {nll_rel})",
        scores.mean_nll(),
        reference.mean_nll
    );

    // transformers' reference continues greedily without stopping at EOS.
    let config =
        GenerationConfig::fixed_length(reference.greedy_new_ids.len(), SamplingConfig::greedy(), 0);
    let generated = generate(
        &pretrained.model,
        &[reference.input_ids.clone()],
        &config,
        None,
        device,
    )
    .unwrap();
    assert_eq!(
        generated[0].tokens, reference.greedy_new_ids,
        "{name}: greedy continuation"
    );
    Some(logprob_diff.max(lse_diff))
}

#[test]
fn fixtures_match_transformers_on_flex() {
    require_shared!("models");
    for name in FIXTURE_MODELS {
        if let Some(diff) = check_fixture::<burn::backend::Flex>(name, &Default::default()) {
            println!("{name}: max |Δ| = {diff:.2e} (flex)");
        }
    }
}

#[test]
fn fixtures_match_transformers_on_ndarray() {
    require_shared!("models");
    for name in FIXTURE_MODELS {
        if let Some(diff) = check_fixture::<Cpu>(name, &Default::default()) {
            println!("{name}: max |Δ| = {diff:.2e} (ndarray)");
        }
    }
}
