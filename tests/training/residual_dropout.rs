//! Residual dropout acts in the training passes only: a model that carries it computes
//! exactly the plain model's logits without autodiff (evaluation, rollouts, the
//! validation pass), other logits in a training pass, and a pretraining run that sets
//! it trains on other losses from the first step; a run folder whose stored
//! probability is out of range is refused by name.

use burn::module::AutodiffModule;
use burn::prelude::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use pretrainzero::pretrain::trainer::read_run_config;
use pretrainzero::pretrain::{run_pretraining, PretrainConfig};

use crate::common::ScratchDir;
use crate::pretrain::{config, small_tokenizer};
use crate::sharded_backward::{ids, max_abs_diff, small_model};
use crate::{metrics, Cpu};

/// A fixed 12-token sequence.
fn probe<B: Backend>() -> Tensor<B, 2, Int> {
    let tokens: Vec<i64> = ids(3, 12).into_iter().map(i64::from).collect();
    Tensor::from_data(TensorData::new(tokens, [1, 12]), &Default::default())
}

fn values<B: Backend>(logits: Tensor<B, 3>) -> Vec<f32> {
    logits.into_data().to_vec().unwrap()
}

#[test]
fn dropout_changes_the_training_pass_and_nothing_else() {
    let plain = small_model();
    let dropped = plain.clone().with_residual_dropout(0.5);

    let reference = values(plain.valid().forward(probe()));
    // Without autodiff the probability is carried but not applied.
    assert_eq!(values(dropped.valid().forward(probe())), reference);
    // With autodiff and probability 0, the training pass is the plain one.
    let plain_training = values(plain.forward(probe()));
    assert!(max_abs_diff(&plain_training, &reference) < 1e-6);
    // With probability 0.5, half of each branch output is dropped: the logits move by
    // far more than rounding, and two passes draw different masks.
    let first = values(dropped.forward(probe()));
    let second = values(dropped.forward(probe()));
    assert!(max_abs_diff(&first, &reference) > 1e-2);
    assert!(max_abs_diff(&first, &second) > 1e-2);
}

#[test]
fn a_pretraining_run_with_dropout_trains_on_other_losses() {
    let scratch = ScratchDir::new("residual-dropout");
    let tokenizer = small_tokenizer(&scratch.0.join("tokenizer"));
    let device = Default::default();
    let first_loss = |name: &str, config: PretrainConfig| -> f64 {
        let run = scratch.0.join(name);
        run_pretraining::<Cpu>(Some(config), &run, &device).unwrap();
        metrics(&run)[0]["loss"].as_f64().unwrap()
    };
    let base = PretrainConfig {
        steps: 1,
        ..config(tokenizer.clone())
    };
    let without = first_loss("without", base.clone());
    let with = first_loss(
        "with",
        PretrainConfig {
            residual_dropout: 0.3,
            ..base
        },
    );
    // Same init, same batch: only the dropped branch outputs differ at step 1.
    assert!(without.is_finite() && with.is_finite());
    assert!(
        (with - without).abs() > 1e-4,
        "step-1 loss {with} with dropout, {without} without"
    );
    assert_eq!(
        read_run_config(&scratch.0.join("with"))
            .unwrap()
            .residual_dropout,
        0.3
    );

    // A stored probability of 1 (every branch dropped) is refused on resume.
    let broken = scratch.0.join("with/pretrain_config.json");
    let text = std::fs::read_to_string(&broken).unwrap();
    std::fs::write(
        &broken,
        text.replace("\"residual_dropout\": 0.3", "\"residual_dropout\": 1.0"),
    )
    .unwrap();
    let error = run_pretraining::<Cpu>(None, &scratch.0.join("with"), &device)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("pretrain_config.json") && error.contains("residual_dropout = 1"),
        "{error}"
    );
}
