//! `pretrainzero bench ...`: speed tables. Targets live here, never in unit tests.

use crate::kernels::RewardStepBackend;
use std::time::Instant;

use super::DeviceArg;
use crate::backend::{run_on, BackendTask};
use crate::models::{
    generate, random_decoder, Decoder, GenerationConfig, ModelConfig, SamplingConfig,
};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchWhat {
    /// Decode throughput of batched generation on a randomly initialised model.
    Generate(GenerateBenchArgs),
    /// The masked-token reward step: fused kernel vs plain-tensor reference.
    Kernels(super::bench_kernels::KernelBenchArgs),
    /// Pretraining step, GRPO update, prefill and decode on one model shape.
    Train(super::bench_train::TrainBenchArgs),
    /// The device check's parts (perf/gpu-check.sh) as one JSON file and one table.
    DeviceReport(super::device_report::DeviceReportArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct GenerateBenchArgs {
    /// Architecture preset (`tiny`, `small`, `qwen3-0.6b`) or a model folder (or its
    /// config.json) whose shape is measured; no weights are read.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Comma-separated batch sizes.
    #[arg(long, default_value = "1,8,64", value_delimiter = ',')]
    pub batch_sizes: Vec<usize>,
    #[arg(long, default_value_t = 32)]
    pub prompt_len: usize,
    #[arg(long, default_value_t = 32)]
    pub new_tokens: usize,
    /// Print one JSON object (with the model's config.json, for a PyTorch peer) instead
    /// of the table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// The model shape a benchmark measures: a preset name, or a model folder or
/// config.json (only the shape is read; the weights are random).
pub fn model_shape(preset_or_path: &str) -> anyhow::Result<ModelConfig> {
    if crate::models::PRESETS.contains(&preset_or_path) {
        return Ok(ModelConfig::preset(preset_or_path)?);
    }
    let path = std::path::Path::new(preset_or_path);
    let config = if path.is_dir() {
        path.join("config.json")
    } else {
        path.to_path_buf()
    };
    if !config.is_file() {
        anyhow::bail!(
            "{}: neither a preset ({}) nor a model folder or config.json",
            preset_or_path,
            crate::models::PRESETS.join(", ")
        );
    }
    Ok(ModelConfig::from_file(&config)?)
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Kernels(args) => super::bench_kernels::run(args),
        BenchWhat::Train(args) => super::bench_train::run(args),
        BenchWhat::DeviceReport(args) => super::device_report::run(args),
        BenchWhat::Generate(args) => {
            if args.new_tokens < 2 || args.prompt_len == 0 {
                anyhow::bail!("--new-tokens must be at least 2 and --prompt-len at least 1");
            }
            let config = model_shape(&args.preset)?;
            let device = args.device.kind();
            if args.json {
                let (preset, prompt_len, new_tokens) =
                    (args.preset.clone(), args.prompt_len, args.new_tokens);
                let config_json = config.to_json(crate::models::WeightDtype::F32);
                let parameters = config.num_parameters();
                let rows = run_on(device, GenerateBench { args, config })?;
                println!(
                    "{}",
                    serde_json::json!({
                        "preset": preset,
                        "device": device.name(),
                        "parameters": parameters,
                        "prompt_len": prompt_len,
                        "new_tokens": new_tokens,
                        "config": config_json,
                        "rows": rows,
                    })
                );
                return Ok(());
            }
            println!(
                "bench generate: preset {} ({:.1} M parameters), device {}, prompt {} tokens, {} new tokens, temperature 1",
                args.preset,
                config.num_parameters() as f64 / 1e6,
                device.name(),
                args.prompt_len,
                args.new_tokens
            );
            let rows = run_on(device, GenerateBench { args, config })?;
            println!("| batch | prefill ms | decode ms/step | decode tokens/s |");
            println!("|------:|-----------:|---------------:|----------------:|");
            for row in rows {
                println!(
                    "| {:>5} | {:>10.1} | {:>14.2} | {:>15.1} |",
                    row.batch, row.prefill_ms, row.decode_ms_per_step, row.decode_tokens_per_s
                );
            }
            Ok(())
        }
    }
}

struct GenerateBench {
    args: GenerateBenchArgs,
    config: ModelConfig,
}

#[derive(serde::Serialize)]
struct GenerateBenchRow {
    batch: usize,
    prefill_ms: f64,
    decode_ms_per_step: f64,
    decode_tokens_per_s: f64,
}

impl BackendTask for GenerateBench {
    type Output = Vec<GenerateBenchRow>;

    fn run<B: RewardStepBackend>(self, device: &B::Device) -> Self::Output {
        let model = random_decoder::<B>(&self.config, 0, device);
        let vocab = self.config.vocab_size;
        let mut rows = Vec::new();
        for &batch in &self.args.batch_sizes {
            let prompts: Vec<Vec<u32>> = (0..batch)
                .map(|b| synthetic_ids(b, self.args.prompt_len, vocab))
                .collect();
            let timing = time_generation(&model, &prompts, self.args.new_tokens, 1, device);
            rows.push(GenerateBenchRow {
                batch,
                prefill_ms: timing.prefill_seconds * 1e3,
                decode_ms_per_step: timing.decode_seconds_per_step * 1e3,
                decode_tokens_per_s: batch as f64 / timing.decode_seconds_per_step,
            });
        }
        rows
    }
}

/// Deterministic, distinct token ids for benchmark inputs (`perf/torch_bench.py` uses
/// the same formula).
pub fn synthetic_ids(row: usize, len: usize, vocab: usize) -> Vec<u32> {
    (0..len)
        .map(|t| ((row * 7919 + t * 104_729 + 1) % vocab) as u32)
        .collect()
}

/// A table cell: `v` with `digits` decimals, or "–" where there is no figure.
pub fn fixed_cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.digits$}"))
}

/// A table cell in scientific notation (differences, tolerances), or "–".
pub fn scientific_cell(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.1e}"))
}

/// Median of `values` (the upper one of an even count); 0 when empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Median wall-clock seconds of `repeats` runs after one untimed warm-up run (kernel
/// compilation, autotuning, allocator growth).
pub fn median_seconds(repeats: usize, mut run: impl FnMut()) -> f64 {
    run();
    median(
        (0..repeats.max(1))
            .map(|_| {
                let start = Instant::now();
                run();
                start.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// Prefill time and per-step decode time of generating `new_tokens` (≥ 2) for
/// `prompts` at temperature 1 with no EOS, so every step runs.
pub struct GenerationTiming {
    pub prefill_seconds: f64,
    pub decode_seconds_per_step: f64,
}

pub fn time_generation<B: RewardStepBackend>(
    model: &Decoder<B>,
    prompts: &[Vec<u32>],
    new_tokens: usize,
    repeats: usize,
    device: &B::Device,
) -> GenerationTiming {
    let run = |tokens: usize| {
        let config =
            GenerationConfig::fixed_length(tokens, SamplingConfig::with_temperature(1.0), 0);
        generate(model, prompts, &config, None, device).expect("valid benchmark prompts");
    };
    // Generating one token is the prefill; the rest of a longer run is decode.
    let prefill = median_seconds(repeats, || run(1));
    let full = median_seconds(repeats, || run(new_tokens));
    GenerationTiming {
        prefill_seconds: prefill,
        decode_seconds_per_step: (full - prefill).max(1e-9) / (new_tokens - 1) as f64,
    }
}
