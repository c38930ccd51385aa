//! `pretrainzero generate`: continue one prompt.

use crate::kernels::RewardStepBackend;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use super::DeviceArg;
use crate::backend::{run_on, BackendTask};
use crate::models::{generate, FinishReason, GenerationConfig, PretrainedModel, SamplingConfig};
use crate::token_list::parse_token_ids;

#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Model folder: config.json, model.safetensors (or sharded), optional tokenizer.json.
    #[arg(long)]
    pub model: PathBuf,
    /// Prompt text (needs tokenizer.json in the model folder).
    #[arg(
        long,
        conflicts_with = "prompt_ids",
        required_unless_present = "prompt_ids"
    )]
    pub prompt: Option<String>,
    /// Prompt as comma-separated token ids, e.g. `1,403,407`.
    #[arg(long)]
    pub prompt_ids: Option<String>,
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    /// Always take the most likely token.
    #[arg(long, conflicts_with_all = ["temperature", "top_p", "top_k"])]
    pub greedy: bool,
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// 0 disables top-k.
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop when the generated text contains this string (repeatable).
    #[arg(long = "stop")]
    pub stop_strings: Vec<String>,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct GenerateOutput {
    prompt_ids: Vec<u32>,
    output_ids: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    logprobs: Vec<f32>,
    finish_reason: FinishReason,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    if !(args.temperature > 0.0) && !args.greedy {
        anyhow::bail!("--temperature must be > 0 (use --greedy for argmax decoding)");
    }
    if !(args.top_p > 0.0 && args.top_p <= 1.0) {
        anyhow::bail!("--top-p must be in (0, 1]");
    }
    let json = args.json;
    let output = run_on(args.device.kind(), GenerateTask(args))??;
    if json {
        println!("{}", serde_json::to_string(&output)?);
    } else {
        match &output.text {
            Some(text) => println!("{text}"),
            None => println!(
                "{}",
                output
                    .output_ids
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
    Ok(())
}

struct GenerateTask(GenerateArgs);

impl BackendTask for GenerateTask {
    type Output = anyhow::Result<GenerateOutput>;

    fn run<B: RewardStepBackend>(self, device: &B::Device) -> Self::Output {
        let args = self.0;
        let pretrained = PretrainedModel::<B>::load(&args.model, device)
            .with_context(|| format!("loading model folder {}", args.model.display()))?;
        let tokenizer = pretrained.tokenizer.as_ref();
        let prompt_ids = match (&args.prompt, &args.prompt_ids) {
            (_, Some(ids)) => parse_token_ids(ids).context("--prompt-ids")?,
            (Some(text), None) => {
                let tokenizer = tokenizer.with_context(|| {
                    format!(
                        "{}: no tokenizer.json, so --prompt cannot be encoded; pass --prompt-ids",
                        args.model.display()
                    )
                })?;
                tokenizer.encode(text, true)?
            }
            (None, None) => anyhow::bail!("give --prompt or --prompt-ids"),
        };
        let sampling = if args.greedy {
            SamplingConfig::greedy()
        } else {
            SamplingConfig {
                temperature: args.temperature,
                top_p: args.top_p,
                top_k: args.top_k,
            }
        };
        let config = GenerationConfig {
            max_new_tokens: args.max_new_tokens,
            sampling,
            eos_token_ids: pretrained.config.eos_token_ids.clone(),
            stop_strings: args.stop_strings.clone(),
            seed: args.seed,
        };
        let mut sequences = generate(
            &pretrained.model,
            &[prompt_ids.clone()],
            &config,
            tokenizer,
            device,
        )?;
        let sequence = sequences.remove(0);
        let text = match tokenizer {
            Some(t) => Some(t.decode(&sequence.tokens, true)?),
            None => None,
        };
        Ok(GenerateOutput {
            prompt_ids,
            output_ids: sequence.tokens,
            text,
            logprobs: sequence.logprobs,
            finish_reason: sequence.finish_reason,
        })
    }
}
