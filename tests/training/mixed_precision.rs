//! bf16 mixed precision on burn-flex, against the same model computing in f32 (the
//! second implementation): the gradients of the f32 master weights come within bf16's
//! rounding of the f32 gradients, weights and gradients stay f32 through the
//! optimizer, a few AdamW steps follow the f32 run's losses, a GRPO update with a KL
//! reference follows the f32 update, and the rollouts' cast-once weights compute
//! exactly what the update's cast-at-use weights do.

use burn::backend::{Autodiff, Flex};
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use pretrainzero::models::{random_decoder, Decoder};
use pretrainzero::optim::{BackwardShards, FusedAdamW};
use pretrainzero::pretrain::loss::next_token_loss;
use pretrainzero::update::policy_update::update_policy;
use pretrainzero::update::{LossAggregation, PolicyLossConfig, PolicySample, UpdateConfig};

use crate::tiny_qwen3::{batch, config, VOCAB};

type Ad = Autodiff<Flex>;

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
    let full: Decoder<Ad> = random_decoder(&config(64), 5, &device);
    let mixed = full.clone().with_compute_dtype(FloatDType::BF16);

    let loss_full = next_token_loss(&full, &batch(4, 25, 0), &device);
    let loss_mixed = next_token_loss(&mixed, &batch(4, 25, 0), &device);
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
    let start: Decoder<Ad> = random_decoder(&config(64), 6, &device);
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
            let loss = next_token_loss(&model, &batch(4, 25, step % 2), &device);
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
    assert_ne!(
        full, mixed,
        "bitwise the f32 losses: did the bf16 run compute in bf16?"
    );
    println!("losses f32 {full:?}\nlosses bf16 {mixed:?}");
    assert!(
        full[5] < full[0] - 0.1,
        "the f32 run learns the two batches: {full:?}"
    );
    for (step, (f, m)) in full.iter().zip(mixed).enumerate() {
        assert!(
            (f - m).abs() <= 1e-3 * f,
            "step {step}: bf16 loss {m} vs f32 {f} (runs {mixed:?} / {full:?})"
        );
    }
}

#[test]
fn casting_the_matrices_once_computes_what_casting_at_use_does() {
    let device = Default::default();
    let at_use: Decoder<Flex> =
        random_decoder::<Flex>(&config(64), 7, &device).with_compute_dtype(FloatDType::BF16);
    let once = at_use.clone().with_weights_in_compute_dtype();
    assert_eq!(once.embed_tokens.weight.val().dtype(), DType::BF16);
    assert_eq!(once.layers[0].mlp.up_proj.weight.val().dtype(), DType::BF16);
    assert_eq!(
        once.norm.gamma.val().dtype(),
        DType::F32,
        "norm scales stay f32"
    );

    let tokens = Tensor::<Flex, 2, Int>::from_data(
        TensorData::new((0..50).map(|i| (i * 37 % VOCAB) as i64).collect(), [2, 25]),
        &device,
    );
    let logits = |model: &Decoder<Flex>| -> Vec<f32> {
        let out = model.forward(tokens.clone());
        assert_eq!(out.dtype(), DType::BF16, "bf16 logits");
        out.into_data().convert::<f32>().into_vec().unwrap()
    };
    assert_eq!(logits(&once), logits(&at_use));
}

#[test]
fn a_grpo_update_with_a_kl_reference_in_bf16_follows_the_f32_update() {
    let device = Default::default();
    let start: Decoder<Ad> = random_decoder(&config(64), 8, &device);
    // Two groups of four answers to one prompt each, so the update runs each group's
    // prompt once through the KV cache.
    let samples: Vec<PolicySample> = (0..8)
        .map(|i| PolicySample {
            prompt_ids: (0..9)
                .map(|t| ((t * 11 + (i / 4) * 5) % VOCAB) as u32)
                .collect(),
            response_ids: (0..4)
                .map(|t| ((t * 23 + i * 3 + 1) % VOCAB) as u32)
                .collect(),
            advantage: if i % 2 == 0 { 1.0 } else { -1.0 },
        })
        .collect();
    let update = UpdateConfig {
        loss: PolicyLossConfig {
            kl_coef: 0.05,
            ..PolicyLossConfig::default()
        },
        aggregation: LossAggregation::TokenMean,
        ppo_mini_batches: 2,
        micro_batch_size: 4,
        max_grad_norm: 1.0,
        reward_step_budget_bytes: 1 << 20,
    };
    let mut results = Vec::new();
    for dtype in [FloatDType::F32, FloatDType::BF16] {
        let model = start.clone().with_compute_dtype(dtype);
        // A reference a little away from the policy, so the KL term is not zero.
        let reference = random_decoder::<Flex>(&config(64), 9, &device)
            .with_compute_dtype(dtype)
            .with_weights_in_compute_dtype();
        let mut optimizer = FusedAdamW::new().init::<Ad, Decoder<Ad>>();
        let (model, stats) = update_policy(
            model,
            &mut optimizer,
            Some(&reference),
            &samples,
            &update,
            BackwardShards::new(1),
            1e-3,
            &device,
        );
        assert_eq!(stats.optimizer_steps, 2, "{dtype:?}: {stats:?}");
        assert!(
            stats.loss.is_finite() && stats.grad_norm > 0.0,
            "{dtype:?}: {stats:?}"
        );
        for (id, param_dtype, _) in params(&model) {
            assert_eq!(
                param_dtype,
                DType::F32,
                "{dtype:?}: parameter {id} after the update"
            );
        }
        results.push(stats);
    }
    let (full, mixed) = (&results[0], &results[1]);
    println!("update f32 {full:?}\nupdate bf16 {mixed:?}");
    let close = |what: &str, f: f64, m: f64, tolerance: f64| {
        assert!(
            (f - m).abs() <= tolerance * f.abs().max(1e-3),
            "{what}: bf16 {m} vs f32 {f}"
        );
    };
    // Measured: loss 3 % apart (it is a small difference of the two advantage signs'
    // terms plus the KL, so its relative error is the largest), gradient norm 0.2 %,
    // entropy 1e-6.
    close("loss", full.loss, mixed.loss, 0.1);
    close("grad norm", full.grad_norm, mixed.grad_norm, 0.02);
    close("entropy", full.entropy, mixed.entropy, 1e-3);
}
