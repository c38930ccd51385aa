//! `pretrainzero bench ...`: speed tables. Targets live here, never in unit tests.

use crate::kernels::RewardStepBackend;
use std::time::Instant;

use super::DeviceArg;
use crate::backend::{run_on, BackendTask};
use crate::models::{generate, random_decoder, GenerationConfig, ModelConfig, SamplingConfig};

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
}

#[derive(Debug, Clone, clap::Args)]
pub struct GenerateBenchArgs {
    /// Architecture preset (`tiny`, `qwen3-0.6b`); no weights are read.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Comma-separated batch sizes.
    #[arg(long, default_value = "1,8,64", value_delimiter = ',')]
    pub batch_sizes: Vec<usize>,
    #[arg(long, default_value_t = 32)]
    pub prompt_len: usize,
    #[arg(long, default_value_t = 32)]
    pub new_tokens: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Kernels(args) => super::bench_kernels::run(args),
        BenchWhat::Train(args) => super::bench_train::run(args),
        BenchWhat::Generate(args) => {
            if args.new_tokens < 2 || args.prompt_len == 0 {
                anyhow::bail!("--new-tokens must be at least 2 and --prompt-len at least 1");
            }
            let config = ModelConfig::preset(&args.preset)?;
            let device = args.device.kind();
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
        let vocab = self.config.vocab_size as u32;
        let run = |batch: usize, new_tokens: usize| -> f64 {
            // Deterministic, distinct prompts; no EOS, so every step runs.
            let prompts: Vec<Vec<u32>> = (0..batch)
                .map(|b| {
                    (0..self.args.prompt_len)
                        .map(|t| ((b * 7919 + t * 104729) as u32) % vocab)
                        .collect()
                })
                .collect();
            let config = GenerationConfig {
                max_new_tokens: new_tokens,
                sampling: SamplingConfig {
                    temperature: 1.0,
                    top_p: 1.0,
                    top_k: 0,
                },
                eos_token_ids: Vec::new(),
                stop_strings: Vec::new(),
                seed: 0,
            };
            let start = Instant::now();
            generate(&model, &prompts, &config, None, device).expect("valid benchmark prompts");
            start.elapsed().as_secs_f64()
        };
        let mut rows = Vec::new();
        for &batch in &self.args.batch_sizes {
            run(batch, 2); // warm-up: kernel compilation and autotuning
            let prefill = run(batch, 1);
            let full = run(batch, self.args.new_tokens);
            let decode_steps = (self.args.new_tokens - 1) as f64;
            let decode = (full - prefill).max(1e-9);
            rows.push(GenerateBenchRow {
                batch,
                prefill_ms: prefill * 1e3,
                decode_ms_per_step: decode / decode_steps * 1e3,
                decode_tokens_per_s: batch as f64 * decode_steps / decode,
            });
        }
        rows
    }
}
