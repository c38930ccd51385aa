//! `pretrainzero bench device-report DIR`: the parts of a device check
//! (perf/gpu-check.sh writes them under `DIR/parts`) as one JSON file,
//! `DIR/device-check.json`, and one table on stdout, with every figure next to its
//! PyTorch peer from the same run. A missing or unreadable part is reported as such.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::bench::{fixed_cell, median, scientific_cell};
use serde_json::Value;

#[derive(Debug, Clone, clap::Args)]
pub struct DeviceReportArgs {
    /// The device check's output folder (the one holding `parts/`).
    pub dir: PathBuf,
}

/// The raw parts, each `None` when its file is absent or not JSON.
#[derive(Debug, Default)]
pub struct Parts {
    pub gpu: Option<String>,
    /// One object per line of `status.jsonl`: `{part, rc, seconds}`.
    pub status: Vec<Value>,
    pub parity: Option<Value>,
    /// `check parity --dtype bf16`.
    pub parity_bf16: Option<Value>,
    pub kernels_shapes: Option<Value>,
    pub kernels_f32: Option<Value>,
    pub kernels_bf16: Option<Value>,
    pub generate: Option<Value>,
    pub train: Option<Value>,
    /// `bench train --dtype bf16`.
    pub train_bf16: Option<Value>,
    pub torch_kernels: Option<Value>,
    pub torch_generate: Option<Value>,
    pub torch_train: Option<Value>,
    /// `torch_bench.py --dtype bf16` (autocast).
    pub torch_train_bf16: Option<Value>,
    /// The `metrics.jsonl` rows of the RL steps.
    pub rl_metrics: Vec<Value>,
    /// The same, computing in bf16.
    pub rl_bf16_metrics: Vec<Value>,
    /// The model folder the RL steps ran (`rl-model.txt`): the 5M model where the
    /// 31M weights did not travel.
    pub rl_model: Option<String>,
}

impl Parts {
    pub fn read(parts: &Path) -> Self {
        let json = |name: &str| -> Option<Value> {
            let text = std::fs::read_to_string(parts.join(format!("{name}.json"))).ok()?;
            // The last line: a command may print notes before its JSON.
            serde_json::from_str(text.trim().lines().last()?).ok()
        };
        let lines = |name: &str| -> Vec<Value> {
            std::fs::read_to_string(parts.join(name))
                .map(|text| {
                    text.lines()
                        .filter_map(|l| serde_json::from_str(l).ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            gpu: std::fs::read_to_string(parts.join("gpu.txt"))
                .ok()
                .map(|s| s.trim().to_string()),
            status: lines("status.jsonl"),
            parity: json("parity"),
            parity_bf16: json("parity-bf16"),
            kernels_shapes: json("kernels-shapes"),
            kernels_f32: json("kernels-f32"),
            kernels_bf16: json("kernels-bf16"),
            generate: json("generate"),
            train: json("train"),
            train_bf16: json("train-bf16"),
            torch_kernels: json("torch-kernels"),
            torch_generate: json("torch-generate"),
            torch_train: json("torch-train"),
            torch_train_bf16: json("torch-train-bf16"),
            rl_metrics: lines("rl-metrics.jsonl"),
            rl_bf16_metrics: lines("rl-bf16-metrics.jsonl"),
            rl_model: std::fs::read_to_string(parts.join("rl-model.txt"))
                .ok()
                .map(|s| s.trim().to_string()),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KernelLine {
    pub dtype: String,
    pub rows: u64,
    pub vocab: u64,
    pub forward_ms: Option<f64>,
    pub forward_backward_ms: Option<f64>,
    /// Forward bytes moved per second over the copy's (read + write) bytes per second.
    pub forward_percent_of_copy_bandwidth: Option<f64>,
    /// PyTorch eager `log_softmax + gather + entropy` time over ours (f32 only).
    pub forward_speedup_vs_torch: Option<f64>,
    pub forward_backward_speedup_vs_torch: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgreementLine {
    pub dtype: String,
    pub rows: u64,
    pub vocab: u64,
    pub forward_max_abs_diff: Option<f64>,
    pub gradient_max_abs_diff: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RatioLine {
    pub name: String,
    pub ours: f64,
    pub torch: Option<f64>,
    /// ours / PyTorch for rates (tokens/s).
    pub ratio: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RlSummary {
    pub steps: usize,
    pub median_step_seconds: f64,
    pub median_rollout_tokens_per_s: f64,
    pub median_update_tokens_per_s: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceReport {
    pub gpu: Option<String>,
    /// `(part, rc, seconds)` as the script recorded them.
    pub parts: Vec<Value>,
    pub parity_passed: Option<bool>,
    pub parity_worst_logprob_diff: Option<f64>,
    /// The same in bf16, against the same f32 reference with bf16's tolerances.
    pub parity_bf16_passed: Option<bool>,
    pub parity_bf16_worst_logprob_diff: Option<f64>,
    pub kernel_agreement: Vec<AgreementLine>,
    /// How `bench kernels` ran the reward step (the merge the device allowed).
    pub kernel_form: Option<String>,
    pub kernels: Vec<KernelLine>,
    /// Decode tokens/s per batch size.
    pub generate: Vec<RatioLine>,
    /// Tokens/s of `bench train`'s measurements, f32 then bf16 (names end in
    /// ", bf16"; the peer is PyTorch under autocast).
    pub train: Vec<RatioLine>,
    pub rl: Option<RlSummary>,
    pub rl_bf16: Option<RlSummary>,
    /// The model folder of the RL steps.
    pub rl_model: Option<String>,
}

fn ratio(ours: f64, theirs: Option<f64>) -> Option<f64> {
    theirs.filter(|t| *t > 0.0).map(|t| ours / t)
}

/// `(passed, worst log-prob |Δ|)` of a `check parity --json` output.
fn parity_summary(parity: &Option<Value>) -> (Option<bool>, Option<f64>) {
    let Some(parity) = parity else {
        return (None, None);
    };
    let worst = parity["fixtures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| {
            Some(
                x["target_logprob_max_diff"]
                    .as_f64()?
                    .max(x["logsumexp_max_diff"].as_f64()?),
            )
        })
        .reduce(f64::max);
    (parity["passed"].as_bool(), worst)
}

/// `bench train`'s measurements against the PyTorch peer's of the same names; `label`
/// is appended to each name (", bf16").
fn train_lines(ours: &Option<Value>, torch: &Option<Value>, label: &str) -> Vec<RatioLine> {
    let peer = |peer_name: &str| {
        torch.as_ref().and_then(|t| {
            t["measurements"]
                .as_array()?
                .iter()
                .find(|x| x["name"] == peer_name)
                .and_then(|x| x["tokens_per_s"].as_f64())
        })
    };
    ours.as_ref()
        .and_then(|t| t["measurements"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|m| Some((m["name"].as_str()?, m["tokens_per_s"].as_f64()?)))
        .flat_map(|(name, ours)| {
            // The GRPO update's peer runs full sequences (as TRL and verl do) and,
            // where it reports it, also each group's shared prompt once, as ours does.
            let shared = format!("{name}, shared prompt");
            let mut lines = vec![(format!("{name}{label}"), peer(name))];
            if let Some(torch) = peer(&shared) {
                lines.push((
                    format!("{name}{label} vs PyTorch shared prompt"),
                    Some(torch),
                ));
            }
            lines.into_iter().map(move |(name, torch)| RatioLine {
                name,
                ours,
                torch,
                ratio: ratio(ours, torch),
            })
        })
        .collect()
}

/// Medians of the RL steps' `metrics.jsonl` rows; `None` when none ran.
fn rl_summary(metrics: &[Value]) -> Option<RlSummary> {
    let column =
        |key: &str| -> Vec<f64> { metrics.iter().filter_map(|m| m[key].as_f64()).collect() };
    (!metrics.is_empty()).then(|| RlSummary {
        steps: metrics.len(),
        median_step_seconds: median(column("step_seconds")),
        median_rollout_tokens_per_s: median(column("rollout_tokens_per_s")),
        median_update_tokens_per_s: median(column("update_tokens_per_s")),
    })
}

impl DeviceReport {
    pub fn from_parts(parts: &Parts) -> Self {
        let (parity_passed, parity_worst_logprob_diff) = parity_summary(&parts.parity);
        let (parity_bf16_passed, parity_bf16_worst_logprob_diff) =
            parity_summary(&parts.parity_bf16);

        let mut kernel_agreement = Vec::new();
        let mut kernels = Vec::new();
        for bench in [
            &parts.kernels_shapes,
            &parts.kernels_f32,
            &parts.kernels_bf16,
        ]
        .into_iter()
        .flatten()
        {
            let dtype = bench["dtype"].as_str().unwrap_or("?").to_string();
            for a in bench["agreement"].as_array().into_iter().flatten() {
                kernel_agreement.push(AgreementLine {
                    dtype: dtype.clone(),
                    rows: a["rows"].as_u64().unwrap_or(0),
                    vocab: a["vocab"].as_u64().unwrap_or(0),
                    forward_max_abs_diff: a["forward_max_abs_diff"].as_f64(),
                    gradient_max_abs_diff: a["gradient_max_abs_diff"].as_f64(),
                });
            }
        }
        for bench in [&parts.kernels_f32, &parts.kernels_bf16]
            .into_iter()
            .flatten()
        {
            let dtype = bench["dtype"].as_str().unwrap_or("?").to_string();
            let timings = bench["timings"].as_array().cloned().unwrap_or_default();
            let timing = |rows: u64, vocab: u64, pass: &str, what: &str| {
                timings
                    .iter()
                    .find(|t| {
                        t["rows"] == rows
                            && t["vocab"] == vocab
                            && t["path"] == "kernel"
                            && t["pass"] == pass
                    })
                    .and_then(|t| t[what].as_f64())
            };
            for copy in bench["copy"].as_array().into_iter().flatten() {
                let (rows, vocab) = (
                    copy["rows"].as_u64().unwrap_or(0),
                    copy["vocab"].as_u64().unwrap_or(0),
                );
                let torch = parts.torch_kernels.as_ref().and_then(|t| {
                    t["measurements"]
                        .as_array()?
                        .iter()
                        .find(|m| m["rows"] == rows && m["vocab"] == vocab)
                        .cloned()
                });
                // The peer's logits are f32: only the f32 rows have a like-for-like ratio.
                let torch = torch.filter(|_| dtype == "f32");
                let forward_ms = timing(rows, vocab, "forward", "ms");
                let forward_backward_ms = timing(rows, vocab, "forward+backward", "ms");
                let speedup = |ours: Option<f64>, key: &str| {
                    Some(torch.as_ref()?[key].as_f64()? / ours.filter(|m| *m > 0.0)?)
                };
                kernels.push(KernelLine {
                    forward_percent_of_copy_bandwidth: timing(rows, vocab, "forward", "gb_per_s")
                        .zip(copy["gb_per_s"].as_f64().filter(|g| *g > 0.0))
                        .map(|(ours, copy)| 100.0 * ours / copy),
                    forward_speedup_vs_torch: speedup(forward_ms, "forward_ms"),
                    forward_backward_speedup_vs_torch: speedup(
                        forward_backward_ms,
                        "forward_backward_ms",
                    ),
                    dtype: dtype.clone(),
                    rows,
                    vocab,
                    forward_ms,
                    forward_backward_ms,
                });
            }
        }

        let generate = parts
            .generate
            .as_ref()
            .and_then(|g| g["rows"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|row| {
                let batch = row["batch"].as_u64()?;
                let ours = row["decode_tokens_per_s"].as_f64()?;
                let torch = parts.torch_generate.as_ref().and_then(|t| {
                    t["rows"]
                        .as_array()?
                        .iter()
                        .find(|r| r["batch"] == batch)
                        .and_then(|r| r["decode_tokens_per_s"].as_f64())
                });
                Some(RatioLine {
                    name: format!("decode, batch {batch}"),
                    ours,
                    torch,
                    ratio: ratio(ours, torch),
                })
            })
            .collect();
        let mut train = train_lines(&parts.train, &parts.torch_train, "");
        train.extend(train_lines(
            &parts.train_bf16,
            &parts.torch_train_bf16,
            ", bf16",
        ));
        Self {
            gpu: parts.gpu.clone(),
            parts: parts.status.clone(),
            parity_passed,
            parity_worst_logprob_diff,
            parity_bf16_passed,
            parity_bf16_worst_logprob_diff,
            kernel_agreement,
            kernel_form: parts
                .kernels_f32
                .as_ref()
                .and_then(|k| k["kernel_form"].as_str())
                .map(str::to_string),
            kernels,
            generate,
            train,
            rl: rl_summary(&parts.rl_metrics),
            rl_bf16: rl_summary(&parts.rl_bf16_metrics),
            rl_model: parts.rl_model.clone(),
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "# Device check: {}",
            self.gpu.as_deref().unwrap_or("unknown GPU")
        ));
        line(String::new());
        line("| part | exit | seconds |".into());
        line("|---|---:|---:|".into());
        for p in &self.parts {
            line(format!(
                "| {} | {} | {} |",
                p["part"].as_str().unwrap_or("?"),
                p["rc"],
                p["seconds"]
            ));
        }
        line(String::new());
        let verdict = |passed: Option<bool>| match passed {
            Some(true) => "passed",
            Some(false) => "FAILED",
            None => "not run",
        };
        line(format!(
            "Parity with transformers: {} (worst log-prob |Δ| {}); in bf16: {} (worst |Δ| {})",
            verdict(self.parity_passed),
            scientific_cell(self.parity_worst_logprob_diff),
            verdict(self.parity_bf16_passed),
            scientific_cell(self.parity_bf16_worst_logprob_diff)
        ));
        line(String::new());
        line("| logits | N | V | kernel − reference: out | grad |".into());
        line("|---|--:|--:|--:|--:|".into());
        for a in &self.kernel_agreement {
            line(format!(
                "| {} | {} | {} | {} | {} |",
                a.dtype,
                a.rows,
                a.vocab,
                scientific_cell(a.forward_max_abs_diff),
                scientific_cell(a.gradient_max_abs_diff)
            ));
        }
        line(String::new());
        line(format!(
            "Reward-step kernels: {}",
            self.kernel_form.as_deref().unwrap_or("not reported")
        ));
        line(String::new());
        line("| logits | N | V | forward ms | % of copy bandwidth | × PyTorch | fwd+bwd ms | × PyTorch |".into());
        line("|---|--:|--:|--:|--:|--:|--:|--:|".into());
        for k in &self.kernels {
            line(format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                k.dtype,
                k.rows,
                k.vocab,
                fixed_cell(k.forward_ms, 2),
                fixed_cell(k.forward_percent_of_copy_bandwidth, 0),
                fixed_cell(k.forward_speedup_vs_torch, 1),
                fixed_cell(k.forward_backward_ms, 2),
                fixed_cell(k.forward_backward_speedup_vs_torch, 1)
            ));
        }
        line(String::new());
        line("| measurement | tokens/s | PyTorch tokens/s | ours / PyTorch |".into());
        line("|---|--:|--:|--:|".into());
        for r in self.train.iter().chain(&self.generate) {
            line(format!(
                "| {} | {:.0} | {} | {} |",
                r.name,
                r.ours,
                fixed_cell(r.torch, 0),
                fixed_cell(r.ratio, 2)
            ));
        }
        line(String::new());
        let model = self.rl_model.as_deref().unwrap_or("the default model");
        for (rl, label) in [(&self.rl, ""), (&self.rl_bf16, ", bf16")] {
            match rl {
                Some(rl) => line(format!(
                    "RL steps (default config on {model}{label}): {}, median {:.2} s per step, rollout {:.0} tokens/s, update {:.0} tokens/s",
                    rl.steps,
                    rl.median_step_seconds,
                    rl.median_rollout_tokens_per_s,
                    rl.median_update_tokens_per_s
                )),
                None => line(format!("RL steps{label}: not run")),
            }
        }
        out
    }
}

pub fn run(args: DeviceReportArgs) -> anyhow::Result<()> {
    let parts_dir = args.dir.join("parts");
    anyhow::ensure!(
        parts_dir.is_dir(),
        "{}: no parts/ folder (run perf/gpu-check.sh first)",
        args.dir.display()
    );
    let report = DeviceReport::from_parts(&Parts::read(&parts_dir));
    let json_path = args.dir.join("device-check.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", json_path.display()))?;
    print!("{}", report.markdown());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Parts shaped like the commands' real output (`bench kernels --json` and the
    /// others), with round numbers whose ratios are worked out by hand below.
    fn parts() -> Parts {
        Parts {
            gpu: Some("NVIDIA H200, 143771 MiB, 580.0".into()),
            status: vec![json!({"part": "parity", "rc": 0, "seconds": 3})],
            parity: Some(json!({"device": "cuda", "passed": true, "fixtures": [
                {"fixture": "a", "target_logprob_max_diff": 2e-6, "logsumexp_max_diff": 5e-6,
                 "mean_nll_relative_diff": 1e-8, "greedy_continuation_matches": true},
                {"fixture": "b", "target_logprob_max_diff": 7e-6, "logsumexp_max_diff": 1e-6,
                 "mean_nll_relative_diff": 1e-8, "greedy_continuation_matches": true}]})),
            kernels_f32: Some(json!({"device": "cuda", "dtype": "f32", "iters": 5,
                "kernel_form": "CubeCL kernels, vector loads where the vocabulary allows, plane merge",
                "timings": [
                    {"rows": 16384, "vocab": 151936, "path": "kernel", "pass": "forward",
                     "ms": 2.5, "gb_per_s": 4000.0, "peak_extra_mb": 0.5},
                    {"rows": 16384, "vocab": 151936, "path": "kernel", "pass": "forward+backward",
                     "ms": 8.0, "gb_per_s": 3700.0, "peak_extra_mb": 9958.0},
                    {"rows": 16384, "vocab": 151936, "path": "reference", "pass": "forward",
                     "ms": 40.0, "gb_per_s": 250.0, "peak_extra_mb": 30000.0}],
                "copy": [{"rows": 16384, "vocab": 151936, "ms": 4.0, "gb_per_s": 5000.0}],
                "agreement": [{"rows": 16384, "vocab": 151936,
                               "forward_max_abs_diff": 3e-6, "gradient_max_abs_diff": 1e-7}]})),
            kernels_bf16: Some(json!({"device": "cuda", "dtype": "bf16", "iters": 5,
                "timings": [{"rows": 16384, "vocab": 151936, "path": "kernel", "pass": "forward",
                             "ms": 1.5, "gb_per_s": 3300.0, "peak_extra_mb": null}],
                "copy": [{"rows": 16384, "vocab": 151936, "ms": null, "gb_per_s": null}],
                "agreement": []})),
            torch_kernels: Some(json!({"torch": "2.9", "device": "cuda", "measurements": [
                {"rows": 16384, "vocab": 151936, "forward_ms": 50.0, "forward_backward_ms": 120.0,
                 "forward_gb_per_s": 200.0}]})),
            train: Some(json!({"measurements": [
                {"name": "pretrain step", "shape": "8 x 512", "ms": 100.0, "tokens_per_s": 40000.0,
                 "tokens_counted": "input"},
                {"name": "GRPO update", "shape": "64 x 144", "ms": 100.0, "tokens_per_s": 3000.0,
                 "tokens_counted": "response"}]})),
            train_bf16: Some(json!({"dtype": "bf16", "measurements": [
                {"name": "pretrain step", "shape": "8 x 512", "ms": 50.0, "tokens_per_s": 90000.0,
                 "tokens_counted": "input"}]})),
            torch_train_bf16: Some(json!({"dtype": "bf16", "measurements": [
                {"name": "pretrain step", "ms": 40.0, "tokens_per_s": 60000.0}]})),
            parity_bf16: Some(
                json!({"device": "cuda", "dtype": "bf16", "passed": true, "fixtures": [
                {"fixture": "a", "dtype": "bf16", "target_logprob_max_diff": 0.03, "logsumexp_max_diff": 0.09,
                 "mean_nll_relative_diff": 1e-3, "greedy_continuation_matches": false}]}),
            ),
            rl_bf16_metrics: vec![
                json!({"step": 1, "step_seconds": 1.5, "rollout_tokens_per_s": 400.0, "update_tokens_per_s": 40.0}),
            ],
            torch_train: Some(json!({"measurements": [
                {"name": "pretrain step", "ms": 80.0, "tokens_per_s": 50000.0},
                {"name": "GRPO update", "ms": 100.0, "tokens_per_s": 2000.0},
                {"name": "GRPO update, shared prompt", "ms": 50.0, "tokens_per_s": 6000.0}]})),
            generate: Some(json!({"rows": [
                {"batch": 8, "prefill_ms": 5.0, "decode_ms_per_step": 4.0, "decode_tokens_per_s": 2000.0},
                {"batch": 256, "prefill_ms": 50.0, "decode_ms_per_step": 10.0, "decode_tokens_per_s": 25600.0}]})),
            torch_generate: Some(json!({"rows": [
                {"batch": 8, "prefill_ms": 4.0, "decode_ms_per_step": 8.0, "decode_tokens_per_s": 1000.0}]})),
            rl_metrics: vec![
                json!({"step": 1, "step_seconds": 3.0, "rollout_tokens_per_s": 100.0, "update_tokens_per_s": 10.0}),
                json!({"step": 2, "step_seconds": 1.0, "rollout_tokens_per_s": 300.0, "update_tokens_per_s": 30.0}),
                json!({"step": 3, "step_seconds": 2.0, "rollout_tokens_per_s": 200.0, "update_tokens_per_s": 20.0}),
            ],
            rl_model: Some("models/pretrainzero-wiki-tiny".into()),
            ..Parts::default()
        }
    }

    #[test]
    fn ratios_and_bandwidth_shares_are_worked_out_from_the_parts() {
        let report = DeviceReport::from_parts(&parts());
        assert_eq!(report.parity_passed, Some(true));
        assert_eq!(report.parity_worst_logprob_diff, Some(7e-6));
        assert_eq!(report.kernel_agreement.len(), 1);
        assert_eq!(report.kernel_agreement[0].forward_max_abs_diff, Some(3e-6));
        assert_eq!(
            report.kernel_form.as_deref(),
            Some("CubeCL kernels, vector loads where the vocabulary allows, plane merge")
        );
        let f32_line = &report.kernels[0];
        // 4000 / 5000 GB/s; PyTorch 50 ms / 2.5 ms and 120 ms / 8 ms.
        assert_eq!(f32_line.forward_percent_of_copy_bandwidth, Some(80.0));
        assert_eq!(f32_line.forward_speedup_vs_torch, Some(20.0));
        assert_eq!(f32_line.forward_backward_speedup_vs_torch, Some(15.0));
        // bf16: no copy figure, and no PyTorch peer of the same type.
        let bf16_line = &report.kernels[1];
        assert_eq!(bf16_line.dtype, "bf16");
        assert_eq!(bf16_line.forward_ms, Some(1.5));
        assert_eq!(bf16_line.forward_percent_of_copy_bandwidth, None);
        assert_eq!(bf16_line.forward_speedup_vs_torch, None);
        // 40000 / 50000 tokens/s; decode 2000 / 1000, and no peer at batch 256.
        assert_eq!(report.train[0].ratio, Some(0.8));
        // The update against both peers: 3000 / 2000 and 3000 / 6000.
        assert_eq!(report.train[1].ratio, Some(1.5));
        assert_eq!(report.train[2].name, "GRPO update vs PyTorch shared prompt");
        assert_eq!(report.train[2].ratio, Some(0.5));
        // bf16 against PyTorch under autocast: 90000 / 60000.
        assert_eq!(report.train[3].name, "pretrain step, bf16");
        assert_eq!(report.train[3].ratio, Some(1.5));
        assert_eq!(report.parity_bf16_passed, Some(true));
        assert_eq!(report.parity_bf16_worst_logprob_diff, Some(0.09));
        assert_eq!(report.rl_bf16.as_ref().map(|rl| rl.steps), Some(1));
        assert_eq!(report.generate[0].ratio, Some(2.0));
        assert_eq!(report.generate[1].torch, None);
        let rl = report.rl.as_ref().unwrap();
        assert_eq!((rl.steps, rl.median_step_seconds), (3, 2.0));
        assert_eq!(rl.median_update_tokens_per_s, 20.0);
        let table = report.markdown();
        assert!(
            table.contains("| f32 | 16384 | 151936 | 2.50 | 80 | 20.0 | 8.00 | 15.0 |"),
            "{table}"
        );
        assert!(
            table.contains("| decode, batch 8 | 2000 | 1000 | 2.00 |"),
            "{table}"
        );
        assert!(
            table.contains(
                "RL steps (default config on models/pretrainzero-wiki-tiny): 3, median 2.00 s"
            ),
            "{table}"
        );
    }

    #[test]
    fn missing_parts_are_reported_as_not_run() {
        let report = DeviceReport::from_parts(&Parts::default());
        assert_eq!(report.parity_passed, None);
        assert!(report.kernels.is_empty() && report.rl.is_none());
        let table = report.markdown();
        assert!(table.contains("Parity with transformers: not run"));
        assert!(table.contains("in bf16: not run"));
        assert!(table.contains("RL steps: not run"));
        assert!(table.contains("RL steps, bf16: not run"));
    }
}
