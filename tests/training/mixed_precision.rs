//! bf16 mixed precision on burn-flex, against the same model computing in f32 (the
//! second implementation): the gradients of the f32 master weights come within bf16's
//! rounding of the f32 gradients, weights and gradients stay f32 through the
//! optimizer, and a few AdamW steps follow the f32 run's losses.

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use pretrainzero::models::{random_decoder, Decoder, ModelConfig};
use pretrainzero::optim::FusedAdamW;
use pretrainzero::pretrain::loss::next_token_loss;
use pretrainzero::pretrain::TokenChunk;

type Ad = Autodiff<Flex>;

fn config() -> ModelConfig {
    ModelConfig::from_json(
        serde_json::json!({"model_type": "qwen3", "vocab_size": 97, "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
            "tie_word_embeddings": true}),
        Path::new("test"),
    )
    .unwrap()
}

fn batch(step: usize) -> Vec<TokenChunk> {
    (0..4)
        .map(|row| {
            TokenChunk::scored_everywhere(
                (0..25)
                    .map(|i| ((i * 31 + row * 7 + step * 13) % 97) as u32)
                    .collect(),
            )
        })
        .collect()
}

/// Every parameter's id, type and values, in visiting order.
struct Params(Vec<(ParamId, DType, Vec<f32>)>);

impl ModuleVisitor<Ad> for Params {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Ad, D>>) {
        let value = param.val();
        let dtype = value.dtype();
        let values = value.into_data().convert::<f32>().into_vec().unwrap();
        self.0.push((param.id, dtype, values));
    }
}

fn params(model: &Decoder<Ad>) -> Vec<(ParamId, DType, Vec<f32>)> {
    let mut params = Params(Vec::new());
    model.visit(&mut params);
    params.0
}

/// Each parameter's gradient (type and values), in visiting order.
fn gradients(model: &Decoder<Ad>, grads: &GradientsParams) -> Vec<(DType, Vec<f32>)> {
    struct Collect<'a>(&'a GradientsParams, Vec<(DType, Vec<f32>)>);
    impl ModuleVisitor<Ad> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Ad, D>>) {
            let grad = self
                .0
                .get::<Flex, D>(param.id)
                .expect("every parameter gets a gradient");
            let dtype = grad.dtype();
            self.1
                .push((dtype, grad.into_data().convert::<f32>().into_vec().unwrap()));
        }
    }
    let mut collect = Collect(grads, Vec::new());
    model.visit(&mut collect);
    collect.1
}

fn relative_l2(found: &[f32], expected: &[f32]) -> f64 {
    let diff: f64 = found
        .iter()
        .zip(expected)
        .map(|(f, e)| (*f as f64 - *e as f64).powi(2))
        .sum();
    let norm: f64 = expected.iter().map(|e| (*e as f64).powi(2)).sum();
    (diff / norm.max(f64::MIN_POSITIVE)).sqrt()
}

#[test]
fn bf16_gradients_reach_the_f32_master_weights_within_bf16_rounding() {
    let device = Default::default();
    let full: Decoder<Ad> = random_decoder(&config(), 5, &device);
    let mixed = full.clone().with_compute_dtype(FloatDType::BF16);

    let loss_full = next_token_loss(&full, &batch(0), &device);
    let loss_mixed = next_token_loss(&mixed, &batch(0), &device);
    let (value_full, value_mixed) = (
        loss_full.clone().into_scalar().elem::<f64>(),
        loss_mixed.clone().into_scalar().elem::<f64>(),
    );
    assert!(
        (value_mixed - value_full).abs() <= 1e-3 * value_full,
        "loss {value_mixed} in bf16 vs {value_full} in f32"
    );
    assert_ne!(
        value_mixed, value_full,
        "the bf16 loss is the f32 loss to the last bit: did it compute in bf16?"
    );

    let grads_full = gradients(
        &full,
        &GradientsParams::from_grads(loss_full.backward(), &full),
    );
    let grads_mixed = gradients(
        &mixed,
        &GradientsParams::from_grads(loss_mixed.backward(), &mixed),
    );
    assert_eq!(grads_full.len(), grads_mixed.len());
    let mut worst: f64 = 0.0;
    for (p, ((dtype, found), (_, expected))) in grads_mixed.iter().zip(&grads_full).enumerate() {
        assert_eq!(
            *dtype,
            DType::F32,
            "parameter {p}: the master weights' gradient is f32"
        );
        // bf16 rounds each product to 2^-9 relative; through two layers and the
        // backward the gradients stay within a few per cent of f32's (2 % measured).
        let error = relative_l2(found, expected);
        assert!(
            error < 0.05,
            "parameter {p}: gradient off by {error:.3} (relative L2)"
        );
        worst = worst.max(error);
    }
    println!("loss {value_mixed} (bf16) vs {value_full} (f32); worst gradient error {worst:.2e}");
}

#[test]
fn adamw_steps_in_bf16_keep_f32_weights_and_follow_the_f32_losses() {
    let device = Default::default();
    let start: Decoder<Ad> = random_decoder(&config(), 6, &device);
    let new_optimizer = || {
        FusedAdamW::new()
            .with_beta_2(0.95)
            .with_epsilon(1e-8)
            .with_weight_decay(0.01)
            .init::<Ad, Decoder<Ad>>()
    };
    let mut losses = Vec::new();
    for dtype in [FloatDType::F32, FloatDType::BF16] {
        let mut model = start.clone().with_compute_dtype(dtype);
        let mut optimizer = new_optimizer();
        let mut run = Vec::new();
        for step in 0..6 {
            let loss = next_token_loss(&model, &batch(step % 2), &device);
            run.push(loss.clone().into_scalar().elem::<f64>());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(3e-3, model, grads);
        }
        for (id, param_dtype, _) in params(&model) {
            assert_eq!(
                param_dtype,
                DType::F32,
                "{dtype:?}: parameter {id} after AdamW"
            );
        }
        assert_eq!(
            model.compute_dtype, dtype,
            "the model still computes in {dtype:?}"
        );
        losses.push(run);
    }
    let (full, mixed) = (&losses[0], &losses[1]);
    println!("losses f32 {full:?}\nlosses bf16 {mixed:?}");
    assert!(
        full[5] < full[0] - 0.1,
        "the f32 run learns the two batches: {full:?}"
    );
    for (step, (f, m)) in full.iter().zip(mixed).enumerate() {
        assert!(
            (f - m).abs() <= 2e-3 * f,
            "step {step}: bf16 loss {m} vs f32 {f} (runs {mixed:?} / {full:?})"
        );
    }
}
