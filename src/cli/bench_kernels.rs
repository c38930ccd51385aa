//! `pretrainzero bench kernels`: the masked-token reward step, fused kernel against
//! the plain-tensor reference on the same backend, forward and forward + backward.
//!
//! Bytes counted for bandwidth: forward reads the logits once and writes `N × 4`
//! values (log-prob, entropy, two row statistics); forward + backward additionally
//! reads the logits again and writes the `N × V` gradient. Peak memory is the growth
//! of the device memory pool's reservation during the measurement, above what the
//! logits already hold (CubeCL backends only; the pool only grows, so this is the
//! peak). On ndarray the "kernel" column is the reference too.
//!
//! Next to the timings: the device's copy bandwidth on the same logits (read + write
//! of `N × V`), the yardstick a one-pass kernel is measured against, and the largest
//! difference between kernel and reference outputs and gradients at each shape.

use std::time::Instant;

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::{Distribution, FloatDType};

use super::bench::{fixed_cell, scientific_cell};
use super::DeviceArg;
use crate::backend::{run_on, BackendTask, DeviceKind};
use crate::kernels::{masked_token_logprob_entropy, reference, RewardStepBackend, RowChunking};
use crate::models::ComputeDtype;

#[derive(Debug, Clone, clap::Args)]
pub struct KernelBenchArgs {
    /// Rows (response tokens), comma-separated.
    #[arg(long, default_value = "4096,16384", value_delimiter = ',')]
    pub rows: Vec<usize>,
    /// Vocabulary sizes, comma-separated.
    #[arg(long, default_value = "32000,151936", value_delimiter = ',')]
    pub vocab: Vec<usize>,
    /// Timed repetitions after one warm-up.
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Skip the reference (it materialises several N × V tensors).
    #[arg(long)]
    pub skip_reference: bool,
    /// Type of the logits: f32, or bf16 where the backend has it (CUDA, burn-flex).
    #[arg(long, default_value_t = ComputeDtype::F32)]
    pub dtype: ComputeDtype,
    /// Print one JSON object instead of the tables.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelBenchRow {
    pub rows: usize,
    pub vocab: usize,
    pub path: &'static str,
    pub pass: &'static str,
    /// `None` when the measurement failed (usually out of memory).
    pub ms: Option<f64>,
    pub gb_per_s: Option<f64>,
    pub peak_extra_mb: Option<f64>,
}

/// The device's copy bandwidth on one shape's logits.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CopyRow {
    pub rows: usize,
    pub vocab: usize,
    pub ms: Option<f64>,
    /// Bytes read plus bytes written per second.
    pub gb_per_s: Option<f64>,
}

/// Kernel against reference at one shape: largest |Δ| of the outputs (log-prob and
/// entropy) and of the gradient of `Σ logprob + Σ entropy`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AgreementRow {
    pub rows: usize,
    pub vocab: usize,
    pub forward_max_abs_diff: Option<f64>,
    pub gradient_max_abs_diff: Option<f64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelBenchReport {
    pub device: &'static str,
    /// How the backend runs the reward step (kernel form, host loops or reference).
    pub kernel_form: &'static str,
    pub dtype: ComputeDtype,
    pub iters: usize,
    pub timings: Vec<KernelBenchRow>,
    pub copy: Vec<CopyRow>,
    pub agreement: Vec<AgreementRow>,
}

pub fn run(args: KernelBenchArgs) -> anyhow::Result<()> {
    if args.iters == 0 || args.rows.contains(&0) || args.vocab.contains(&0) {
        anyhow::bail!("--iters, --rows and --vocab must be positive");
    }
    let device = args.device.kind();
    if args.dtype == ComputeDtype::Bf16 && matches!(device, DeviceKind::Ndarray | DeviceKind::Wgpu)
    {
        anyhow::bail!(
            "--dtype bf16: the {} backend has no bf16 tensors (use --device cuda or flex)",
            device.name()
        );
    }
    let (json, dtype, iters) = (args.json, args.dtype, args.iters);
    let (kernel_form, timings, copy, agreement) = run_on(device, KernelBench { args })?;
    let report = KernelBenchReport {
        device: device.name(),
        kernel_form,
        dtype,
        iters,
        timings,
        copy,
        agreement,
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "bench kernels: device {} ({}), {} logits, {} timed iterations after one warm-up",
        device.name(),
        report.kernel_form,
        dtype,
        iters
    );
    let rows = report.timings;
    println!("| N | V | path | pass | ms | GB/s | peak extra MB | logits MB |");
    println!("|--:|--:|------|------|---:|-----:|--------------:|----------:|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} |",
            row.rows,
            row.vocab,
            row.path,
            row.pass,
            fixed_cell(row.ms, 2),
            fixed_cell(row.gb_per_s, 1),
            fixed_cell(row.peak_extra_mb, 1),
            (row.rows * row.vocab * dtype.element_bytes()) as f64 / 1e6,
        );
    }
    println!();
    println!("| N | V | copy ms | copy GB/s | kernel vs reference: max |Δ| out | max |Δ| grad |");
    println!("|--:|--:|--------:|----------:|------:|------:|");
    for (copy, agreement) in report.copy.iter().zip(&report.agreement) {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            copy.rows,
            copy.vocab,
            fixed_cell(copy.ms, 2),
            fixed_cell(copy.gb_per_s, 1),
            scientific_cell(agreement.forward_max_abs_diff),
            scientific_cell(agreement.gradient_max_abs_diff),
        );
    }
    Ok(())
}

struct KernelBench {
    args: KernelBenchArgs,
}

impl BackendTask for KernelBench {
    type Output = (
        &'static str,
        Vec<KernelBenchRow>,
        Vec<CopyRow>,
        Vec<AgreementRow>,
    );

    fn run<B: RewardStepBackend>(self, device: &B::Device) -> Self::Output {
        let dtype = self.args.dtype;
        let mut table = Vec::new();
        let mut copies = Vec::new();
        let mut agreements = Vec::new();
        // A failed measurement (usually out of memory) is reported, not fatal.
        let attempt = |what: String, f: &mut dyn FnMut()| {
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
            if !done {
                eprintln!(
                    "{what}: failed (device allocation or out of memory; see the message above)"
                );
            }
            B::memory_cleanup(device);
            done
        };
        for &vocab in &self.args.vocab {
            for &rows in &self.args.rows {
                let logits_bytes = (rows * vocab * dtype.element_bytes()) as f64;
                let mut copy_ms = None;
                attempt(format!("copy N={rows} V={vocab}"), &mut || {
                    copy_ms = Some(measure_copy::<B>(
                        rows,
                        vocab,
                        dtype,
                        self.args.iters,
                        device,
                    ));
                });
                copies.push(CopyRow {
                    rows,
                    vocab,
                    ms: copy_ms,
                    gb_per_s: copy_ms.map(|ms| 2.0 * logits_bytes / (ms * 1e-3) / 1e9),
                });
                let mut agreement = (None, None);
                if !self.args.skip_reference {
                    attempt(format!("agreement N={rows} V={vocab}"), &mut || {
                        let (out, grad) =
                            kernel_reference_agreement::<B>(rows, vocab, dtype, device);
                        agreement = (Some(out), Some(grad));
                    });
                }
                agreements.push(AgreementRow {
                    rows,
                    vocab,
                    forward_max_abs_diff: agreement.0,
                    gradient_max_abs_diff: agreement.1,
                });
                let mut paths = vec!["kernel"];
                if !self.args.skip_reference {
                    paths.push("reference");
                }
                for path in paths {
                    for pass in ["forward", "forward+backward"] {
                        let (mut ms, mut peak) = (None, None);
                        attempt(format!("{path} {pass} N={rows} V={vocab}"), &mut || {
                            let measured = measure::<B>(
                                rows,
                                vocab,
                                dtype,
                                path,
                                pass,
                                self.args.iters,
                                device,
                            );
                            ms = Some(measured.0);
                            peak = measured.1;
                        });
                        let bytes = match pass {
                            "forward" => logits_bytes + (rows * 4 * 4) as f64,
                            _ => 3.0 * logits_bytes + (rows * 4 * 4) as f64,
                        };
                        table.push(KernelBenchRow {
                            rows,
                            vocab,
                            path,
                            pass,
                            ms,
                            gb_per_s: ms.map(|ms| bytes / (ms * 1e-3) / 1e9),
                            peak_extra_mb: peak.map(|b| b as f64 / 1e6),
                        });
                    }
                }
            }
        }
        (B::reward_step_form(device), table, copies, agreements)
    }
}

/// Logits uniform in [−8, 8] of `dtype`, targets spread over the vocabulary, all rows kept.
fn inputs<B: Backend>(
    rows: usize,
    vocab: usize,
    dtype: ComputeDtype,
    device: &B::Device,
) -> (Tensor<B, 2>, Tensor<B, 1, Int>, Tensor<B, 1>) {
    let logits = Tensor::<B, 2>::random([rows, vocab], Distribution::Uniform(-8.0, 8.0), device)
        .cast(dtype.float_dtype());
    let targets = Tensor::<B, 1, Int>::from_data(
        TensorData::new(
            (0..rows)
                .map(|r| ((r * 7919) % vocab) as i64)
                .collect::<Vec<_>>(),
            [rows],
        ),
        device,
    );
    (logits, targets, Tensor::<B, 1>::ones([rows], device))
}

/// Mean milliseconds of one elementwise pass that reads and writes the logits.
fn measure_copy<B: RewardStepBackend>(
    rows: usize,
    vocab: usize,
    dtype: ComputeDtype,
    iters: usize,
    device: &B::Device,
) -> f64 {
    let (logits, _, _) = inputs::<B>(rows, vocab, dtype, device);
    let call = || {
        drop(logits.clone().add_scalar(0.0));
        B::sync(device).expect("device sync");
    };
    call();
    let start = Instant::now();
    for _ in 0..iters {
        call();
    }
    start.elapsed().as_secs_f64() * 1e3 / iters as f64
}

/// Largest |Δ| between kernel and reference: of the outputs, and of the gradient of
/// `Σ logprob + Σ entropy` with respect to the logits.
fn kernel_reference_agreement<B: RewardStepBackend>(
    rows: usize,
    vocab: usize,
    dtype: ComputeDtype,
    device: &B::Device,
) -> (f64, f64) {
    let (logits, targets, mask) = inputs::<B>(rows, vocab, dtype, device);
    let max_diff = |a: Tensor<Autodiff<B>, 2>, b: Tensor<Autodiff<B>, 2>| -> f64 {
        (a.inner().cast(FloatDType::F32) - b.inner().cast(FloatDType::F32))
            .abs()
            .max()
            .into_scalar()
            .elem::<f64>()
    };
    let leaf = || Tensor::<Autodiff<B>, 2>::from_inner(logits.clone()).require_grad();
    let targets = Tensor::<Autodiff<B>, 1, Int>::from_inner(targets);
    let mask = Tensor::<Autodiff<B>, 1>::from_inner(mask);

    let kernel_logits = leaf();
    let (lp, ent) = masked_token_logprob_entropy(
        kernel_logits.clone(),
        targets.clone(),
        mask.clone(),
        RowChunking {
            budget_bytes: usize::MAX,
        },
    );
    let kernel_out = Tensor::stack::<2>(vec![lp.clone(), ent.clone()], 1);
    let kernel_grad = kernel_logits
        .grad(&(lp.sum() + ent.sum()).backward())
        .expect("the kernel's logits are a leaf that requires a gradient");

    let reference_logits = leaf();
    let (reference_out, _) =
        reference::logprob_entropy_forward(reference_logits.clone(), targets, mask);
    let reference_grad = reference_logits
        .grad(&reference_out.clone().sum().backward())
        .expect("the reference's logits are a leaf that requires a gradient");
    (
        max_diff(kernel_out, reference_out),
        max_diff(
            Tensor::from_inner(kernel_grad),
            Tensor::from_inner(reference_grad),
        ),
    )
}

/// Mean milliseconds per call and the pool's growth in bytes.
fn measure<B: RewardStepBackend>(
    rows: usize,
    vocab: usize,
    dtype: ComputeDtype,
    path: &str,
    pass: &str,
    iters: usize,
    device: &B::Device,
) -> (f64, Option<u64>) {
    let (logits, targets, mask) = inputs::<B>(rows, vocab, dtype, device);
    let call = || {
        match (path, pass) {
            ("kernel", "forward") => {
                let (lp, _) = masked_token_logprob_entropy(
                    logits.clone(),
                    targets.clone(),
                    mask.clone(),
                    RowChunking {
                        budget_bytes: usize::MAX,
                    },
                );
                drop(lp);
            }
            ("reference", "forward") => {
                let (out, _) = reference::logprob_entropy_forward(
                    logits.clone(),
                    targets.clone(),
                    mask.clone(),
                );
                drop(out);
            }
            (path, _) => {
                let logits = Tensor::<Autodiff<B>, 2>::from_inner(logits.clone()).require_grad();
                let targets = Tensor::<Autodiff<B>, 1, Int>::from_inner(targets.clone());
                let mask = Tensor::<Autodiff<B>, 1>::from_inner(mask.clone());
                let loss = if path == "kernel" {
                    let (lp, ent) = masked_token_logprob_entropy(
                        logits.clone(),
                        targets,
                        mask,
                        RowChunking {
                            budget_bytes: usize::MAX,
                        },
                    );
                    lp.sum() + ent.sum()
                } else {
                    reference::logprob_entropy_forward(logits.clone(), targets, mask)
                        .0
                        .sum()
                };
                let grads = loss.backward();
                drop(logits.grad(&grads));
            }
        }
        B::sync(device).expect("device sync");
    };
    B::sync(device).expect("device sync");
    let before = B::reserved_memory_bytes(device);
    call(); // warm-up: kernel compilation, autotuning, pool growth
    let start = Instant::now();
    for _ in 0..iters {
        call();
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / iters as f64;
    let after = B::reserved_memory_bytes(device);
    let peak = before.zip(after).map(|(b, a)| a.saturating_sub(b));
    (ms, peak)
}
