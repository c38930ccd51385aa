//! The continued-pretraining loop: AdamW, cosine schedule with warm-up, global-norm
//! clipping, gradient accumulation, periodic validation, resumable checkpoints, and
//! a final HF export.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, Optimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::given_examples::GivenExamples;
use super::loss::{next_token_loss_sum, scored_targets, validation_loss};
use super::task_mix::TaskMix;
use super::token_stream::{validation_chunks, PackedTokenStream, StreamPosition, TokenChunk};
use crate::checkpoint::{
    load_latest, nonfinite_stop, refuse_started_run, resumes_from_checkpoint, save_checkpoint,
};
use crate::data::tokenizer_training::END_OF_TEXT;
use crate::data::{CorpusSpec, SplitRule};
use crate::kernels::RewardStepBackend;
use crate::models::{
    random_decoder, save_pretrained, ComputeDtype, Decoder, ModelConfig, PretrainedModel,
    TextTokenizer, WeightDtype,
};
use crate::optim::{
    accumulate_sharded_gradients, clip_global_norm, is_finite_step, BackwardShards, CosineSchedule,
    FusedAdamW, NonfiniteGuard,
};
use crate::policy::prompts::PromptTemplates;
use crate::run_lock::RunLock;
use crate::settings_check::RangeCheck;
use crate::step_log::open_step_log;

/// Where the weights start from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelInit {
    /// An HF model folder (its tokenizer.json is used).
    Pretrained(PathBuf),
    /// A random init, sized to `tokenizer`, of a named architecture preset or of the
    /// shape in a `config.json` file (`name` is then that file's path).
    Preset { name: String, tokenizer: PathBuf },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainConfig {
    pub corpus: PathBuf,
    pub min_words: usize,
    pub init: ModelInit,
    pub seq_len: usize,
    pub batch_size: usize,
    pub grad_accumulation: usize,
    pub steps: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub min_lr_ratio: f64,
    pub weight_decay: f32,
    /// Dropout on each layer's attention and MLP outputs during the training passes
    /// (not the validation pass); 0 = none.
    #[serde(default)]
    pub residual_dropout: f64,
    pub beta2: f32,
    pub max_grad_norm: f64,
    pub validation_fraction: f64,
    pub validation_paragraphs: usize,
    pub validate_every: usize,
    pub checkpoint_every: usize,
    pub keep_checkpoints: usize,
    pub shuffle_buffer: usize,
    pub task_mix: TaskMix,
    /// Predictor examples from a file that replace a fraction of the paragraphs.
    #[serde(default)]
    pub given_predictor_examples: Option<GivenExamples>,
    /// The task examples' prompt formats; written into every exported model folder.
    #[serde(default)]
    pub prompt_templates: PromptTemplates,
    /// Seeds the article split and a random init.
    pub seed: u64,
    /// Seeds the paragraph order and the task mix; `None` uses `seed`. A continued
    /// stage sets it apart from `seed` to keep the same validation articles while
    /// seeing the training paragraphs in a new order.
    #[serde(default)]
    pub data_seed: Option<u64>,
    pub export_dtype: String,
    /// The type the model computes in; bf16 keeps f32 master weights for AdamW.
    #[serde(default)]
    pub dtype: ComputeDtype,
    /// The run stops after this many consecutive steps with a NaN or infinite loss or
    /// gradient (each is skipped, not applied).
    #[serde(default = "default_max_consecutive_nonfinite")]
    pub max_consecutive_nonfinite: usize,
    /// Bitwise-reproducible CPU run (one thread; see `determinism`).
    #[serde(default)]
    pub deterministic: bool,
}

pub fn default_max_consecutive_nonfinite() -> usize {
    3
}

/// The backend seed for the dropout masks of the step after `step`.
fn dropout_seed(data_seed: u64, step: usize) -> u64 {
    data_seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ step as u64
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PretrainState {
    pub step: usize,
    pub tokens_seen: u64,
    pub position: StreamPosition,
}

#[derive(Debug, Serialize)]
struct StepMetrics {
    step: usize,
    loss: f64,
    lr: f64,
    grad_norm: f64,
    tokens_per_s: f64,
    tokens_seen: u64,
    /// The optimizer step was skipped: NaN or infinite loss or gradient.
    nonfinite_skipped: bool,
    /// Targets that counted in the loss (all tokens of plain text; with
    /// `--task-loss answer`, a task example's answer only). 0: no optimizer step.
    scored_targets: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    val_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    val_perplexity: Option<f64>,
}

/// Final summary of a run.
#[derive(Debug, Clone, Serialize)]
pub struct PretrainSummary {
    pub steps: usize,
    pub tokens_seen: u64,
    pub final_val_loss: Option<f64>,
    pub export_dir: PathBuf,
    pub seconds: f64,
}

const CONFIG_FILE: &str = "pretrain_config.json";

/// The configuration a pretraining run stored in its folder.
pub fn read_run_config(run_dir: &Path) -> anyhow::Result<PretrainConfig> {
    let path = run_dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot resume", path.display()))?;
    let config: PretrainConfig = serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid run config", path.display()))?;
    // The one stored setting that would otherwise reach an assertion instead of an error.
    RangeCheck::new()
        .unit_half_open("residual_dropout", config.residual_dropout)
        .finish(&path.display().to_string())?;
    Ok(config)
}

/// Runs (or, with `resume`, continues) a pretraining run in `run_dir`.
pub fn run_pretraining<B: RewardStepBackend>(
    config: Option<PretrainConfig>,
    run_dir: &Path,
    device: &B::Device,
) -> anyhow::Result<PretrainSummary> {
    let check_dtype = |config: &PretrainConfig| {
        config
            .dtype
            .check_backend::<B>(device)
            .map_err(|problem| anyhow::anyhow!("--dtype {}: {problem}", config.dtype))
    };
    // Before the lock: a new run whose backend cannot compute in the configured type
    // creates no run folder at all.
    if let Some(config) = &config {
        check_dtype(config)?;
    }
    let _lock = RunLock::acquire(run_dir)?;
    let resume = config.is_none();
    let config = match config {
        Some(config) => {
            refuse_started_run(run_dir, CONFIG_FILE)?;
            std::fs::write(
                run_dir.join(CONFIG_FILE),
                serde_json::to_string_pretty(&config)?,
            )
            .with_context(|| format!("{}: cannot write", run_dir.join(CONFIG_FILE).display()))?;
            config
        }
        None => {
            let config = read_run_config(run_dir)?;
            check_dtype(&config)?;
            config
        }
    };
    let export_dtype = WeightDtype::parse(&config.export_dtype).with_context(|| {
        format!(
            "export dtype `{}` (use float32, bfloat16 or float16)",
            config.export_dtype
        )
    })?;

    type Ad<B> = Autodiff<B>;
    let (model_config, model, tokenizer, tokenizer_path) =
        init_model::<Ad<B>>(&config.init, config.seed, device)?;
    let model = model
        .with_compute_dtype(config.dtype.float_dtype())
        .with_residual_dropout(config.residual_dropout);
    let eos = tokenizer
        .token_to_id(END_OF_TEXT)
        .or_else(|| model_config.eos_token_ids.first().copied())
        .context("the tokenizer has no <|endoftext|> and the config no eos_token_id")?;

    let mut optimizer = FusedAdamW::new()
        .with_beta_2(config.beta2)
        .with_epsilon(1e-8)
        .with_weight_decay(config.weight_decay)
        .init::<Ad<B>, Decoder<Ad<B>>>();
    let (mut model, mut state) = if resume && resumes_from_checkpoint(run_dir)? {
        let (model, restored, state): (_, _, PretrainState) =
            load_latest(run_dir, model, optimizer, device)?;
        optimizer = restored;
        (model, state)
    } else {
        (model, PretrainState::default())
    };

    let corpus = CorpusSpec {
        path: config.corpus.clone(),
        format: None,
        text_field: "text".into(),
        rules: crate::data::ParagraphRules {
            min_words: config.min_words,
            max_words: None,
        },
    };
    let split = SplitRule {
        seed: config.seed,
        validation_fraction: config.validation_fraction,
    };
    let validation = validation_chunks(
        &corpus,
        split,
        &tokenizer,
        eos,
        config.seq_len,
        config.validation_paragraphs,
    )?;
    let data_seed = config.data_seed.unwrap_or(config.seed);
    let mut stream = PackedTokenStream::new(
        corpus,
        split,
        &tokenizer,
        eos,
        config.seq_len,
        config.shuffle_buffer,
        data_seed,
        config.task_mix,
        state.position.clone(),
    )
    .with_templates(config.prompt_templates.clone());
    if let Some(given) = &config.given_predictor_examples {
        stream = stream.with_given_examples(given.fraction, given.load()?);
    }
    let schedule = CosineSchedule {
        peak_lr: config.lr,
        warmup_steps: config.warmup_steps,
        total_steps: config.steps,
        min_lr_ratio: config.min_lr_ratio,
    };

    let mut metrics_file = open_step_log(&run_dir.join("metrics.jsonl"), state.step)?;
    let progress = crate::progress::step_progress(config.steps, state.step);
    let started = Instant::now();
    let mut last_val = None;
    let shards = BackwardShards::for_pretraining::<B>();
    let mut nonfinite_guard = NonfiniteGuard::new(config.max_consecutive_nonfinite);

    while state.step < config.steps {
        let step_start = Instant::now();
        let lr = schedule.lr(state.step);
        let micro_batches = (0..config.grad_accumulation)
            .map(|_| {
                (0..config.batch_size)
                    .map(|_| stream.next_chunk())
                    .collect::<anyhow::Result<Vec<_>>>()
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if config.residual_dropout > 0.0 {
            // The dropout masks come from the backend's random stream; seeding it from
            // the run's data seed and the step draws the same masks in a rerun and
            // after a resume (so a deterministic run still repeats bit for bit).
            B::seed(device, dropout_seed(data_seed, state.step));
        }
        let outcome;
        (model, outcome) = train_step(
            model,
            &mut optimizer,
            &micro_batches,
            shards,
            lr,
            config.max_grad_norm,
            device,
        );
        let (loss_sum, grad_norm) = (outcome.loss, outcome.grad_norm);
        state.step += 1;
        let step_tokens = (config.batch_size * config.grad_accumulation * config.seq_len) as u64;
        state.tokens_seen += step_tokens;
        state.position = stream.position().clone();

        let (val_loss, val_perplexity) = if config.validate_every > 0
            && (state.step % config.validate_every == 0 || state.step == config.steps)
            && !validation.is_empty()
        {
            let loss = validation_loss(&model.valid(), &validation, config.batch_size, device);
            last_val = Some(loss);
            (Some(loss), Some(loss.exp()))
        } else {
            (None, None)
        };
        let metrics = StepMetrics {
            step: state.step,
            loss: loss_sum,
            lr,
            grad_norm,
            tokens_per_s: step_tokens as f64 / step_start.elapsed().as_secs_f64(),
            tokens_seen: state.tokens_seen,
            nonfinite_skipped: outcome.skipped,
            scored_targets: outcome.scored_targets,
            val_loss,
            val_perplexity,
        };
        writeln!(metrics_file, "{}", serde_json::to_string(&metrics)?)?;
        if let Err(count) = nonfinite_guard.observe(outcome.skipped) {
            progress.finish_and_clear();
            return Err(nonfinite_stop(run_dir, count, state.step));
        }
        progress.set_message(format!(
            "loss {:.3} lr {:.2e} {:.0} tok/s{}",
            metrics.loss,
            lr,
            metrics.tokens_per_s,
            last_val
                .map(|v: f64| format!(" val ppl {:.1}", v.exp()))
                .unwrap_or_default()
        ));
        progress.set_position(state.step as u64);
        if config.checkpoint_every > 0
            && (state.step % config.checkpoint_every == 0 || state.step == config.steps)
        {
            save_checkpoint(
                run_dir,
                state.step,
                &model,
                &optimizer,
                &state,
                config.keep_checkpoints,
            )?;
        }
    }
    progress.finish();

    let export_dir = run_dir.join("final");
    save_pretrained(
        &model.valid(),
        &model_config,
        Some(&tokenizer_path),
        &export_dir,
        export_dtype,
    )?;
    config.prompt_templates.save_for_model(&export_dir)?;
    Ok(PretrainSummary {
        steps: state.step,
        tokens_seen: state.tokens_seen,
        final_val_loss: last_val,
        export_dir,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Loss and gradient norm of one optimizer step.
#[derive(Debug, Clone, Copy)]
pub struct StepOutcome {
    pub loss: f64,
    pub grad_norm: f64,
    /// The loss or gradient norm was not finite, so the optimizer step was skipped.
    pub skipped: bool,
    /// Targets that counted in the loss. With none (possible when only task answers
    /// count and every chunk holds prompt tokens alone) nothing is learned and the
    /// optimizer does not step, so momentum and weight decay leave the weights alone.
    pub scored_targets: usize,
}

/// One optimizer step: gradients accumulated over `micro_batches` (each a batch of
/// `seq_len + 1`-token chunks, run as `shards` concurrent pieces), clipped to
/// `max_grad_norm` as a whole, then AdamW. The loss is the mean over the step's
/// scored targets.
pub fn train_step<B, O>(
    model: Decoder<Autodiff<B>>,
    optimizer: &mut O,
    micro_batches: &[Vec<TokenChunk>],
    shards: BackwardShards,
    lr: f64,
    max_grad_norm: f64,
    device: &B::Device,
) -> (Decoder<Autodiff<B>>, StepOutcome)
where
    B: RewardStepBackend,
    O: Optimizer<Decoder<Autodiff<B>>, Autodiff<B>>,
{
    let step_targets = scored_targets(micro_batches.iter().flatten());
    if step_targets == 0 {
        let outcome = StepOutcome {
            loss: 0.0,
            grad_norm: 0.0,
            skipped: false,
            scored_targets: 0,
        };
        return (model, outcome);
    }
    let mut accumulator = GradientsAccumulator::<Decoder<Autodiff<B>>>::new();
    let mut loss_sum = 0.0;
    // Each shard's summed token loss over the step's scored targets: the shards' sum
    // is the mean over the whole step, however the scored targets fall.
    for chunks in micro_batches {
        let shard_loss = |model: &Decoder<Autodiff<B>>, shard: &[TokenChunk]| {
            let loss = next_token_loss_sum(model, shard, device) / step_targets as f64;
            let value = loss.clone().into_scalar().elem::<f64>();
            (loss, value)
        };
        let losses = accumulate_sharded_gradients(
            &model,
            shards.split(chunks),
            shard_loss,
            &mut accumulator,
        );
        loss_sum += losses.iter().sum::<f64>();
    }
    let mut grads = accumulator.grads();
    let grad_norm = clip_global_norm(&model, &mut grads, max_grad_norm);
    let finite = is_finite_step(loss_sum, grad_norm);
    let model = if finite {
        optimizer.step(lr, model, grads)
    } else {
        model
    };
    (
        model,
        StepOutcome {
            loss: loss_sum,
            grad_norm,
            skipped: !finite,
            scored_targets: step_targets,
        },
    )
}

type Initialised<B> = (ModelConfig, Decoder<B>, TextTokenizer, PathBuf);

fn init_model<B: Backend>(
    init: &ModelInit,
    seed: u64,
    device: &B::Device,
) -> anyhow::Result<Initialised<B>> {
    match init {
        ModelInit::Pretrained(dir) => {
            let pretrained = PretrainedModel::<B>::load(dir, device)
                .with_context(|| format!("loading model folder {}", dir.display()))?;
            let tokenizer = pretrained
                .tokenizer
                .with_context(|| format!("{}: pretraining needs tokenizer.json", dir.display()))?;
            Ok((
                pretrained.config,
                pretrained.model,
                tokenizer,
                dir.join("tokenizer.json"),
            ))
        }
        ModelInit::Preset { name, tokenizer } => {
            let tokenizer_path = if tokenizer.is_dir() {
                tokenizer.join("tokenizer.json")
            } else {
                tokenizer.clone()
            };
            let text_tokenizer = TextTokenizer::from_file(&tokenizer_path)?;
            let eos = text_tokenizer
                .token_to_id(END_OF_TEXT)
                .with_context(|| format!("{}: no {END_OF_TEXT} token", tokenizer_path.display()))?;
            let shape = Path::new(name);
            let config = if shape.is_file() {
                ModelConfig::from_file(shape)?
            } else {
                ModelConfig::preset(name)?
            };
            let config = config.with_vocabulary(text_tokenizer.vocab_size(), eos);
            // Weights, gradients and AdamW's two moments, all f32.
            config
                .check_fits_in_memory(16, "train it with AdamW")
                .with_context(|| format!("preset or shape `{name}`"))?;
            let model = random_decoder::<B>(&config, seed, device);
            Ok((config, model, text_tokenizer, tokenizer_path))
        }
    }
}

/// Exports the newest checkpoint of a pretraining run as an HF folder (for looking at
/// a run before it ends).
pub fn export_checkpoint<B: RewardStepBackend>(
    run_dir: &Path,
    out: &Path,
    device: &B::Device,
) -> anyhow::Result<usize> {
    let path = run_dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: not a pretraining run", path.display()))?;
    let config: PretrainConfig = serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid run config", path.display()))?;
    let dtype = WeightDtype::parse(&config.export_dtype).unwrap_or(WeightDtype::F32);
    type Ad<B> = Autodiff<B>;
    let (model_config, model, _, tokenizer_path) =
        init_model::<Ad<B>>(&config.init, config.seed, device)?;
    let optimizer = FusedAdamW::new().init::<Ad<B>, Decoder<Ad<B>>>();
    let (model, _, state): (_, _, PretrainState) = load_latest(run_dir, model, optimizer, device)?;
    save_pretrained(
        &model.valid(),
        &model_config,
        Some(&tokenizer_path),
        out,
        dtype,
    )?;
    config.prompt_templates.save_for_model(out)?;
    Ok(state.step)
}
