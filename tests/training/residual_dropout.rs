//! Residual dropout acts in the training passes only: a model that carries it computes
//! exactly the plain model's logits without autodiff (evaluation, rollouts, the
//! validation pass) and other logits in a training pass; a pretraining run that sets
//! it trains on other losses but validates on the same ones, and a rerun draws the
//! same masks; a run folder whose stored probability is out of range is refused by
//! name.

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// `key` of every step of a run folder's metrics.
fn column(run: &Path, key: &str) -> Vec<f64> {
    metrics(run)
        .iter()
        .map(|m| m[key].as_f64().unwrap())
        .collect()
}

fn close(a: &[f64], b: &[f64]) -> bool {
    // ndarray's multi-threaded reductions differ by ~1e-7 relative between runs.
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-5 * y.abs())
}

#[test]
fn a_pretraining_run_drops_in_training_only_and_repeats_its_masks() {
    let scratch = ScratchDir::new("residual-dropout");
    let tokenizer = small_tokenizer(&scratch.0.join("tokenizer"));
    let device = Default::default();
    let run = |name: &str, config: PretrainConfig| -> PathBuf {
        let dir = scratch.0.join(name);
        run_pretraining::<Cpu>(Some(config), &dir, &device).unwrap();
        dir
    };
    let base = PretrainConfig {
        steps: 2,
        validate_every: 1,
        ..config(tokenizer.clone())
    };
    let with_dropout = PretrainConfig {
        residual_dropout: 0.3,
        ..base.clone()
    };

    // At learning rate 0 the weights never move: the training losses differ (the
    // training pass drops), the validation losses do not (the validation pass does not).
    let frozen = |config: &PretrainConfig| PretrainConfig {
        lr: 0.0,
        ..config.clone()
    };
    let plain = run("frozen-plain", frozen(&base));
    let dropped = run("frozen-dropped", frozen(&with_dropout));
    let (plain_loss, dropped_loss) = (column(&plain, "loss"), column(&dropped, "loss"));
    assert!(
        (dropped_loss[0] - plain_loss[0]).abs() > 1e-3,
        "step-1 loss {} with dropout, {} without",
        dropped_loss[0],
        plain_loss[0]
    );
    assert!(close(
        &column(&dropped, "val_loss"),
        &column(&plain, "val_loss")
    ));

    // A deterministic rerun (one thread, so one shard draws the masks in a fixed order)
    // draws the same masks: the same steps, bit for bit.
    let cli_run = |name: &str| -> PathBuf {
        let dir = scratch.0.join(name);
        let output = Command::new(env!("CARGO_BIN_EXE_pretrainzero"))
            .args([
                "pretrain",
                "--preset",
                "tiny",
                "--steps",
                "2",
                "--warmup-steps",
                "1",
            ])
            .args([
                "--batch-size",
                "2",
                "--seq-len",
                "32",
                "--validate-every",
                "1",
            ])
            .args(["--validation-paragraphs", "20", "--seed", "9"])
            .args(["--residual-dropout", "0.3", "--deterministic"])
            .arg("--corpus")
            .arg(crate::wikipedia_sample())
            .arg("--tokenizer")
            .arg(&tokenizer)
            .arg("--out")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        dir
    };
    let (first, again) = (cli_run("dropped"), cli_run("dropped-again"));
    for key in ["loss", "grad_norm", "val_loss"] {
        assert_eq!(column(&again, key), column(&first, key), "{key}");
    }

    // The stored probability round-trips; a config written before the option existed
    // reads as 0; a stored probability of 1 (every branch dropped) is refused.
    let stored = first.join("pretrain_config.json");
    assert_eq!(read_run_config(&first).unwrap().residual_dropout, 0.3);
    let text = std::fs::read_to_string(&stored).unwrap();
    let key = "\"residual_dropout\": 0.3";
    assert!(text.contains(key), "{text}");
    let older = scratch.0.join("older");
    std::fs::create_dir_all(&older).unwrap();
    std::fs::write(
        older.join("pretrain_config.json"),
        text.replace(&format!("{key},"), ""),
    )
    .unwrap();
    assert_eq!(read_run_config(&older).unwrap().residual_dropout, 0.0);
    std::fs::write(&stored, text.replace(key, "\"residual_dropout\": 1.0")).unwrap();
    let error = run_pretraining::<Cpu>(None, &first, &device)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("pretrain_config.json") && error.contains("residual_dropout = 1"),
        "{error}"
    );
}
