//! `pretrainzero pretrain`: continued pretraining (next-token cross-entropy).

use crate::kernels::RewardStepBackend;
use std::path::PathBuf;

use super::DeviceArg;
use crate::backend::{run_on, BackendTask};
use crate::determinism::enter_deterministic_mode;
use crate::policy::prompts::PromptTemplates;
use crate::pretrain::trainer::read_run_config;
use crate::pretrain::trainer::{ModelInit, PretrainSummary};
use crate::pretrain::{
    run_pretraining, GivenExamples, PretrainConfig, TaskLoss, TaskMix, DEFAULT_PREDICTOR_SHARE,
};
use crate::settings_check::RangeCheck;
use pretrainzero_models::ComputeDtype;

#[derive(Debug, Clone, clap::Args)]
pub struct PretrainArgs {
    /// Corpus file or folder (see `data stats`).
    #[arg(long, required_unless_present_any = ["resume", "export_checkpoint"])]
    pub corpus: Option<PathBuf>,
    /// Start from this HF model folder...
    #[arg(long, conflicts_with = "preset")]
    pub model: Option<PathBuf>,
    /// ...or from a random init, sized to --tokenizer, of this preset (`tiny`, `small`,
    /// `qwen3-0.6b`) or of the shape in this config.json file.
    #[arg(long, requires = "tokenizer")]
    pub preset: Option<String>,
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Run folder (checkpoints, metrics.jsonl, final/ HF export).
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder from its newest checkpoint.
    #[arg(long, conflicts_with_all = ["corpus", "model", "preset", "out"])]
    pub resume: Option<PathBuf>,
    /// Instead of training: write the newest checkpoint of the run in this folder
    /// as an HF model folder at --out.
    #[arg(long, requires = "out", conflicts_with_all = ["corpus", "model", "preset", "resume"])]
    pub export_checkpoint: Option<PathBuf>,
    #[arg(long, default_value_t = 12)]
    pub min_words: usize,
    #[arg(long, default_value_t = 256)]
    pub seq_len: usize,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 1)]
    pub grad_accumulation: usize,
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 50)]
    pub warmup_steps: usize,
    #[arg(long, default_value_t = 0.1)]
    pub min_lr_ratio: f64,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f32,
    /// Dropout probability, in [0, 1), on each layer's attention and MLP outputs
    /// during training (a regulariser for several epochs over a small corpus; the
    /// validation pass and the exported model run without it). The masks are seeded
    /// by the data seed and the step, so a rerun or a resumed run draws the same ones.
    #[arg(long, default_value_t = 0.0)]
    pub residual_dropout: f64,
    #[arg(long, default_value_t = 0.95)]
    pub beta2: f32,
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    #[arg(long, default_value_t = 0.05)]
    pub validation_fraction: f64,
    #[arg(long, default_value_t = 200)]
    pub validation_paragraphs: usize,
    #[arg(long, default_value_t = 100)]
    pub validate_every: usize,
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: usize,
    #[arg(long, default_value_t = 2)]
    pub keep_checkpoints: usize,
    #[arg(long, default_value_t = 10_000)]
    pub shuffle_buffer: usize,
    /// Fraction of paragraphs turned into direct-format task examples (cold start).
    #[arg(long, default_value_t = 0.0)]
    pub task_fraction: f64,
    #[arg(long, default_value_t = 3)]
    pub task_max_span_words: usize,
    /// Which tokens of a task example the loss counts: `whole` (as plain text) or
    /// `answer` (the span, its closing brace and end-of-text only; supervised
    /// fine-tuning on the formats).
    #[arg(long, value_enum, default_value_t = TaskLoss::Whole)]
    pub task_loss: TaskLoss,
    /// Build each task example from a random window of at most this many words of its
    /// paragraph (default: the whole paragraph).
    #[arg(long)]
    pub task_context_words: Option<usize>,
    /// Of the task examples, the fraction in the predictor's format (the rest are
    /// the generator's).
    #[arg(long, default_value_t = DEFAULT_PREDICTOR_SHARE)]
    pub task_predictor_share: f64,
    /// Fraction of the plain paragraphs written twice (a window of their words, then
    /// the same words again), which teaches the model to copy from its context.
    #[arg(long, default_value_t = 0.0)]
    pub repeat_fraction: f64,
    /// Keep each task example inside one training sequence: one that does not fit in
    /// the space left opens the next sequence (the space takes the following
    /// paragraphs as plain text, so fewer become task examples), and one longer than a
    /// sequence is written as plain text. Off, examples are packed like plain text and
    /// cut where a sequence ends.
    #[arg(long)]
    pub task_whole_examples: bool,
    /// Predictor examples to train on (JSON lines, each with the strings `masked`, a
    /// paragraph holding `[mask]`, and `answer`), replacing a fraction of the
    /// paragraphs; `perf/distill_answers.py` writes the model's own two-sided reading
    /// of masks as such a file (self-distillation).
    #[arg(long, conflicts_with_all = ["resume", "export_checkpoint"])]
    pub predictor_examples: Option<PathBuf>,
    /// Fraction of the paragraphs replaced by the next --predictor-examples line.
    #[arg(long, default_value_t = 0.3, requires = "predictor_examples")]
    pub predictor_examples_fraction: f64,
    /// Prompt formats of the task examples (a JSON file like a model folder's
    /// `prompt_templates.json`). Fields it leaves out, and the whole default, come
    /// from the --model folder's own templates, else the built-in ones.
    #[arg(long, conflicts_with_all = ["resume", "export_checkpoint"])]
    pub prompt_templates: Option<PathBuf>,
    /// Seeds the train/validation article split and a random init.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Seeds the paragraph order and the task mix (default: --seed). Give a continued
    /// stage (`--model` of an earlier run) the earlier run's --seed, so that it keeps
    /// the same validation articles, and a new --data-seed.
    #[arg(long)]
    pub data_seed: Option<u64>,
    /// Stop after this many consecutive steps with a NaN or infinite loss or gradient
    /// (each such step is skipped).
    #[arg(long, default_value_t = crate::pretrain::trainer::default_max_consecutive_nonfinite())]
    pub max_consecutive_nonfinite: usize,
    /// Bitwise-reproducible run on the CPU (one thread), also across kill and resume;
    /// a resumed run keeps its mode.
    #[arg(long, conflicts_with = "resume")]
    pub deterministic: bool,
    /// Storage type of the exported weights: float32, bfloat16 or float16.
    #[arg(long, default_value = "float32")]
    pub export_dtype: String,
    /// Type the model computes in: f32, or bf16 (mixed precision with f32 master
    /// weights for AdamW; CUDA and --device flex).
    #[arg(long, default_value_t = ComputeDtype::F32)]
    pub dtype: ComputeDtype,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl PretrainArgs {
    fn config(&self) -> anyhow::Result<Option<PretrainConfig>> {
        if self.resume.is_some() {
            return Ok(None);
        }
        let init = match (&self.model, &self.preset, &self.tokenizer) {
            (Some(dir), None, _) => ModelInit::Pretrained(dir.clone()),
            (None, Some(name), Some(tokenizer)) => ModelInit::Preset {
                // A config.json is recorded by absolute path so that --resume works
                // from any directory.
                name: match std::fs::canonicalize(name) {
                    Ok(file) if file.is_file() => file.display().to_string(),
                    _ => name.clone(),
                },
                tokenizer: tokenizer.clone(),
            },
            _ => anyhow::bail!("give --model DIR, or --preset NAME with --tokenizer FILE"),
        };
        RangeCheck::new()
            .at_least_one("--seq-len", self.seq_len)
            .at_least_one("--batch-size", self.batch_size)
            .at_least_one("--grad-accumulation", self.grad_accumulation)
            .positive("--lr", self.lr)
            .unit_closed("--min-lr-ratio", self.min_lr_ratio)
            .non_negative("--weight-decay", self.weight_decay as f64)
            .unit_half_open("--residual-dropout", self.residual_dropout)
            .unit_half_open("--beta2", self.beta2 as f64)
            .non_negative("--max-grad-norm", self.max_grad_norm)
            .unit_half_open("--validation-fraction", self.validation_fraction)
            .at_least_one("--keep-checkpoints", self.keep_checkpoints)
            .unit_closed("--task-fraction", self.task_fraction)
            .at_least_one("--task-max-span-words", self.task_max_span_words)
            .at_least_one("--task-context-words", self.task_context_words.unwrap_or(1))
            .unit_closed("--task-predictor-share", self.task_predictor_share)
            .unit_closed("--repeat-fraction", self.repeat_fraction)
            .unit_closed(
                "--predictor-examples-fraction",
                self.predictor_examples_fraction,
            )
            .at_least_one(
                "--max-consecutive-nonfinite",
                self.max_consecutive_nonfinite,
            )
            .finish("pretrain")?;
        let given_predictor_examples = self
            .predictor_examples
            .as_deref()
            .map(|path| GivenExamples::record(path, self.predictor_examples_fraction))
            .transpose()?;
        let prompt_templates = PromptTemplates::for_model_or_file(
            self.model.as_deref(),
            self.prompt_templates.as_deref(),
        )?;
        Ok(Some(PretrainConfig {
            corpus: self.corpus.clone().expect("clap requires --corpus"),
            min_words: self.min_words,
            init,
            seq_len: self.seq_len,
            batch_size: self.batch_size,
            grad_accumulation: self.grad_accumulation,
            steps: self.steps,
            lr: self.lr,
            warmup_steps: self.warmup_steps,
            min_lr_ratio: self.min_lr_ratio,
            weight_decay: self.weight_decay,
            residual_dropout: self.residual_dropout,
            beta2: self.beta2,
            max_grad_norm: self.max_grad_norm,
            validation_fraction: self.validation_fraction,
            validation_paragraphs: self.validation_paragraphs,
            validate_every: self.validate_every,
            checkpoint_every: self.checkpoint_every,
            keep_checkpoints: self.keep_checkpoints,
            shuffle_buffer: self.shuffle_buffer,
            task_mix: TaskMix {
                fraction: self.task_fraction,
                max_span_words: self.task_max_span_words,
                loss: self.task_loss,
                context_words: self.task_context_words,
                predictor_share: self.task_predictor_share,
                repeat_fraction: self.repeat_fraction,
                whole_examples: self.task_whole_examples,
            },
            given_predictor_examples,
            prompt_templates,
            seed: self.seed,
            data_seed: self.data_seed,
            export_dtype: self.export_dtype.clone(),
            dtype: self.dtype,
            max_consecutive_nonfinite: self.max_consecutive_nonfinite,
            deterministic: self.deterministic,
        }))
    }
}

pub fn run(args: PretrainArgs) -> anyhow::Result<()> {
    if let Some(run_dir) = args.export_checkpoint.clone() {
        let out = args.out.clone().expect("clap requires --out");
        if out.join("model.safetensors").exists() {
            anyhow::bail!(
                "{}: already holds a model; choose another --out",
                out.display()
            );
        }
        let step = run_on(
            args.device.kind(),
            ExportTask {
                run_dir,
                out: out.clone(),
            },
        )??;
        println!("exported the step-{step} checkpoint to {}", out.display());
        return Ok(());
    }
    let config = args.config()?;
    let run_dir = args
        .resume
        .clone()
        .or(args.out.clone())
        .expect("clap requires --out or --resume");
    let deterministic = match &config {
        Some(config) => config.deterministic,
        // A resumed run keeps its mode, which must be set before any parallel work.
        None => read_run_config(&run_dir)?.deterministic,
    };
    if deterministic {
        enter_deterministic_mode()?;
    }
    let summary = run_on(args.device.kind(), PretrainTask { config, run_dir })??;
    println!(
        "pretrained {} steps ({} tokens) in {:.0} s{}; HF export: {}",
        summary.steps,
        summary.tokens_seen,
        summary.seconds,
        summary
            .final_val_loss
            .map(|l| format!(", validation loss {l:.4} (perplexity {:.2})", l.exp()))
            .unwrap_or_default(),
        summary.export_dir.display()
    );
    Ok(())
}

struct PretrainTask {
    config: Option<PretrainConfig>,
    run_dir: PathBuf,
}

impl BackendTask for PretrainTask {
    type Output = anyhow::Result<PretrainSummary>;

    fn run<B: RewardStepBackend>(self, device: &B::Device) -> Self::Output {
        run_pretraining::<B>(self.config, &self.run_dir, device)
    }
}

struct ExportTask {
    run_dir: PathBuf,
    out: PathBuf,
}

impl BackendTask for ExportTask {
    type Output = anyhow::Result<usize>;

    fn run<B: RewardStepBackend>(self, device: &B::Device) -> Self::Output {
        crate::pretrain::trainer::export_checkpoint::<B>(&self.run_dir, &self.out, device)
    }
}
