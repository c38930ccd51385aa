//! The fused AdamW against burn's own `AdamW` (the second implementation): the same
//! weights after several steps on the same gradients, on both CPU backends, and
//! optimizer state that moves between the two through a checkpoint's bytes.

use crate::tiny_qwen3::{batch, config};
use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use pretrainzero::kernels::RewardStepBackend;
use pretrainzero::models::{random_decoder, Decoder};
use pretrainzero::optim::FusedAdamW;
use pretrainzero::pretrain::loss::next_token_loss;

fn gradients<B: RewardStepBackend>(
    model: &Decoder<Autodiff<B>>,
    step: usize,
    device: &B::Device,
) -> GradientsParams {
    let loss = next_token_loss(model, &batch(3, 17, step), device);
    GradientsParams::from_grads(loss.backward(), model)
}

/// Every parameter's values, in visiting order.
struct Values(Vec<Vec<f32>>);

impl<B: Backend> ModuleVisitor<B> for Values {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let data = param.val().into_data().convert::<f32>();
        self.0.push(data.into_vec().unwrap());
    }
}

fn values<B: Backend, M: Module<B>>(model: &M) -> Vec<Vec<f32>> {
    let mut values = Values(Vec::new());
    model.visit(&mut values);
    values.0
}

fn assert_same_weights(found: &[Vec<f32>], expected: &[Vec<f32>], what: &str) {
    assert_eq!(found.len(), expected.len());
    for (p, (found, expected)) in found.iter().zip(expected).enumerate() {
        for (i, (f, e)) in found.iter().zip(expected).enumerate() {
            assert!(
                (f - e).abs() <= 1e-5 * e.abs().max(1.0),
                "{what}: parameter {p} element {i}: {f} vs {e}"
            );
        }
    }
}

fn check_backend<B: RewardStepBackend>(name: &str) {
    type Ad<B> = Autodiff<B>;
    let device = B::Device::default();
    let start: Decoder<Ad<B>> = random_decoder(&config(32), 5, &device);
    let (lr, weight_decay) = (3e-3, 0.1);
    let mut burn_adamw = AdamWConfig::new()
        .with_beta_2(0.95)
        .with_epsilon(1e-8)
        .with_weight_decay(weight_decay as f32)
        .init::<Ad<B>, Decoder<Ad<B>>>();
    let mut fused = FusedAdamW::new()
        .with_beta_2(0.95)
        .with_epsilon(1e-8)
        .with_weight_decay(weight_decay as f32)
        .init::<Ad<B>, Decoder<Ad<B>>>();
    let (mut reference, mut model) = (start.clone(), start.clone());
    for step in 0..4 {
        let grads = gradients(&reference, step, &device);
        reference = burn_adamw.step(lr, reference, grads);
        let grads = gradients(&model, step, &device);
        model = fused.step(lr, model, grads);
    }
    let moved = values::<Ad<B>, _>(&start)
        .iter()
        .flatten()
        .zip(values::<Ad<B>, _>(&model).iter().flatten())
        .any(|(a, b)| a != b);
    assert!(moved, "{name}: the fused steps changed no weight");
    assert_same_weights(
        &values::<Ad<B>, _>(&model),
        &values::<Ad<B>, _>(&reference),
        &format!("{name}: 4 steps"),
    );

    // The fused optimizer's state, written and read back as burn's AdamW state, carries
    // burn's AdamW on exactly as it carries the fused one.
    let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::new();
    let bytes = recorder.record(fused.to_record(), ()).unwrap();
    let mut restored = AdamWConfig::new()
        .with_beta_2(0.95)
        .with_epsilon(1e-8)
        .with_weight_decay(weight_decay as f32)
        .init::<Ad<B>, Decoder<Ad<B>>>()
        .load_record(recorder.load(bytes, &device).unwrap());
    let grads = gradients(&model, 4, &device);
    let through_burn = restored.step(lr, model.clone(), grads);
    let grads = gradients(&model, 4, &device);
    let through_fused = fused.step(lr, model, grads);
    assert_same_weights(
        &values::<Ad<B>, _>(&through_fused),
        &values::<Ad<B>, _>(&through_burn),
        &format!("{name}: step 5 after a state round trip"),
    );
}

#[test]
fn fused_adamw_matches_burns_adamw_on_both_cpu_backends() {
    check_backend::<burn::backend::NdArray<f32>>("ndarray");
    check_backend::<burn::backend::Flex>("flex");
}
