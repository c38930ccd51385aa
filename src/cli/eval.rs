//! `pretrainzero eval`: held-out masked-span accuracy, and the reasoning benchmarks
//! (from a model, or from saved responses with `--responses`).

use crate::data::split::{Split, SplitRule};
use crate::kernels::RewardStepBackend;
use std::io::Write;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use super::data::ReadingArgs;
use super::DeviceArg;
use crate::backend::{run_on, BackendTask};
use crate::eval::benchmarks::{load_benchmark, prompt, BenchmarkTask, STOP_STRINGS};
use crate::eval::bootstrap::bootstrap_mean;
use crate::eval::generation::{generate_responses, GenerationSettings};
use crate::eval::masked_span::{
    build_items, evaluate, logged_items, most_frequent_answer, EvalSettings, MaskedSpanItem,
    PromptStyle, ScoredItem, SpanChoice,
};
use crate::eval::responses::score_responses;
use crate::eval::scoring::{score_items, BenchmarkReport};
use crate::eval::span_likelihood::gold_span_loglik;
use crate::models::{PretrainedModel, SamplingConfig};
use crate::policy::prompts::PromptTemplates;
use crate::progress::step_progress;
use crate::settings_check::RangeCheck;
use crate::train::span_log::read_span_log;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalTask {
    /// Exact match of hidden spans of corpus paragraphs.
    MaskedSpan,
    /// MMLU-Pro (up to 10 options), per category.
    MmluPro,
    /// SuperGPQA (up to 10 options), per field.
    Supergpqa,
    /// MMLU (4 options), per subject.
    Mmlu,
    /// ARC (3–5 options), per source exam (id prefix).
    Arc,
    /// GSM8K: numeric answer.
    Gsm8k,
    /// MATH-500: `\boxed{}` answer, normalised LaTeX, numeric tolerance.
    Math500,
}

impl EvalTask {
    fn benchmark(self) -> Option<BenchmarkTask> {
        match self {
            EvalTask::MaskedSpan => None,
            EvalTask::MmluPro => Some(BenchmarkTask::MmluPro),
            EvalTask::Supergpqa => Some(BenchmarkTask::Supergpqa),
            EvalTask::Mmlu => Some(BenchmarkTask::Mmlu),
            EvalTask::Arc => Some(BenchmarkTask::Arc),
            EvalTask::Gsm8k => Some(BenchmarkTask::Gsm8k),
            EvalTask::Math500 => Some(BenchmarkTask::Math500),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitChoice {
    /// Every paragraph of the corpus.
    All,
    Train,
    Validation,
}

impl SplitChoice {
    fn side(self) -> Option<Split> {
        match self {
            Self::All => None,
            Self::Train => Some(Split::Train),
            Self::Validation => Some(Split::Validation),
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Model folder (HF config.json + safetensors + tokenizer.json); not needed with
    /// `--responses`.
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub task: EvalTask,
    /// Benchmark JSONL file, or for masked-span the corpus (any format of `data stats`).
    #[arg(long, alias = "corpus")]
    pub data: PathBuf,
    /// masked-span: how the corpus is read into paragraphs.
    #[command(flatten)]
    pub reading: ReadingArgs,
    /// Number of items (default: 200 for masked-span, the whole file for benchmarks).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Responses per item; > 1 reports pass@k with k = samples.
    #[arg(long, default_value_t = 1)]
    pub samples: usize,
    /// Score these saved responses (`{"id": …, "response": "…"}` per line) instead
    /// of generating.
    #[arg(long)]
    pub responses: Option<PathBuf>,
    /// masked-span: how the hidden span is chosen; several kinds (`random,entity`)
    /// give one table row each. `logged` scores the spans a training run chose, with
    /// `--data RUN/spans.jsonl`.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "random")]
    pub span: Vec<SpanChoice>,
    /// masked-span with `--span logged`: only the spans of these training steps, `A-B`
    /// or `A` (default: every step).
    #[arg(long)]
    pub steps: Option<String>,
    /// masked-span: only paragraphs of this side of the article split that `train`
    /// uses (`data.validation_fraction`, `data.split_seed`), e.g. `validation` to score
    /// articles the RL run never saw.
    #[arg(long, value_enum, default_value = "all")]
    pub split: SplitChoice,
    /// masked-span with `--split`: fraction of articles on the validation side.
    #[arg(long, default_value_t = 0.2)]
    pub validation_fraction: f64,
    /// masked-span with `--split`: the split's seed.
    #[arg(long, default_value_t = 1)]
    pub split_seed: u64,
    #[arg(long, value_enum, default_value = "direct")]
    pub prompt: PromptStyle,
    /// masked-span: ask the model in these prompt templates (a JSON file like a model
    /// folder's `prompt_templates.json`; fields it leaves out come from the model's
    /// own) instead of the model's own.
    #[arg(long)]
    pub prompt_templates: Option<PathBuf>,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Default: 16 for masked-span, 512 for benchmarks.
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// masked-span: compare case-insensitively.
    #[arg(long)]
    pub case_insensitive: bool,
    /// Per-item results (prompt, response, extracted answer, gold, correct) as JSONL.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    RangeCheck::new()
        .at_least_one("--samples", args.samples)
        .at_least_one("--batch-size", args.batch_size)
        .non_negative("--temperature", args.temperature as f64)
        .unit_half_open("--validation-fraction", args.validation_fraction)
        .finish("eval")?;
    // --out is created now, so that an existing or unwritable path is reported before
    // the evaluation runs; it is removed again if the evaluation fails.
    if let Some(out) = &args.out {
        if out.exists() {
            anyhow::bail!("{}: already exists; choose another --out", out.display());
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(out)
            .with_context(|| format!("{}: cannot create --out", out.display()))?;
    }
    let out = args.out.clone();
    let result = run_evaluation(args);
    if let (Err(_), Some(out)) = (&result, out) {
        let _ = std::fs::remove_file(out);
    }
    result
}

fn run_evaluation(args: EvalArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    match args.task.benchmark() {
        None => run_masked_span(args)?,
        Some(task) => {
            let out = args.out.clone();
            let data = args.data.clone();
            let report = match &args.responses {
                Some(responses) => {
                    score_responses(task, &args.data, responses, args.limit, args.samples)?
                }
                None => {
                    if args.model.is_none() {
                        anyhow::bail!("--task {} needs --model or --responses", task.name());
                    }
                    run_on(args.device.kind(), BenchmarkRun { task, args })??
                }
            };
            print_report(&report);
            if report.scored.is_empty() {
                anyhow::bail!("{}: no valid item to score", data.display());
            }
            if let Some(out) = out {
                write_jsonl(&out, &report.scored)?;
            }
        }
    }
    eprintln!("wall time: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn run_masked_span(args: EvalArgs) -> anyhow::Result<()> {
    if args.responses.is_some() || args.samples > 1 {
        anyhow::bail!("--responses and --samples are for the benchmark tasks, not masked-span");
    }
    let logged = args.span.contains(&SpanChoice::Logged);
    if logged && args.span.len() > 1 {
        anyhow::bail!("--span logged reads a span log, not a corpus: give it alone");
    }
    if args.steps.is_some() && !logged {
        anyhow::bail!("--steps selects logged spans: it needs --span logged");
    }
    let model = args
        .model
        .clone()
        .context("--task masked-span needs --model")?;
    let out = args.out.clone();
    let seed = args.seed;
    let results = run_on(args.device.kind(), MaskedSpanRun { model, args })??;
    println!("| span | items | answered | exact match [95% CI] | gold log-lik/token [95% CI] | most frequent answer |");
    println!("|---|---:|---:|---:|---:|---|");
    for (span, scored) in &results {
        let correct: Vec<f64> = scored
            .iter()
            .map(|s| f64::from(u8::from(s.correct)))
            .collect();
        let loglik: Vec<f64> = scored.iter().filter_map(|s| s.gold_loglik).collect();
        let answered = scored.iter().filter(|s| s.extracted.is_some()).count();
        let top_answer = match most_frequent_answer(scored) {
            Some((answer, n)) => format!(
                "`{answer}` {:.1}% ({n}/{answered})",
                100.0 * n as f64 / answered.max(1) as f64
            ),
            None => "-".to_string(),
        };
        let em = bootstrap_mean(&correct, BOOTSTRAP_RESAMPLES, seed);
        println!(
            "| {} | {} | {answered} | {:.2}% [{:.2}, {:.2}] ({}/{}) | {} | {top_answer} |",
            span.name(),
            scored.len(),
            100.0 * em.mean,
            100.0 * em.low,
            100.0 * em.high,
            scored.iter().filter(|s| s.correct).count(),
            scored.len(),
            bootstrap_mean(&loglik, BOOTSTRAP_RESAMPLES, seed),
        );
    }
    if let Some(out) = out {
        let rows: Vec<_> = results.iter().flat_map(|(_, scored)| scored).collect();
        write_jsonl(&out, &rows)?;
    }
    Ok(())
}

/// `--steps`: `A-B`, `A`, or every step when absent.
fn step_range(steps: Option<&str>) -> anyhow::Result<RangeInclusive<usize>> {
    let Some(text) = steps else {
        return Ok(0..=usize::MAX);
    };
    let parse = |s: &str| {
        s.trim()
            .parse::<usize>()
            .with_context(|| format!("--steps {text}: expected A-B or A (step numbers)"))
    };
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(text)?, parse(text)?),
    };
    if first > last {
        anyhow::bail!("--steps {text}: the first step is after the last");
    }
    Ok(first..=last)
}

/// Resamples of the bootstrap intervals in the masked-span table.
const BOOTSTRAP_RESAMPLES: usize = 2000;

fn write_jsonl<T: Serialize>(out: &Path, rows: &[T]) -> anyhow::Result<()> {
    let mut file = std::fs::File::create(out).with_context(|| out.display().to_string())?;
    for row in rows {
        writeln!(file, "{}", serde_json::to_string(row)?)?;
    }
    Ok(())
}

/// The summary table on stdout; what could not be scored on stderr, by id.
fn print_report(report: &BenchmarkReport) {
    let k = report.k;
    let task = report.task.name();
    if k > 1 {
        println!(
            "| task | category | items | responses | answered | mean@{k} (pass@1) | pass@{k} |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|");
    } else {
        println!("| task | category | items | answered | accuracy |");
        println!("|---|---|---:|---:|---:|");
    }
    for row in report.summary() {
        if k > 1 {
            println!(
                "| {task} | {} | {} | {} | {:.1}% | {:.2}% | {:.2}% |",
                row.name,
                row.items,
                row.responses,
                100.0 * row.answered,
                100.0 * row.mean_at_k,
                100.0 * row.pass_at_k
            );
        } else {
            println!(
                "| {task} | {} | {} | {:.1}% | {:.2}% |",
                row.name,
                row.items,
                100.0 * row.answered,
                100.0 * row.mean_at_k
            );
        }
    }
    let list = |what: &str, ids: &[String]| {
        if ids.is_empty() {
            return;
        }
        const SHOWN: usize = 20;
        let shown = ids
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let more = if ids.len() > SHOWN {
            format!(", … ({} more)", ids.len() - SHOWN)
        } else {
            String::new()
        };
        eprintln!("warning: {} {what}: {shown}{more}", ids.len());
    };
    let rejected: Vec<String> = report
        .rejected
        .iter()
        .map(|r| format!("{} (line {}: {})", r.id, r.line + 1, r.reason))
        .collect();
    list("items with unparseable gold data, not scored", &rejected);
    list("items without a response, not scored", &report.missing);
    list(
        "responses for ids that are not in the data",
        &report.unknown,
    );
    list(
        &format!("items with fewer than {k} responses (pass@n used)"),
        &report.short,
    );
}

struct BenchmarkRun {
    task: BenchmarkTask,
    args: EvalArgs,
}

impl BackendTask for BenchmarkRun {
    type Output = anyhow::Result<BenchmarkReport>;

    fn run<B: RewardStepBackend>(self, device: &B::Device) -> Self::Output {
        let Self { task, args } = self;
        let model_dir = args.model.as_ref().context("--model is required")?;
        let pretrained = PretrainedModel::<B>::load(model_dir, device)
            .with_context(|| format!("loading model folder {}", model_dir.display()))?;
        let tokenizer = pretrained
            .tokenizer
            .as_ref()
            .with_context(|| format!("{}: evaluation needs tokenizer.json", model_dir.display()))?;
        let mut data = load_benchmark(task, &args.data)?;
        if let Some(limit) = args.limit {
            data.keep_first_records(limit);
        }
        let prompts: Vec<String> = data.items.iter().map(|item| prompt(task, item)).collect();
        let settings = GenerationSettings {
            sampling: sampling(args.temperature),
            max_new_tokens: args.max_new_tokens.unwrap_or(512),
            batch_size: args.batch_size,
            samples: args.samples,
            seed: args.seed,
            stop_strings: STOP_STRINGS.iter().map(|s| s.to_string()).collect(),
        };
        let progress = step_progress(prompts.len() * args.samples, 0);
        progress.set_message(format!("{} responses", task.name()));
        let responses = generate_responses(
            &pretrained.model,
            tokenizer,
            &pretrained.config.eos_token_ids,
            &prompts,
            &settings,
            device,
            |done| progress.set_position(done as u64),
        )?;
        progress.finish_and_clear();
        let mut report = score_items(task, &data.items, &responses, args.samples);
        report.rejected = data.rejected;
        Ok(report)
    }
}

fn sampling(temperature: f32) -> SamplingConfig {
    if temperature > 0.0 {
        SamplingConfig {
            temperature,
            top_p: 1.0,
            top_k: 0,
        }
    } else {
        SamplingConfig::greedy()
    }
}

struct MaskedSpanRun {
    model: PathBuf,
    args: EvalArgs,
}

impl BackendTask for MaskedSpanRun {
    type Output = anyhow::Result<Vec<(SpanChoice, Vec<ScoredItem>)>>;

    fn run<B: RewardStepBackend>(self, device: &B::Device) -> Self::Output {
        let Self { model, args } = self;
        let pretrained = PretrainedModel::<B>::load(&model, device)
            .with_context(|| format!("loading model folder {}", model.display()))?;
        let tokenizer = pretrained
            .tokenizer
            .as_ref()
            .with_context(|| format!("{}: evaluation needs tokenizer.json", model.display()))?;
        let split = args.split.side().map(|side| {
            (
                SplitRule {
                    seed: args.split_seed,
                    validation_fraction: args.validation_fraction,
                },
                side,
            )
        });
        let templates =
            PromptTemplates::for_model_or_file(Some(&model), args.prompt_templates.as_deref())?;
        let mut results = Vec::new();
        for &span in &args.span {
            let items = if span == SpanChoice::Logged {
                let steps = step_range(args.steps.as_deref())?;
                let rows = read_span_log(&args.data)?;
                let items = logged_items(&rows, steps.clone(), args.limit.unwrap_or(usize::MAX));
                if items.is_empty() {
                    anyhow::bail!(
                        "{}: no masked-span task logged in steps {}-{}",
                        args.data.display(),
                        steps.start(),
                        steps.end()
                    );
                }
                items
            } else {
                build_items(
                    &args.reading.spec(&args.data),
                    span,
                    args.seed,
                    args.limit.unwrap_or(200),
                    split,
                )?
            };
            if items.is_empty() {
                anyhow::bail!(
                    "{}: no paragraph admits a {} span",
                    args.data.display(),
                    span.name()
                );
            }
            let mut scored =
                score_masked_span(&pretrained, tokenizer, &templates, &items, &args, device)?;
            let logliks = gold_span_loglik(
                &pretrained.model,
                tokenizer,
                &templates,
                &items,
                args.batch_size,
                device,
            )?;
            for (item, loglik) in scored.iter_mut().zip(logliks) {
                item.gold_loglik = Some(loglik);
            }
            results.push((span, scored));
        }
        Ok(results)
    }
}

/// Generates and scores the answers to `items`, with a progress bar.
fn score_masked_span<B: RewardStepBackend>(
    pretrained: &PretrainedModel<B>,
    tokenizer: &crate::models::TextTokenizer,
    templates: &PromptTemplates,
    items: &[MaskedSpanItem],
    args: &EvalArgs,
    device: &B::Device,
) -> anyhow::Result<Vec<ScoredItem>> {
    {
        let settings = EvalSettings {
            style: args.prompt,
            templates: templates.clone(),
            sampling: sampling(args.temperature),
            max_new_tokens: args.max_new_tokens.unwrap_or(16),
            batch_size: args.batch_size,
            seed: args.seed,
            case_insensitive: args.case_insensitive,
        };
        let progress = step_progress(items.len(), 0);
        let scored = evaluate(
            &pretrained.model,
            tokenizer,
            &pretrained.config.eos_token_ids,
            items,
            &settings,
            device,
            |done| progress.set_position(done as u64),
        )?;
        progress.finish_and_clear();
        Ok(scored)
    }
}
