//! `pretrainzero bench kernels`: the masked-token reward step, fused kernel against
//! the plain-tensor reference on the same backend, forward and forward + backward.
//!
//! Bytes counted for bandwidth: forward reads the logits once and writes `N × 4`
//! values (log-prob, entropy, two row statistics); forward + backward additionally
//! reads the logits again and writes the `N × V` gradient. Peak memory is the growth
//! of the device memory pool's reservation during the measurement, above what the
//! logits already hold (CubeCL backends only; the pool only grows, so this is the
//! peak). On ndarray the "kernel" column is the reference too.

use std::time::Instant;

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::Distribution;

use super::DeviceArg;
use crate::backend::{run_on, BackendTask};
use crate::kernels::{masked_token_logprob_entropy, reference, RewardStepBackend, RowChunking};

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
    #[command(flatten)]
    pub device: DeviceArg,
}

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

pub fn run(args: KernelBenchArgs) -> anyhow::Result<()> {
    if args.iters == 0 || args.rows.contains(&0) || args.vocab.contains(&0) {
        anyhow::bail!("--iters, --rows and --vocab must be positive");
    }
    let device = args.device.kind();
    println!(
        "bench kernels: device {}, f32 logits, {} timed iterations after one warm-up",
        device.name(),
        args.iters
    );
    let rows = run_on(device, KernelBench { args })?;
    println!("| N | V | path | pass | ms | GB/s | peak extra MB | logits MB |");
    println!("|--:|--:|------|------|---:|-----:|--------------:|----------:|");
    let show =
        |v: Option<f64>, digits: usize| v.map_or("–".to_string(), |v| format!("{v:.digits$}"));
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} |",
            row.rows,
            row.vocab,
            row.path,
            row.pass,
            show(row.ms, 2),
            show(row.gb_per_s, 1),
            show(row.peak_extra_mb, 1),
            (row.rows * row.vocab * 4) as f64 / 1e6,
        );
    }
    Ok(())
}

struct KernelBench {
    args: KernelBenchArgs,
}

impl BackendTask for KernelBench {
    type Output = Vec<KernelBenchRow>;

    fn run<B: RewardStepBackend>(self, device: &B::Device) -> Self::Output {
        let mut table = Vec::new();
        for &vocab in &self.args.vocab {
            for &rows in &self.args.rows {
                let mut paths = vec!["kernel"];
                if !self.args.skip_reference {
                    paths.push("reference");
                }
                for path in paths {
                    for pass in ["forward", "forward+backward"] {
                        let measured =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                measure::<B>(rows, vocab, path, pass, self.args.iters, device)
                            }));
                        let (ms, peak) = match measured {
                            Ok((ms, peak)) => (Some(ms), peak),
                            Err(_) => {
                                eprintln!("{path} {pass} N={rows} V={vocab}: failed (device allocation or out of memory; see the message above)");
                                (None, None)
                            }
                        };
                        let logits_bytes = (rows * vocab * 4) as f64;
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
                        B::memory_cleanup(device);
                    }
                }
            }
        }
        table
    }
}

/// Mean milliseconds per call and the pool's growth in bytes.
fn measure<B: RewardStepBackend>(
    rows: usize,
    vocab: usize,
    path: &str,
    pass: &str,
    iters: usize,
    device: &B::Device,
) -> (f64, Option<u64>) {
    let logits = Tensor::<B, 2>::random([rows, vocab], Distribution::Uniform(-8.0, 8.0), device);
    let targets = Tensor::<B, 1, Int>::from_data(
        TensorData::new(
            (0..rows)
                .map(|r| ((r * 7919) % vocab) as i64)
                .collect::<Vec<_>>(),
            [rows],
        ),
        device,
    );
    let mask = Tensor::<B, 1>::ones([rows], device);
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
