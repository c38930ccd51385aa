//! `pretrainzero bench train`: the three costs of a training run on one model shape —
//! a pretraining step (forward + backward + AdamW), a GRPO update on a fixed synthetic
//! rollout batch, and generation (prefill, decode) — each through the same functions
//! the trainers call. `perf/compare.py` runs the same shapes in PyTorch and prints
//! the ratios from one run.

use burn::backend::Autodiff;
use serde::Serialize;

use super::bench::{median_seconds, synthetic_ids, time_generation};
use super::DeviceArg;
use crate::backend::{run_on, BackendTask};
use crate::kernels::RewardStepBackend;
use crate::models::{random_decoder, ComputeDtype, Decoder, ModelConfig, WeightDtype};
use crate::optim::{BackwardShards, FusedAdamW};
use crate::pretrain::trainer::train_step;
use crate::pretrain::TokenChunk;
use crate::train::config::OptimSection;
use crate::update::policy_update::update_policy;
use crate::update::{PolicySample, UpdateConfig};

#[derive(Debug, Clone, clap::Args)]
pub struct TrainBenchArgs {
    /// Architecture preset (see `ModelConfig::preset`) or a model folder (or its
    /// config.json) whose shape is measured; weights are random.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Pretraining: sequences per step.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Pretraining: tokens per sequence.
    #[arg(long, default_value_t = 256)]
    pub seq_len: usize,
    /// GRPO update and generation: number of sequences.
    #[arg(long, default_value_t = 64)]
    pub rl_sequences: usize,
    /// GRPO update and generation: prompt tokens per sequence.
    #[arg(long, default_value_t = 128)]
    pub prompt_len: usize,
    /// GRPO update: response tokens per sequence; generation: new tokens.
    #[arg(long, default_value_t = 16)]
    pub response_len: usize,
    /// GRPO update: consecutive sequences that share one prompt, as a GRPO group's
    /// answers do (the default is the predictor group size G_p = 8).
    #[arg(long, default_value_t = 8)]
    pub group_size: usize,
    /// Generation batch (the rollout's `generation_batch_size`).
    #[arg(long, default_value_t = 32)]
    pub generation_batch: usize,
    /// Timed repetitions of each measurement (after one untimed warm-up); the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Pieces that run concurrently (default on the CPU backends: two per thread for the
    /// pretraining step, one per thread for the GRPO update; one on GPUs); 1 measures
    /// the unsharded step.
    #[arg(long)]
    pub backward_shards: Option<usize>,
    /// Type the model computes in: f32, or bf16 (mixed precision with f32 master
    /// weights; CUDA and --device flex).
    #[arg(long, default_value_t = ComputeDtype::F32)]
    pub dtype: ComputeDtype,
    /// Print one JSON object instead of the table (read by perf/compare.py).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub name: &'static str,
    pub shape: String,
    pub ms: f64,
    /// Tokens processed per second (which tokens: see `tokens_counted`).
    pub tokens_per_s: f64,
    pub tokens_counted: &'static str,
}

#[derive(Debug, Clone, Serialize)]
struct Report {
    preset: String,
    parameters: usize,
    device: &'static str,
    dtype: ComputeDtype,
    threads: usize,
    /// The HF config.json of the benchmarked shape (so a peer can build the same model).
    config: serde_json::Value,
    settings: serde_json::Value,
    measurements: Vec<Measurement>,
}

pub fn run(args: TrainBenchArgs) -> anyhow::Result<()> {
    if args.batch_size == 0 || args.seq_len < 2 || args.rl_sequences == 0 || args.group_size == 0 {
        anyhow::bail!(
            "--batch-size, --rl-sequences and --group-size must be at least 1, --seq-len at least 2"
        );
    }
    if args.prompt_len == 0 || args.response_len < 2 || args.generation_batch == 0 {
        anyhow::bail!(
            "--prompt-len and --generation-batch must be at least 1, --response-len at least 2"
        );
    }
    let config = super::bench::model_shape(&args.preset)?;
    let device = args.device.kind();
    let update = bench_update_config();
    let report = Report {
        preset: args.preset.clone(),
        parameters: config.num_parameters(),
        device: device.name(),
        dtype: args.dtype,
        threads: rayon_threads(),
        config: config.to_json(WeightDtype::F32),
        settings: serde_json::json!({
            "batch_size": args.batch_size, "seq_len": args.seq_len,
            "rl_sequences": args.rl_sequences, "prompt_len": args.prompt_len,
            "response_len": args.response_len, "group_size": args.group_size,
            "generation_batch": args.generation_batch,
            "ppo_mini_batches": update.ppo_mini_batches, "micro_batch": update.micro_batch_size,
            "repeats": args.repeats, "backward_shards": args.backward_shards,
        }),
        measurements: run_on(
            device,
            TrainBench {
                args: args.clone(),
                config: config.clone(),
            },
        )??,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "bench train: preset {} ({:.1} M parameters), device {}, computing in {}, {} threads",
        report.preset,
        report.parameters as f64 / 1e6,
        report.device,
        report.dtype,
        report.threads
    );
    println!("| measurement | shape | ms | tokens/s | tokens counted |");
    println!("|---|---|---:|---:|---|");
    for m in &report.measurements {
        println!(
            "| {} | {} | {:.1} | {:.0} | {} |",
            m.name, m.shape, m.ms, m.tokens_per_s, m.tokens_counted
        );
    }
    Ok(())
}

/// The GRPO update's settings in the benchmark: the trainer's defaults (DESIGN.md §5).
fn bench_update_config() -> UpdateConfig {
    OptimSection::default().update_config()
}

/// The worker threads of the CPU backends (rayon's pool; `RAYON_NUM_THREADS` sets it).
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

struct TrainBench {
    args: TrainBenchArgs,
    config: ModelConfig,
}

impl BackendTask for TrainBench {
    type Output = anyhow::Result<Vec<Measurement>>;

    fn run<B: RewardStepBackend>(self, device: &B::Device) -> Self::Output {
        let args = &self.args;
        let dtype = args.dtype.float_dtype();
        args.dtype
            .check_backend::<B>(device)
            .map_err(|problem| anyhow::anyhow!("--dtype {}: {problem}", args.dtype))?;
        let vocab = self.config.vocab_size;
        let mut out = Vec::new();
        let pretraining_shards = args
            .backward_shards
            .map(BackwardShards::new)
            .unwrap_or_else(BackwardShards::for_pretraining::<B>);
        let shards = args
            .backward_shards
            .map(BackwardShards::new)
            .unwrap_or_else(BackwardShards::for_backend::<B>);

        // 1. Pretraining step.
        let mut model =
            Some(random_decoder::<Autodiff<B>>(&self.config, 0, device).with_compute_dtype(dtype));
        let mut optimizer = FusedAdamW::new()
            .with_weight_decay(0.01)
            .init::<Autodiff<B>, Decoder<Autodiff<B>>>();
        let chunks: Vec<TokenChunk> = (0..args.batch_size)
            .map(|b| TokenChunk::scored_everywhere(synthetic_ids(b, args.seq_len + 1, vocab)))
            .collect();
        let micro_batches = vec![chunks];
        let seconds = median_seconds(args.repeats, || {
            let (next, _) = train_step(
                model.take().expect("model is put back after each step"),
                &mut optimizer,
                &micro_batches,
                pretraining_shards,
                1e-4,
                1.0,
                device,
            );
            model = Some(next);
        });
        let tokens = args.batch_size * args.seq_len;
        out.push(Measurement {
            name: "pretrain step",
            shape: format!("{} x {} tokens", args.batch_size, args.seq_len),
            ms: seconds * 1e3,
            tokens_per_s: tokens as f64 / seconds,
            tokens_counted: "all",
        });

        // 2. GRPO update: the logp_old pass, then one optimizer step per mini-batch.
        let samples: Vec<PolicySample> = (0..args.rl_sequences)
            .map(|i| PolicySample {
                prompt_ids: synthetic_ids(i / args.group_size, args.prompt_len, vocab),
                response_ids: synthetic_ids(i + 100_003, args.response_len, vocab),
                advantage: if i % 2 == 0 { 1.0 } else { -1.0 },
            })
            .collect();
        let update_config = bench_update_config();
        let seconds = median_seconds(args.repeats, || {
            let (next, _) = update_policy(
                model.take().expect("model is put back after each update"),
                &mut optimizer,
                None,
                &samples,
                &update_config,
                shards,
                1e-6,
                device,
            );
            model = Some(next);
        });
        let response_tokens = args.rl_sequences * args.response_len;
        out.push(Measurement {
            name: "GRPO update",
            shape: format!(
                "{} x ({} prompt + {} response), groups of {}",
                args.rl_sequences, args.prompt_len, args.response_len, args.group_size
            ),
            ms: seconds * 1e3,
            tokens_per_s: response_tokens as f64 / seconds,
            tokens_counted: "response",
        });
        drop(model);

        // 3. Generation: prefill alone, then prefill + decode.
        let inference = random_decoder::<B>(&self.config, 0, device)
            .with_compute_dtype(dtype)
            .with_weights_in_compute_dtype();
        let prompts: Vec<Vec<u32>> = (0..args.generation_batch)
            .map(|b| synthetic_ids(b, args.prompt_len, vocab))
            .collect();
        let timing = time_generation(
            &inference,
            &prompts,
            args.response_len,
            args.repeats,
            device,
        );
        let (prefill, decode_step) = (timing.prefill_seconds, timing.decode_seconds_per_step);
        out.push(Measurement {
            name: "prefill",
            shape: format!("{} x {} tokens", args.generation_batch, args.prompt_len),
            ms: prefill * 1e3,
            tokens_per_s: (args.generation_batch * args.prompt_len) as f64 / prefill,
            tokens_counted: "prompt",
        });
        out.push(Measurement {
            name: "decode",
            shape: format!(
                "{} x {} new tokens",
                args.generation_batch,
                args.response_len - 1
            ),
            ms: decode_step * 1e3,
            tokens_per_s: args.generation_batch as f64 / decode_step,
            tokens_counted: "new (ms per step)",
        });
        Ok(out)
    }
}
