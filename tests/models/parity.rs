//! Scores and greedy continuations match PyTorch transformers (fp32, eager) on every
//! fixture: Qwen3 (q/k norm, head_dim ≠ hidden/heads), Qwen2 (qkv bias), Llama with an
//! untied head, and the pretrained stories260K Llama.

use pretrainzero::eval::fixture_parity;
use pretrainzero::kernels::FusedLayerBackend;
use pretrainzero::models::ComputeDtype;

use crate::{require_shared, Cpu, FIXTURE_MODELS};

/// Checks one fixture on backend `B`, computing in `dtype`, against its transformers
/// reference; returns the worst log-prob difference (`None`: the shared fixtures are
/// absent).
pub fn check_fixture_in<B: FusedLayerBackend>(
    name: &str,
    dtype: ComputeDtype,
    device: &B::Device,
) -> Option<f32> {
    let dir = crate::common::shared_data(&format!("models/{name}"))?;
    let parity = fixture_parity::check_fixture::<B>(&dir, dtype, device).unwrap();
    assert!(
        parity.passes(),
        "{name}: outside the {dtype} tolerances {:?}: {parity:?}",
        parity.tolerances()
    );
    Some(parity.max_logprob_diff())
}

/// [`check_fixture_in`] f32.
pub fn check_fixture<B: FusedLayerBackend>(name: &str, device: &B::Device) -> Option<f32> {
    check_fixture_in::<B>(name, ComputeDtype::F32, device)
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

/// bf16 mixed precision against the same f32 reference: inside bf16's tolerances on
/// every fixture, and measurably off the f32 results (so the bf16 path really ran).
#[test]
fn fixtures_match_transformers_in_bf16_on_flex() {
    require_shared!("models");
    let mut worst: f32 = 0.0;
    for name in FIXTURE_MODELS {
        let diff =
            check_fixture_in::<burn::backend::Flex>(name, ComputeDtype::Bf16, &Default::default());
        if let Some(diff) = diff {
            println!("{name}: max |Δ| = {diff:.2e} (flex, bf16)");
            worst = worst.max(diff);
        }
    }
    let f32_tolerance = fixture_parity::Tolerances::for_dtype(ComputeDtype::F32).logprob;
    assert!(
        worst > 10.0 * f32_tolerance,
        "bf16 results within {worst:e} of the f32 reference: did the model compute in f32?"
    );
}
