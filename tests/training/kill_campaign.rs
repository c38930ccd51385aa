//! Kill -9 campaign. A short deterministic run of the default configuration runs once
//! uninterrupted; then, trial after trial, the same run is started afresh, killed with
//! SIGKILL at a random moment inside a chosen phase (rollout, update, checkpoint
//! writing, final export, report writing) and resumed with `--resume` to the end. Each
//! resumed run's metrics (all but the wall-clock fields), examples and final weights
//! must equal the uninterrupted run's, bit for bit.
//!
//! CI runs 5 trials (one per phase). The full campaign:
//!
//!     PRETRAINZERO_KILLS=20 cargo test --release --test training kill_campaign -- --nocapture
//!
//! prints one table row per trial. `PRETRAINZERO_KILL_SEED` changes the kill moments.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::ScratchDir;

const STEPS: usize = 3;
const PHASES: [&str; 5] = ["rollout", "update", "checkpoint", "export", "report"];

fn train(run_dir: &Path, resume: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pretrainzero"));
    command.env("PRETRAINZERO_TRACE_PHASES", "1").arg("train");
    if resume {
        command.arg("--resume").arg(run_dir);
    } else {
        command.arg("--deterministic").arg("--run-dir").arg(run_dir);
        for set in [
            format!("optim.steps={STEPS}"),
            "checkpoint.every=1".into(),
            "checkpoint.keep_last=2".into(),
            "rollout.paragraphs_per_step=2".into(),
            "policy.masks_per_paragraph=2".into(),
            "policy.answers_per_mask=4".into(),
            "rollout.max_response_tokens=6".into(),
        ] {
            command.arg("--set").arg(set);
        }
    }
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    command
}

fn run_to_end(mut command: Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts a fresh run and kills it `delay` after the `occurrence`-th start of
/// `phase`; returns the step that phase belonged to, or `None` if the run ended first.
fn start_and_kill(
    run_dir: &Path,
    phase: &str,
    occurrence: usize,
    delay: Duration,
) -> Option<usize> {
    let mut child = train(run_dir, false).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = 0;
    let step = loop {
        match received.recv() {
            Ok(line) => {
                let mut words = line.split_whitespace();
                if words.next() == Some("phase") && words.next() == Some(phase) {
                    seen += 1;
                    if seen == occurrence {
                        break words.next().and_then(|s| s.parse().ok());
                    }
                }
            }
            Err(_) => break None, // stderr closed: the run ended
        }
    };
    if step.is_some() {
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL on Unix
    }
    let _ = child.wait();
    step
}

/// Metrics rows without their wall-clock fields.
fn metrics_without_timing(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let mut row: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).unwrap();
            row.retain(|key, _| !key.contains("seconds") && !key.ends_with("per_s"));
            serde_json::Value::Object(row)
        })
        .collect()
}

fn newest_checkpoint(run_dir: &Path) -> usize {
    pretrainzero::checkpoint::list_checkpoints(run_dir)
        .unwrap()
        .last()
        .map_or(0, |(step, _)| *step)
}

#[test]
fn kill_campaign() {
    let trials: usize = std::env::var("PRETRAINZERO_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PHASES.len());
    let seed: u64 = std::env::var("PRETRAINZERO_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let scratch = ScratchDir::new("kill-campaign");
    let reference = scratch.0.join("uninterrupted");
    let started = Instant::now();
    run_to_end(train(&reference, false));
    let run_seconds = started.elapsed().as_secs_f64();
    let expected_metrics = metrics_without_timing(&reference);
    assert_eq!(expected_metrics.len(), STEPS);
    let expected_examples = std::fs::read(reference.join("examples.jsonl")).unwrap();
    let expected_weights = std::fs::read(reference.join("final/model.safetensors")).unwrap();

    let mut rng = StdRng::seed_from_u64(seed);
    println!("kill campaign: {trials} trials, seed {seed}, uninterrupted run {run_seconds:.1} s");
    println!("| trial | killed in | step | delay ms | resumed at | metrics | examples | weights |");
    println!("|---:|---|---:|---:|---:|---|---|---|");
    let mut all_equal = true;
    for trial in 0..trials {
        // Every phase in turn, at a random step and a random moment inside it.
        let phase = PHASES[trial % PHASES.len()];
        let per_step = matches!(phase, "rollout" | "update" | "checkpoint");
        let occurrence = if per_step {
            rng.random_range(1..=STEPS)
        } else {
            1
        };
        let max_delay_ms = match phase {
            "rollout" | "update" => (run_seconds * 1000.0 / STEPS as f64 / 3.0) as u64,
            _ => 40,
        };
        let delay = Duration::from_millis(rng.random_range(0..=max_delay_ms.max(1)));
        let run = scratch.0.join(format!("trial-{trial}"));
        let killed_at = start_and_kill(&run, phase, occurrence, delay);
        let resumed_at = newest_checkpoint(&run);
        run_to_end(train(&run, true));
        let same = |equal: bool| if equal { "equal" } else { "DIFFERENT" };
        let metrics_equal = metrics_without_timing(&run) == expected_metrics;
        let examples_equal =
            std::fs::read(run.join("examples.jsonl")).unwrap() == expected_examples;
        let weights_equal =
            std::fs::read(run.join("final/model.safetensors")).unwrap() == expected_weights;
        all_equal &= metrics_equal && examples_equal && weights_equal;
        println!(
            "| {trial} | {phase} | {} | {} | {resumed_at} | {} | {} | {} |",
            killed_at.map_or("ended first".to_string(), |s| s.to_string()),
            delay.as_millis(),
            same(metrics_equal),
            same(examples_equal),
            same(weights_equal)
        );
        std::fs::remove_dir_all(&run).unwrap();
    }
    assert!(
        all_equal,
        "a resumed run differs from the uninterrupted run (table above)"
    );
}
