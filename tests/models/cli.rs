//! The binary: `generate` and `score` against the references, and clean failures.

use std::process::Command;

use crate::reference::Reference;
use crate::require_shared;

fn pretrainzero(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pretrainzero"))
        .args(args)
        .output()
        .unwrap()
}

fn ids_arg(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

#[test]
fn generate_and_score_json() {
    let dir = require_shared!("models/stories260K-hf");
    let reference = Reference::load(&dir).unwrap();
    let model = dir.to_str().unwrap();
    let prompt = ids_arg(&reference.input_ids);
    let out = pretrainzero(&[
        "generate",
        "--model",
        model,
        "--prompt-ids",
        &prompt,
        "--greedy",
        "--max-new-tokens",
        "16",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let output_ids: Vec<u32> = json["output_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    // The CLI stops at EOS (id 2); the reference does not.
    let expected_len = reference
        .greedy_new_ids
        .iter()
        .position(|&t| t == 2)
        .map_or(16, |p| p + 1);
    assert_eq!(output_ids, reference.greedy_new_ids[..expected_len]);
    assert!(json["text"].is_string(), "stories260K-hf has a tokenizer");

    let out = pretrainzero(&["score", "--model", model, "--ids", &prompt, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nll = json["mean_nll"].as_f64().unwrap();
    assert!(
        (nll - reference.mean_nll).abs() / reference.mean_nll <= 1e-5,
        "{nll} vs {}",
        reference.mean_nll
    );
    assert_eq!(
        json["target_logprobs"].as_array().unwrap().len(),
        reference.input_ids.len() - 1
    );
}

#[test]
fn generate_from_text_prompt() {
    let dir = require_shared!("models/stories260K-hf");
    let out = pretrainzero(&[
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--prompt",
        "Once upon a time",
        "--max-new-tokens",
        "8",
        "--seed",
        "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty());
}

#[test]
fn errors_are_one_line_and_non_zero() {
    let dir = require_shared!("models/stories260K-hf");
    let out = pretrainzero(&[
        "generate",
        "--model",
        "/definitely/not/here",
        "--prompt-ids",
        "1,2",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/definitely/not/here") && stderr.trim().lines().count() == 1,
        "{stderr}"
    );

    let out = pretrainzero(&["score", "--model", dir.to_str().unwrap(), "--ids", "1,5000"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("5000") && stderr.contains("vocabulary"),
        "{stderr}"
    );

    let out = pretrainzero(&[
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--prompt-ids",
        "1,x",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`x`"));
}

#[test]
fn check_parity_reports_every_fixture_and_refuses_a_folder_without_any() {
    let models = require_shared!("models");
    let out = pretrainzero(&[
        "check",
        "parity",
        "--fixtures",
        models.to_str().unwrap(),
        "--device",
        "ndarray",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(report["passed"], true);
    let names: Vec<&str> = report["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fixture"].as_str().unwrap())
        .collect();
    for fixture in crate::FIXTURE_MODELS {
        assert!(names.contains(&fixture), "{fixture} missing from {names:?}");
    }

    let empty = std::env::temp_dir().join(format!("no-fixtures-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = pretrainzero(&["check", "parity", "--fixtures", empty.to_str().unwrap()]);
    std::fs::remove_dir(&empty).unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no fixture folder"), "{stderr}");
}

#[test]
fn the_device_check_dry_run_lists_every_part_and_its_report_reads_real_bench_output() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("device-check-{}", std::process::id()));
    let dry = Command::new("bash")
        .arg(repo.join("perf/gpu-check.sh"))
        .arg("--dry-run")
        .env("OUT", &out)
        .output()
        .unwrap();
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let plan = String::from_utf8_lossy(&dry.stdout);
    for part in [
        "parity",
        "kernels-shapes",
        "kernels-f32",
        "kernels-bf16",
        "generate",
        "train",
        "rl",
        "torch-kernels",
        "torch-train",
        "torch-generate",
        "device-report",
    ] {
        assert!(plan.contains(part), "the plan lacks {part}:\n{plan}");
    }
    assert!(!out.exists(), "a dry run writes nothing");

    // The report reads what the bench commands really print (tiny shapes, on the CPU).
    let parts = out.join("parts");
    std::fs::create_dir_all(&parts).unwrap();
    let kernels = pretrainzero(&[
        "bench", "kernels", "--device", "ndarray", "--rows", "8", "--vocab", "100", "--iters", "1",
        "--json",
    ]);
    assert!(
        kernels.status.success(),
        "{}",
        String::from_utf8_lossy(&kernels.stderr)
    );
    std::fs::write(parts.join("kernels-f32.json"), &kernels.stdout).unwrap();
    let report = pretrainzero(&["bench", "device-report", out.to_str().unwrap()]);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("device-check.json")).unwrap())
            .unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    let line = &json["kernels"][0];
    assert_eq!(
        (line["rows"].as_u64(), line["vocab"].as_u64()),
        (Some(8), Some(100))
    );
    assert!(line["forward_ms"].as_f64().unwrap() > 0.0);
    assert!(line["forward_percent_of_copy_bandwidth"].as_f64().unwrap() > 0.0);
    // On the CPU the "kernel" is the host loop: it agrees with the reference to f32
    // rounding.
    let diff = json["kernel_agreement"][0]["forward_max_abs_diff"]
        .as_f64()
        .unwrap();
    assert!(diff < 1e-5, "host path vs reference: {diff}");
    assert_eq!(json["parity_passed"], serde_json::Value::Null);
}

#[test]
fn bench_measures_a_model_folder_shape_and_names_an_unknown_one() {
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/models/pretrainzero-wiki-31m");
    let out = pretrainzero(&[
        "bench",
        "generate",
        "--preset",
        folder,
        "--batch-sizes",
        "1",
        "--prompt-len",
        "2",
        "--new-tokens",
        "2",
        "--device",
        "ndarray",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // By hand from its config.json: tied 8192 x 768 embedding, 4 layers of
    // q/o 768 x 768, k/v 768 x 256, SwiGLU 3 x 768 x 2048 and norms 768 + 768 + 64 + 64,
    // and the final norm: 6,291,456 + 4 x 6,293,120 + 768.
    assert_eq!(json["parameters"], 31_464_704);
    assert_eq!(json["config"]["hidden_size"], 768);

    let out = pretrainzero(&["bench", "generate", "--preset", "/no/such/model"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/no/such/model") && stderr.contains("tiny"),
        "{stderr}"
    );
}
