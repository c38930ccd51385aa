//! `pretrainzero eval`: held-out masked-span accuracy.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use burn::prelude::Backend;

use super::data::CorpusArgs;
use super::DeviceArg;
use crate::backend::{run_on, BackendTask};
use crate::eval::masked_span::{
    build_items, evaluate, EvalSettings, PromptStyle, ScoredItem, SpanChoice,
};
use crate::models::{PretrainedModel, SamplingConfig};
use crate::policy::prompts::PromptTemplates;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalTask {
    /// Exact match of hidden spans of corpus paragraphs.
    MaskedSpan,
}

#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, value_enum)]
    pub task: EvalTask,
    /// Corpus to draw paragraphs from (any format of `data stats`).
    #[command(flatten)]
    pub data: CorpusArgs,
    /// Number of items.
    #[arg(long, default_value_t = 200)]
    pub limit: usize,
    #[arg(long, value_enum, default_value = "random")]
    pub span: SpanChoice,
    #[arg(long, value_enum, default_value = "direct")]
    pub prompt: PromptStyle,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 16)]
    pub max_new_tokens: usize,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub case_insensitive: bool,
    /// Per-item results (prompt, response, extracted answer, gold, correct) as JSONL.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.out {
        if out.exists() {
            anyhow::bail!("{}: already exists; choose another --out", out.display());
        }
    }
    let out = args.out.clone();
    let scored = run_on(args.device.kind(), EvalTaskRun(args))??;
    let correct = scored.iter().filter(|s| s.correct).count();
    let answered = scored.iter().filter(|s| s.extracted.is_some()).count();
    println!("| task | items | answered | exact match |");
    println!("|---|---:|---:|---:|");
    println!(
        "| masked-span | {} | {} | {:.2}% ({correct}/{}) |",
        scored.len(),
        answered,
        100.0 * correct as f64 / scored.len().max(1) as f64,
        scored.len()
    );
    if let Some(out) = out {
        let mut file = std::fs::File::create(&out).with_context(|| out.display().to_string())?;
        for item in &scored {
            writeln!(file, "{}", serde_json::to_string(item)?)?;
        }
    }
    Ok(())
}

struct EvalTaskRun(EvalArgs);

impl BackendTask for EvalTaskRun {
    type Output = anyhow::Result<Vec<ScoredItem>>;

    fn run<B: Backend>(self, device: &B::Device) -> Self::Output {
        let args = self.0;
        let EvalTask::MaskedSpan = args.task;
        let pretrained = PretrainedModel::<B>::load(&args.model, device)
            .with_context(|| format!("loading model folder {}", args.model.display()))?;
        let tokenizer = pretrained.tokenizer.as_ref().with_context(|| {
            format!("{}: evaluation needs tokenizer.json", args.model.display())
        })?;
        let items = build_items(&args.data.spec(), args.span, args.seed, args.limit)?;
        if items.is_empty() {
            anyhow::bail!("{}: no paragraph admits a span", args.data.corpus.display());
        }
        let sampling = if args.temperature > 0.0 {
            SamplingConfig {
                temperature: args.temperature,
                top_p: 1.0,
                top_k: 0,
            }
        } else {
            SamplingConfig::greedy()
        };
        let settings = EvalSettings {
            style: args.prompt,
            templates: PromptTemplates::default(),
            sampling,
            max_new_tokens: args.max_new_tokens,
            batch_size: args.batch_size,
            seed: args.seed,
            case_insensitive: args.case_insensitive,
        };
        let progress = indicatif::ProgressBar::new(items.len() as u64);
        let scored = evaluate(
            &pretrained.model,
            tokenizer,
            &pretrained.config.eos_token_ids,
            &items,
            &settings,
            device,
            |done| progress.set_position(done as u64),
        )?;
        progress.finish_and_clear();
        Ok(scored)
    }
}
