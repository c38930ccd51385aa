//! The PretrainZero loop end to end on the shipped model and sample: every span
//! policy runs two steps, and an interrupted run resumes exactly.

use std::path::{Path, PathBuf};

use pretrainzero::models::PretrainedModel;
use pretrainzero::policy::prompts::{PromptTemplates, MODEL_TEMPLATES_FILE};
use pretrainzero::train::span_log::read_span_log;
use pretrainzero::train::{run_training, TrainConfig};

use crate::common::ScratchDir;
use crate::{metrics, Cpu};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub(crate) fn small_config(policy: &str, steps: usize) -> TrainConfig {
    let overrides: Vec<String> = [
        format!(
            "model=\"{}\"",
            repo("models/pretrainzero-wiki-tiny").display()
        ),
        format!(
            "data.corpus=\"{}\"",
            repo("data/wikipedia-sample/heldout.wikiextractor").display()
        ),
        format!("policy.kind=\"{policy}\""),
        "policy.masks_per_paragraph=3".into(),
        "policy.answers_per_mask=3".into(),
        "rollout.paragraphs_per_step=2".into(),
        "rollout.max_response_tokens=6".into(),
        format!("optim.steps={steps}"),
        "optim.lr=1e-4".into(),
        "optim.micro_batch_size=8".into(),
        "checkpoint.every=1".into(),
        "checkpoint.keep_last=5".into(),
    ]
    .into();
    TrainConfig::load(&repo("configs/tiny-cpu.toml"), &overrides).unwrap()
}

#[test]
fn every_span_policy_runs_two_steps() {
    let device = Default::default();
    for policy in ["pretrainzero", "random-span", "random-ntp", "entropy-ntp"] {
        let scratch = ScratchDir::new(&format!("rl-{policy}"));
        let run = scratch.0.join("run");
        // Prompts in the suffix-first format, which the export must carry.
        let mut config = small_config(policy, 2);
        config.policy.templates = crate::prompt_templates::suffix_first();
        let summary = run_training::<Cpu>(Some(config), &run, &device).unwrap();
        assert_eq!(summary.steps, 2);
        let lines = metrics(&run);
        assert_eq!(lines.len(), 2, "{policy}");
        for line in &lines {
            assert_eq!(line["policy"], policy);
            for key in [
                "predictor_accuracy",
                "valid_mask_fraction",
                "zero_variance_fraction",
                "entropy",
                "lr",
                "grad_norm",
                "clip_low_fraction",
                "clip_high_fraction",
                "response_length_mean",
                "step_seconds",
            ] {
                assert!(line[key].is_number(), "{policy}: {key} missing in {line}");
            }
            let accuracy = line["predictor_accuracy"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&accuracy));
            if policy != "pretrainzero" {
                assert_eq!(
                    line["generator_rollouts"], 0,
                    "baselines have no generator role"
                );
            } else {
                assert_eq!(line["generator_rollouts"], 6, "2 paragraphs × 3 masks");
            }
            if line["update_skipped"] == false {
                assert!(line["optimizer_steps"].as_u64().unwrap() >= 1);
            }
        }
        check_span_log(&run, &lines, policy);
        PretrainedModel::<Cpu>::load(&summary.export_dir, &device).unwrap();
        // The export carries the prompts the run trained on.
        assert!(summary.export_dir.join(MODEL_TEMPLATES_FILE).is_file());
        assert_eq!(
            PromptTemplates::for_model(&summary.export_dir).unwrap(),
            crate::prompt_templates::suffix_first()
        );
    }
}

/// `spans.jsonl` holds every chosen span of every step: as many as the valid masks of
/// the metrics (a fraction of 2 paragraphs × 3 spans), and its per-span correct counts
/// add up to the step's predictor accuracy.
fn check_span_log(run: &Path, metrics: &[serde_json::Value], policy: &str) {
    let rows = read_span_log(&run.join("spans.jsonl")).unwrap();
    for line in metrics {
        let step = line["step"].as_u64().unwrap() as usize;
        let spans: Vec<_> = rows.iter().filter(|r| r.step == step).collect();
        let expected = line["valid_mask_fraction"].as_f64().unwrap() * 2.0 * 3.0;
        assert_eq!(
            spans.len(),
            expected.round() as usize,
            "{policy} step {step}"
        );
        for row in &spans {
            assert_eq!(serde_json::to_value(row.policy).unwrap(), policy);
            assert_eq!(row.span.answers, 3);
            assert!(row.span.correct <= 3);
            assert_eq!(row.span.next_word, policy.ends_with("ntp"), "{policy}");
            assert_eq!(
                row.span.predicted.len(),
                3,
                "{policy}: one answer per rollout"
            );
        }
        // The most frequent answer's share, recounted from the logged answers.
        let mut counts = std::collections::HashMap::<String, usize>::new();
        for answer in spans.iter().flat_map(|r| r.span.predicted.iter().flatten()) {
            let words: Vec<&str> = answer.split_whitespace().collect();
            *counts.entry(words.join(" ")).or_default() += 1;
        }
        let top = counts.values().copied().max().unwrap_or(0);
        let share = top as f64 / (3 * spans.len()).max(1) as f64;
        let logged = line["top_answer_share"].as_f64().unwrap();
        assert!(
            (share - logged).abs() < 1e-9,
            "{policy} step {step}: top answer share {share} vs {logged}"
        );
        if !spans.is_empty() {
            let correct: usize = spans.iter().map(|r| r.span.correct).sum();
            let accuracy = correct as f64 / (3 * spans.len()) as f64;
            let logged = line["predictor_accuracy"].as_f64().unwrap();
            assert!(
                (accuracy - logged).abs() < 1e-9,
                "{policy} step {step}: {accuracy} vs {logged}"
            );
        }
    }
}

/// `interrupted` as the run in `full` leaves it when killed right after step 1: its
/// configuration, the step-1 checkpoint and the first metrics row.
pub(crate) fn killed_after_step_1(full: &Path, interrupted: &Path, first_row: &serde_json::Value) {
    std::fs::create_dir_all(interrupted.join("checkpoints")).unwrap();
    std::fs::copy(
        full.join("train_config.toml"),
        interrupted.join("train_config.toml"),
    )
    .unwrap();
    crate::pretrain::copy_dir(
        &full.join("checkpoints/step-0000001"),
        &interrupted.join("checkpoints/step-0000001"),
    );
    std::fs::write(interrupted.join("metrics.jsonl"), format!("{first_row}\n")).unwrap();
}

#[test]
fn resumed_training_continues_like_an_uninterrupted_run() {
    let device = Default::default();
    let scratch = ScratchDir::new("rl-resume");
    let full = scratch.0.join("full");
    run_training::<Cpu>(Some(small_config("random-span", 3)), &full, &device).unwrap();
    let expected = metrics(&full);

    let interrupted = scratch.0.join("interrupted");
    killed_after_step_1(&full, &interrupted, &expected[0]);
    run_training::<Cpu>(None, &interrupted, &device).unwrap();
    let resumed = metrics(&interrupted);
    assert_eq!(resumed.len(), 3);
    for step in 1..3 {
        for key in [
            "paragraphs",
            "predictor_rollouts",
            "samples",
            "optimizer_steps",
            "response_tokens",
            "lr",
            "predictor_accuracy",
            "mask_words_mean",
        ] {
            assert_eq!(
                resumed[step][key],
                expected[step][key],
                "step {} {key}",
                step + 1
            );
        }
        for key in ["loss", "entropy", "grad_norm"] {
            let (a, b) = (
                resumed[step][key].as_f64().unwrap(),
                expected[step][key].as_f64().unwrap(),
            );
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1e-3),
                "step {} {key}: {a} vs {b}",
                step + 1
            );
        }
    }
}

#[test]
fn the_default_train_runs_from_a_directory_outside_the_repository() {
    let scratch = ScratchDir::new("train-anywhere");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_pretrainzero"))
        .current_dir(&scratch.0)
        .args(["train", "--device", "ndarray"])
        .args([
            "--set",
            "optim.steps=1",
            "--set",
            "rollout.paragraphs_per_step=2",
        ])
        .args([
            "--set",
            "policy.masks_per_paragraph=2",
            "--set",
            "policy.answers_per_mask=2",
        ])
        .args(["--set", "rollout.max_response_tokens=4"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let run_dir = scratch.0.join("runs/tiny-cpu-pretrainzero");
    assert_eq!(metrics(&run_dir).len(), 1);
    // The stored configuration names the shipped files by absolute path, so the run
    // also resumes from anywhere.
    let stored = std::fs::read_to_string(run_dir.join("train_config.toml")).unwrap();
    assert!(
        stored.contains(&repo("models/pretrainzero-wiki-31m").display().to_string()),
        "{stored}"
    );
}

#[test]
fn a_cold_start_runs_random_spans_first_and_resumes_inside_it() {
    let device = Default::default();
    let scratch = ScratchDir::new("rl-cold-start");
    let mut config = small_config("pretrainzero", 3);
    config.policy.cold_start_steps = 2;
    let full = scratch.0.join("full");
    run_training::<Cpu>(Some(config), &full, &device).unwrap();
    let expected = metrics(&full);
    let policies: Vec<&str> = expected
        .iter()
        .map(|m| m["policy"].as_str().unwrap())
        .collect();
    assert_eq!(policies, ["random-span", "random-span", "pretrainzero"]);
    let generator: Vec<u64> = expected
        .iter()
        .map(|m| m["generator_rollouts"].as_u64().unwrap())
        .collect();
    assert_eq!(
        generator,
        [0, 0, 6],
        "the generator role starts after the cold start"
    );

    // Killed after step 1, inside the cold start: the resumed run continues it.
    let interrupted = scratch.0.join("interrupted");
    killed_after_step_1(&full, &interrupted, &expected[0]);
    run_training::<Cpu>(None, &interrupted, &device).unwrap();
    let resumed = metrics(&interrupted);
    assert_eq!(resumed.len(), 3);
    for step in 1..3 {
        for key in [
            "policy",
            "generator_rollouts",
            "predictor_rollouts",
            "samples",
            "lr",
        ] {
            assert_eq!(
                resumed[step][key],
                expected[step][key],
                "step {} {key}",
                step + 1
            );
        }
    }
}

#[test]
fn dynamic_sampling_draws_more_paragraphs_up_to_its_bound() {
    let device = Default::default();
    let scratch = ScratchDir::new("rl-dynamic-sampling");
    let mut config = small_config("random-span", 1);
    // A target no step reaches: the step stops after 1 + 2 draws of 2 paragraphs.
    config.rollout.min_signal_groups = 10_000;
    config.rollout.max_extra_draws = 2;
    let run = scratch.0.join("run");
    run_training::<Cpu>(Some(config), &run, &device).unwrap();
    let row = &metrics(&run)[0];
    assert_eq!(row["extra_draws"], 2);
    assert_eq!(row["paragraphs"], 6);
    assert_eq!(
        row["predictor_rollouts"],
        2 * 3 * 3,
        "the first draw's rollouts"
    );
    assert!(
        row["samples"].as_u64().unwrap() <= 3 * 2 * 3 * 3,
        "samples of all draws"
    );
}
