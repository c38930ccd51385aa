//! The PretrainZero loop: paragraphs → rollouts (span policy, predictor) → rewards →
//! advantages → GRPO update, with metrics per step, resumable checkpoints and a final
//! HF export. Every span policy runs through this one loop.

use crate::kernels::RewardStepBackend;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use burn::backend::Autodiff;
use burn::module::{AutodiffModule, Module};
use serde::{Deserialize, Serialize};

use super::config::{SpanPolicyKind, TrainConfig};
use super::dynamic_sampling::draw_until_signal;
use super::span_log::{SpanLogRow, SPANS_FILE};
use super::step::{collect_rollouts, RolloutMetrics, StepRollouts};
use crate::checkpoint::{
    load_latest, nonfinite_stop, refuse_started_run, resumes_from_checkpoint, save_checkpoint,
};
use crate::data::split::shuffled;
use crate::data::{CorpusSpec, ParagraphRules, Split, SplitRule};
use crate::models::{save_pretrained, Decoder, PretrainedModel, WeightDtype};
use crate::optim::{run_concurrently, BackwardShards, CosineSchedule, FusedAdamW, NonfiniteGuard};
use crate::parallel::{PeerGroup, PeerSync};
use crate::policy::prompts::PromptTemplates;
use crate::progress::trace_phase;
use crate::run_lock::RunLock;
use crate::step_log::open_step_log;
use crate::update::policy_update::update_policy_on_peer;
use crate::update::UpdateStats;

/// Where the loop is; everything else is derived from the config and this.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    pub step: usize,
    pub epoch: u64,
    /// Paragraphs of this epoch's order already used.
    pub cursor: usize,
}

/// One line of `metrics.jsonl` (DESIGN.md §8).
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub step: usize,
    pub policy: SpanPolicyKind,
    #[serde(flatten)]
    pub rollout: RolloutMetrics,
    pub samples: usize,
    /// True when every group had equal rewards and the update was skipped.
    pub update_skipped: bool,
    #[serde(flatten)]
    pub update: UpdateStats,
    pub lr: f64,
    pub rollout_tokens_per_s: f64,
    pub update_tokens_per_s: f64,
    pub step_seconds: f64,
}

/// The run's configuration, written into its folder at the start.
pub const RUN_CONFIG_FILE: &str = "train_config.toml";

pub struct TrainSummary {
    pub steps: usize,
    pub run_dir: PathBuf,
    pub export_dir: PathBuf,
}

/// Starts (config given) or resumes (`None`) the run in `run_dir` on one device.
pub fn run_training<B: RewardStepBackend>(
    config: Option<TrainConfig>,
    run_dir: &Path,
    device: &B::Device,
) -> anyhow::Result<TrainSummary> {
    run_training_on_devices::<B>(config, run_dir, std::slice::from_ref(device))
}

/// One replica of the policy, with its optimizer, on its device.
struct Replica<B: RewardStepBackend, O> {
    model: Decoder<Autodiff<B>>,
    optimizer: O,
    reference: Option<Decoder<B>>,
    device: B::Device,
    sync: PeerSync,
}

/// The run data-parallel over `devices` (one replica each, gradients summed by
/// burn-collective; see `parallel`). The first device's replica is checkpointed and
/// exported; the others are identical to it.
pub fn run_training_on_devices<B: RewardStepBackend>(
    config: Option<TrainConfig>,
    run_dir: &Path,
    devices: &[B::Device],
) -> anyhow::Result<TrainSummary> {
    anyhow::ensure!(!devices.is_empty(), "training needs at least one device");
    let device = &devices[0];
    let check_dtype = |config: &TrainConfig| {
        let dtype = config.model.dtype;
        dtype
            .check_backend::<B>(device)
            .map_err(|problem| anyhow::anyhow!("model.dtype = \"{dtype}\": {problem}"))
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
            let config = config.with_model_templates()?;
            refuse_started_run(run_dir, RUN_CONFIG_FILE)?;
            std::fs::write(
                run_dir.join(RUN_CONFIG_FILE),
                toml::to_string_pretty(&config)?,
            )
            .with_context(|| {
                format!("{}: cannot write", run_dir.join(RUN_CONFIG_FILE).display())
            })?;
            config
        }
        None => {
            let config = TrainConfig::load(&run_dir.join(RUN_CONFIG_FILE), &[])?;
            check_dtype(&config)?;
            config
        }
    };

    type Ad<B> = Autodiff<B>;
    let model_path = &config.model.path;
    let compute_dtype = config.model.dtype;
    let pretrained = PretrainedModel::<Ad<B>>::load(model_path, device)
        .with_context(|| format!("loading model folder {}", model_path.display()))?;
    let tokenizer = pretrained
        .tokenizer
        .with_context(|| format!("{}: training needs tokenizer.json", model_path.display()))?;
    let model_config = pretrained.config;
    let eos_token_ids = model_config.eos_token_ids.clone();
    let reference = if config.optim.kl_coef > 0.0 {
        let reference = PretrainedModel::<B>::load(model_path, device)?.model;
        // Only ever run forward: its matrices are cast to the compute type once.
        Some(
            reference
                .with_compute_dtype(compute_dtype.float_dtype())
                .with_weights_in_compute_dtype(),
        )
    } else {
        None
    };
    let new_optimizer = || {
        FusedAdamW::new()
            .with_beta_1(config.optim.beta1)
            .with_beta_2(config.optim.beta2)
            .with_epsilon(1e-8)
            .with_weight_decay(config.optim.weight_decay)
            .init::<Ad<B>, Decoder<Ad<B>>>()
    };
    // Replicas are forks of one loaded model: the same parameter ids on every device,
    // which is what the gradient all-reduce matches parameters by.
    let peers = PeerGroup::<B>::register(devices)?;
    let from_checkpoint = resume && resumes_from_checkpoint(run_dir)?;
    let mut replicas = Vec::with_capacity(devices.len());
    let mut state = LoopState::default();
    for (replica_device, &sync) in devices.iter().zip(&peers.syncs) {
        let model = pretrained
            .model
            .clone()
            .with_compute_dtype(compute_dtype.float_dtype())
            .fork(replica_device);
        let (model, optimizer) = if from_checkpoint {
            let (model, optimizer, loaded) = load_latest::<Ad<B>, _, _, LoopState>(
                run_dir,
                model,
                new_optimizer(),
                replica_device,
            )?;
            state = loaded;
            (model, optimizer)
        } else {
            (model, new_optimizer())
        };
        replicas.push(Replica {
            model,
            optimizer,
            reference: reference.clone().map(|r| r.fork(replica_device)),
            device: replica_device.clone(),
            sync,
        });
    }
    drop(reference);
    if replicas.len() > 1 {
        println!(
            "data parallel over {} devices (gradients summed by burn-collective)",
            replicas.len()
        );
    }

    let pool = paragraph_pool(&config, &tokenizer)?;
    let mut order = EpochOrder::new(pool.len(), config.seed, state.epoch);
    let schedule = CosineSchedule {
        peak_lr: config.optim.lr,
        warmup_steps: config.optim.warmup_steps,
        total_steps: config.optim.steps,
        min_lr_ratio: config.optim.min_lr_ratio,
    };
    let update_config = config.optim.update_config();
    let shards = BackwardShards::for_backend::<B>();

    let mut metrics_file = open_step_log(&run_dir.join("metrics.jsonl"), state.step)?;
    let mut examples_file = open_step_log(&run_dir.join("examples.jsonl"), state.step)?;
    let mut spans_file = open_step_log(&run_dir.join(SPANS_FILE), state.step)?;
    let progress = crate::progress::step_progress(config.optim.steps, state.step);

    let mut nonfinite_guard = NonfiniteGuard::new(config.optim.max_consecutive_nonfinite);
    while state.step < config.optim.steps {
        let step_started = Instant::now();
        let seed = config
            .seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(state.step as u64);
        trace_phase("rollout", state.step + 1);
        let kind = config.policy.kind_at(state.step);
        let policies: Vec<(Decoder<B>, &B::Device, PeerSync)> = replicas
            .iter()
            .map(|r| {
                (
                    r.model.valid().with_weights_in_compute_dtype(),
                    &r.device,
                    r.sync,
                )
            })
            .collect();
        let draws = draw_until_signal(
            config.rollout.min_signal_groups,
            config.rollout.max_extra_draws,
            |draw| {
                let paragraphs = order.next_paragraphs(
                    &pool,
                    &mut state,
                    config.rollout.paragraphs_per_step,
                    config.seed,
                );
                let draw_seed = seed ^ (draw as u64).wrapping_mul(0xd1b5_4a32_d192_ed03);
                // Each replica rolls out its share of the paragraphs, with a seed of
                // its own (the first replica's is the one-device seed).
                let parts = run_concurrently(policies.clone(), |(policy, device, sync)| {
                    collect_rollouts(
                        &policy,
                        &tokenizer,
                        &eos_token_ids,
                        sync.share(&paragraphs),
                        &config,
                        kind,
                        draw_seed ^ (sync.index() as u64).wrapping_mul(0xa076_1d64_78bd_642f),
                        device,
                    )
                });
                anyhow::Ok(StepRollouts::from_replicas(
                    parts.into_iter().collect::<anyhow::Result<_>>()?,
                ))
            },
            |rollouts| rollouts.metrics.signal_groups,
        )?;
        drop(policies);
        let rollouts = StepRollouts::from_draws(draws);
        let lr = schedule.lr(state.step);
        trace_phase("update", state.step + 1);
        let update_started = Instant::now();
        let update_skipped = rollouts.samples.is_empty();
        let updated = run_concurrently(std::mem::take(&mut replicas), |mut replica| {
            let (model, stats) = update_policy_on_peer(
                replica.model,
                &mut replica.optimizer,
                replica.reference.as_ref(),
                &rollouts.samples,
                &update_config,
                shards,
                lr,
                &replica.device,
                replica.sync,
            );
            replica.model = model;
            (replica, stats)
        });
        // Every replica reports the group's statistics.
        let update = updated[0].1.clone();
        replicas = updated.into_iter().map(|(replica, _)| replica).collect();
        let update_seconds = update_started.elapsed().as_secs_f64();
        state.step += 1;

        let record = StepRecord {
            step: state.step,
            policy: kind,
            rollout_tokens_per_s: rollouts.metrics.rollout_tokens as f64
                / rollouts.metrics.rollout_seconds.max(1e-9),
            update_tokens_per_s: update.response_tokens as f64 / update_seconds.max(1e-9),
            rollout: rollouts.metrics,
            samples: rollouts.samples.len(),
            update_skipped,
            update,
            lr,
            step_seconds: step_started.elapsed().as_secs_f64(),
        };
        writeln!(metrics_file, "{}", serde_json::to_string(&record)?)?;
        for example in &rollouts.examples {
            writeln!(
                examples_file,
                "{}",
                serde_json::json!({"step": state.step, "example": example})
            )?;
        }
        for span in rollouts.spans {
            let row = SpanLogRow {
                step: state.step,
                policy: kind,
                span,
            };
            writeln!(spans_file, "{}", serde_json::to_string(&row)?)?;
        }
        // A step any of whose optimizer steps met a NaN or infinite loss or gradient
        // (skipped, not applied); a run of them means the run has diverged.
        if let Err(count) = nonfinite_guard.observe(record.update.nonfinite_steps > 0) {
            progress.finish_and_clear();
            return Err(nonfinite_stop(run_dir, count, state.step));
        }
        progress.set_message(format!(
            "acc {:.3} gen {:.3} valid {:.2} zero-var {:.2}{}",
            record.rollout.predictor_accuracy,
            record.rollout.generator_reward_mean,
            record.rollout.valid_mask_fraction,
            record.rollout.zero_variance_fraction,
            if update_skipped {
                " (update skipped: no signal)"
            } else {
                ""
            }
        ));
        progress.set_position(state.step as u64);
        if config.checkpoint.every > 0
            && (state.step % config.checkpoint.every == 0 || state.step == config.optim.steps)
        {
            trace_phase("checkpoint", state.step);
            save_checkpoint(
                run_dir,
                state.step,
                &replicas[0].model,
                &replicas[0].optimizer,
                &state,
                config.checkpoint.keep_last,
            )?;
        }
    }
    progress.finish();
    peers.finish()?;

    trace_phase("export", state.step);
    let export_dir = run_dir.join("final");
    save_pretrained(
        &replicas[0].model.valid(),
        &model_config,
        Some(&config.model.path.join("tokenizer.json")),
        &export_dir,
        WeightDtype::F32,
    )?;
    // The model was trained on these prompts; evaluating it should ask it in them.
    config.policy.templates.save_for_model(&export_dir)?;
    // The run is complete without its report; a failure here must not lose it.
    trace_phase("report", state.step);
    match crate::report::write_report(run_dir) {
        Ok(report) => println!("report: {}", report.index.display()),
        Err(e) => eprintln!("warning: report not written: {e:#}"),
    }
    Ok(TrainSummary {
        steps: state.step,
        run_dir: run_dir.to_path_buf(),
        export_dir,
    })
}

/// Train-split paragraphs whose generator prompt fits `max_prompt_tokens`.
fn paragraph_pool(
    config: &TrainConfig,
    tokenizer: &crate::models::TextTokenizer,
) -> anyhow::Result<Vec<String>> {
    let spec = CorpusSpec {
        path: config.data.corpus.clone(),
        format: None,
        text_field: "text".into(),
        rules: ParagraphRules {
            min_words: config.data.min_words,
            max_words: config.data.max_words,
        },
    };
    let split = SplitRule {
        seed: config.data.split_seed,
        validation_fraction: config.data.validation_fraction,
    };
    let template = &config.policy.templates.generator_reasoning;
    let mut pool = Vec::new();
    let (mut read, mut train_side) = (0usize, 0usize);
    let mut stream = spec
        .open()
        .with_context(|| format!("opening corpus {}", spec.path.display()))?;
    for paragraph in stream.by_ref() {
        read += 1;
        if split.split_of(&paragraph.article_id) != Split::Train {
            continue;
        }
        train_side += 1;
        let prompt_tokens = tokenizer
            .encode(&PromptTemplates::fill(template, &paragraph.text), false)?
            .len();
        if prompt_tokens <= config.rollout.max_prompt_tokens {
            pool.push(paragraph.text);
        }
    }
    if let Some(summary) = stream.warnings().summary() {
        eprintln!("warning: {summary}");
    }
    if pool.is_empty() {
        // Say which filter emptied the pool.
        anyhow::bail!(
            "{}: no paragraph to train on: {read} paragraphs of {}..{} words read, {train_side} of them on the training side of the article split (data.validation_fraction = {}, data.split_seed = {}), none of those fits rollout.max_prompt_tokens = {}",
            spec.path.display(),
            config.data.min_words,
            config.data.max_words.map_or("any".to_string(), |w| w.to_string()),
            config.data.validation_fraction,
            config.data.split_seed,
            config.rollout.max_prompt_tokens
        );
    }
    Ok(pool)
}

/// The seeded per-epoch order of the paragraph pool. It is a function of (seed,
/// epoch), so it is recomputed only when the epoch changes, never stored in checkpoints.
struct EpochOrder {
    epoch: u64,
    order: Vec<usize>,
}

impl EpochOrder {
    fn new(pool_len: usize, seed: u64, epoch: u64) -> Self {
        Self {
            epoch,
            order: shuffled(0..pool_len, pool_len, seed ^ epoch),
        }
    }

    /// The next `count` paragraphs, advancing `state` across epochs.
    fn next_paragraphs(
        &mut self,
        pool: &[String],
        state: &mut LoopState,
        count: usize,
        seed: u64,
    ) -> Vec<String> {
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            if state.cursor >= pool.len() {
                state.epoch += 1;
                state.cursor = 0;
            }
            if self.epoch != state.epoch {
                *self = Self::new(pool.len(), seed, state.epoch);
            }
            out.push(pool[self.order[state.cursor]].clone());
            state.cursor += 1;
        }
        out
    }
}
