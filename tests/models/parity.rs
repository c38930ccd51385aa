//! Scores and greedy continuations match PyTorch transformers (fp32, eager) on every
//! fixture: Qwen3 (q/k norm, head_dim ≠ hidden/heads), Qwen2 (qkv bias), Llama with an
//! untied head, and the pretrained stories260K Llama.

use pretrainzero::eval::fixture_parity;
use pretrainzero::kernels::FusedLayerBackend;

use crate::{require_shared, Cpu, FIXTURE_MODELS};

/// Checks one fixture on backend `B` against its transformers reference; returns the
/// worst log-prob difference (`None`: the shared fixtures are absent).
pub fn check_fixture<B: FusedLayerBackend>(name: &str, device: &B::Device) -> Option<f32> {
    let dir = crate::common::shared_data(&format!("models/{name}"))?;
    let parity = fixture_parity::check_fixture::<B>(&dir, device).unwrap();
    assert!(
        parity.passes(),
        "{name}: outside the tolerances (log-prob/log-sum-exp {:e}, mean NLL relative {:e}): {parity:?}",
        fixture_parity::LOGPROB_TOLERANCE,
        fixture_parity::MEAN_NLL_TOLERANCE
    );
    Some(parity.max_logprob_diff())
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
