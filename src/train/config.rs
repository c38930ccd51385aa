//! The run configuration: every default of DESIGN.md §1–6 is a key here. Read from a
//! TOML file (presets in `configs/`), then `--set section.key=value` overrides.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use pretrainzero_models::ComputeDtype;

use crate::policy::prompts::PromptTemplates;
use crate::policy::span_rules::SpanRules;
use crate::settings_check::RangeCheck;
use crate::update::{LossAggregation, PolicyLossConfig, UpdateConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SpanPolicyKind {
    /// The model writes `\mask{}`; generator and predictor both trained.
    Pretrainzero,
    /// Uniformly random 1–N-word spans; only the predictor is trained ("Random RLPT").
    RandomSpan,
    /// Cut at a random word; predict the next word.
    RandomNtp,
    /// Cut before a top-20 %-entropy token under the current model (RPT-style).
    EntropyNtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptStyle {
    Direct,
    Reasoning,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The policy model. `model = "PATH"` is shorthand for `[model] path = "PATH"`.
    pub model: ModelSection,
    pub seed: u64,
    /// Bitwise-reproducible CPU runs (one thread; see `determinism`).
    #[serde(default)]
    pub deterministic: bool,
    pub data: DataSection,
    pub policy: PolicySection,
    pub rollout: RolloutSection,
    pub optim: OptimSection,
    pub checkpoint: CheckpointSection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// HF model folder (with tokenizer.json) to start from.
    pub path: PathBuf,
    /// `f32`, or `bf16`: mixed precision with f32 master weights for AdamW (see
    /// `pretrainzero_models::precision`); bf16 needs a backend that has it (CUDA,
    /// burn-flex).
    #[serde(default)]
    pub dtype: ComputeDtype,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    pub corpus: PathBuf,
    pub min_words: usize,
    /// Longer paragraphs are skipped (keeps prompts short on small models).
    pub max_words: Option<usize>,
    /// Articles held out from RL (used by evaluation).
    pub validation_fraction: f64,
    /// Seed of the article split. It differs from the pretraining split's seed (0) on
    /// purpose: the shipped sample is exactly pretraining's held-out side, so the same
    /// seed would put every article on one side again.
    pub split_seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    pub kind: SpanPolicyKind,
    /// The first this many steps use `random-span` instead of `kind`: the paper's
    /// cold start (100 steps of random masking before RL on SmolLM3). 0: none.
    pub cold_start_steps: usize,
    pub prompt_style: PromptStyle,
    /// G_m: masks per paragraph.
    pub masks_per_paragraph: usize,
    /// G_p: answers per mask.
    pub answers_per_mask: usize,
    /// `random-span`: span length drawn from 1..=this.
    pub random_span_max_words: usize,
    /// `entropy-ntp`: share of highest-entropy positions to choose from.
    pub entropy_top_fraction: f64,
    pub case_insensitive: bool,
    pub span_rules: SpanRules,
    /// `pretrainzero`, direct prompt: the generator may only write a span copied from
    /// its paragraph (constrained decoding; see `policy::copy_constraint`). Off in the
    /// paper, whose generator copies by itself.
    pub generator_copy_constraint: bool,
    pub templates: PromptTemplates,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutSection {
    pub paragraphs_per_step: usize,
    pub temperature: f32,
    /// Sampling temperature of the generator role (`pretrainzero`), when it should
    /// differ from `temperature` (the paper uses one temperature for both roles).
    pub generator_temperature: Option<f32>,
    /// Sampling temperature of the predictor role, when it should differ.
    pub predictor_temperature: Option<f32>,
    pub top_p: f32,
    pub max_prompt_tokens: usize,
    pub max_response_tokens: usize,
    /// Sequences generated together.
    pub generation_batch_size: usize,
    /// Dynamic sampling (DAPO; off at 0): draw more paragraphs until the step holds
    /// this many groups with unequal rewards...
    pub min_signal_groups: usize,
    /// ...drawing at most this many extra batches of `paragraphs_per_step`.
    pub max_extra_draws: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimSection {
    pub steps: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub min_lr_ratio: f64,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub max_grad_norm: f64,
    pub ppo_mini_batches: usize,
    pub micro_batch_size: usize,
    pub eps_low: f64,
    pub eps_high: f64,
    pub kl_coef: f64,
    pub loss_aggregation: LossAggregation,
    /// false: Dr.GRPO (no division by the group's standard deviation).
    pub advantage_scale: bool,
    /// Memory bound of the masked-token reward step, in MiB of logits per row chunk.
    pub reward_step_memory_mib: usize,
    /// The run stops after this many consecutive steps whose update met a NaN or
    /// infinite loss or gradient (such optimizer steps are skipped, not applied).
    pub max_consecutive_nonfinite: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointSection {
    pub every: usize,
    pub keep_last: usize,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            corpus: PathBuf::from("data/wikipedia-sample"),
            min_words: 12,
            max_words: None,
            validation_fraction: 0.0,
            split_seed: 1,
        }
    }
}

impl Default for PolicySection {
    fn default() -> Self {
        Self {
            kind: SpanPolicyKind::Pretrainzero,
            cold_start_steps: 0,
            prompt_style: PromptStyle::Reasoning,
            masks_per_paragraph: 8,
            answers_per_mask: 8,
            random_span_max_words: 3,
            entropy_top_fraction: 0.2,
            case_insensitive: false,
            span_rules: SpanRules::default(),
            generator_copy_constraint: false,
            templates: PromptTemplates::default(),
        }
    }
}

impl Default for RolloutSection {
    fn default() -> Self {
        Self {
            paragraphs_per_step: 32,
            temperature: 1.0,
            generator_temperature: None,
            predictor_temperature: None,
            top_p: 1.0,
            max_prompt_tokens: 1536,
            max_response_tokens: 4096,
            generation_batch_size: 64,
            min_signal_groups: 0,
            max_extra_draws: 3,
        }
    }
}

impl Default for OptimSection {
    fn default() -> Self {
        let loss = PolicyLossConfig::default();
        Self {
            steps: 2000,
            lr: 5e-7,
            warmup_steps: 0,
            min_lr_ratio: 1.0,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            max_grad_norm: 1.0,
            ppo_mini_batches: 4,
            micro_batch_size: 8,
            eps_low: loss.eps_low,
            eps_high: loss.eps_high,
            kl_coef: loss.kl_coef,
            loss_aggregation: LossAggregation::TokenMean,
            advantage_scale: true,
            reward_step_memory_mib: 1024,
            max_consecutive_nonfinite: 3,
        }
    }
}

impl PolicySection {
    /// The span policy of step `step` (0-based): the cold start's `random-span`, then
    /// `kind`. A function of the step alone, so a resumed run continues the schedule.
    pub fn kind_at(&self, step: usize) -> SpanPolicyKind {
        if step < self.cold_start_steps {
            SpanPolicyKind::RandomSpan
        } else {
            self.kind
        }
    }
}

impl OptimSection {
    /// The GRPO update's settings.
    pub fn update_config(&self) -> UpdateConfig {
        UpdateConfig {
            loss: PolicyLossConfig {
                eps_low: self.eps_low,
                eps_high: self.eps_high,
                kl_coef: self.kl_coef,
            },
            aggregation: self.loss_aggregation,
            ppo_mini_batches: self.ppo_mini_batches,
            micro_batch_size: self.micro_batch_size,
            max_grad_norm: self.max_grad_norm,
            reward_step_budget_bytes: self.reward_step_memory_mib << 20,
        }
    }
}

impl Default for CheckpointSection {
    fn default() -> Self {
        Self {
            every: 50,
            keep_last: 3,
        }
    }
}

impl TrainConfig {
    /// Reads `path` (TOML) and applies `overrides` (`section.key=value`, the value in
    /// TOML syntax; bare words are taken as strings).
    pub fn load(path: &Path, overrides: &[String]) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read config", path.display()))?;
        Self::from_toml(&text, &path.display().to_string(), overrides)
    }

    /// The default run's configuration, compiled into the binary so that `train`
    /// works from any directory.
    pub fn built_in_default(overrides: &[String]) -> anyhow::Result<Self> {
        Self::from_toml(DEFAULT_CONFIG_TOML, DEFAULT_CONFIG_NAME, overrides)
    }

    /// Parses TOML `text` (named `source` in messages), applies `overrides`, resolves
    /// relative paths (see [`resolve_project_path`]) and validates every key.
    pub fn from_toml(text: &str, source: &str, overrides: &[String]) -> anyhow::Result<Self> {
        let mut value: toml::Table =
            toml::from_str(text).with_context(|| format!("{source}: invalid TOML"))?;
        model_path_as_section(&mut value);
        for assignment in overrides {
            apply_override(&mut value, assignment)
                .with_context(|| format!("--set {assignment}"))?;
        }
        let mut config: TrainConfig = toml::Value::Table(value)
            .try_into()
            .with_context(|| format!("{source}: invalid configuration"))?;
        config.model.path = resolve_project_path(&config.model.path);
        config.data.corpus = resolve_project_path(&config.data.corpus);
        config.validate(source)?;
        Ok(config)
    }

    /// A new run's prompts: templates the configuration leaves at their built-in values
    /// follow the model's prompt format (its `prompt_templates.json`, if it has one).
    /// Only a new run does this; a resumed run keeps the prompts it started with.
    pub fn with_model_templates(mut self) -> anyhow::Result<Self> {
        let model = PromptTemplates::for_model(&self.model.path)?;
        self.policy.templates = self.policy.templates.over_model(&model);
        Ok(self)
    }

    /// Every numeric key against its valid range (all violations reported at once);
    /// `source` names where the configuration came from.
    pub fn validate(&self, source: &str) -> anyhow::Result<()> {
        let (data, policy, rollout, optim) = (&self.data, &self.policy, &self.rollout, &self.optim);
        let mut check = RangeCheck::new();
        check
            .unit_half_open("data.validation_fraction", data.validation_fraction)
            .at_least_one("policy.masks_per_paragraph", policy.masks_per_paragraph)
            .at_least_one("policy.answers_per_mask", policy.answers_per_mask)
            .at_least_one("policy.random_span_max_words", policy.random_span_max_words)
            .unit_positive("policy.entropy_top_fraction", policy.entropy_top_fraction)
            .at_least_one(
                "policy.span_rules.max_occurrences",
                policy.span_rules.max_occurrences,
            )
            .at_least_one("rollout.paragraphs_per_step", rollout.paragraphs_per_step)
            // RL needs sampling: temperature 0 would make every group's rewards equal.
            .positive("rollout.temperature", rollout.temperature as f64)
            .positive(
                "rollout.generator_temperature",
                rollout.generator_temperature.unwrap_or(1.0) as f64,
            )
            .positive(
                "rollout.predictor_temperature",
                rollout.predictor_temperature.unwrap_or(1.0) as f64,
            )
            .unit_positive("rollout.top_p", rollout.top_p as f64)
            .at_least_one("rollout.max_prompt_tokens", rollout.max_prompt_tokens)
            .at_least_one("rollout.max_response_tokens", rollout.max_response_tokens)
            .at_least_one(
                "rollout.generation_batch_size",
                rollout.generation_batch_size,
            )
            .positive("optim.lr", optim.lr)
            .unit_closed("optim.min_lr_ratio", optim.min_lr_ratio)
            .non_negative("optim.weight_decay", optim.weight_decay as f64)
            .unit_half_open("optim.beta1", optim.beta1 as f64)
            .unit_half_open("optim.beta2", optim.beta2 as f64)
            // 0 turns clipping off.
            .non_negative("optim.max_grad_norm", optim.max_grad_norm)
            .at_least_one("optim.ppo_mini_batches", optim.ppo_mini_batches)
            .at_least_one("optim.micro_batch_size", optim.micro_batch_size)
            .unit_half_open("optim.eps_low", optim.eps_low)
            .non_negative("optim.eps_high", optim.eps_high)
            .non_negative("optim.kl_coef", optim.kl_coef)
            .at_least_one("optim.reward_step_memory_mib", optim.reward_step_memory_mib)
            .at_least_one(
                "optim.max_consecutive_nonfinite",
                optim.max_consecutive_nonfinite,
            )
            .at_least_one("checkpoint.keep_last", self.checkpoint.keep_last);
        if let Some(max_words) = data.max_words {
            check.ordered(
                ("data.min_words", data.min_words),
                ("data.max_words", max_words),
            );
        }
        if let Some(max_span_words) = policy.span_rules.max_span_words {
            check.at_least_one("policy.span_rules.max_span_words", max_span_words);
        }
        check.finish(source)?;
        if policy.generator_copy_constraint && policy.prompt_style != PromptStyle::Direct {
            anyhow::bail!(
                "{source}: policy.generator_copy_constraint constrains the span written right after the direct prompt's \\mask{{; it needs policy.prompt_style = \"direct\""
            );
        }
        Ok(())
    }
}

/// The default run's configuration file, as compiled into the binary.
pub const DEFAULT_CONFIG_NAME: &str = "configs/tiny-cpu.toml";
const DEFAULT_CONFIG_TOML: &str = include_str!("../../configs/tiny-cpu.toml");

/// A relative path of a configuration (model folder, corpus) names a file under the
/// current directory if one is there, and otherwise the file of that name in the
/// project checkout this binary was built from, so that the shipped model and data
/// are found from any directory (and after `cargo install --path .`, as long as the
/// checkout stays). The result is absolute, so a resumed run finds the same files.
pub fn resolve_project_path(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let chosen = if !path.exists() && project.exists() {
        project
    } else {
        path.to_path_buf()
    };
    std::path::absolute(&chosen).unwrap_or(chosen)
}

/// `model = "PATH"`, a file's shorthand, as the section `[model] path = "PATH"` it
/// stands for.
fn model_path_as_section(table: &mut toml::Table) {
    if let Some(toml::Value::String(path)) = table.get("model") {
        let section = toml::Table::from_iter([("path".into(), toml::Value::String(path.clone()))]);
        table.insert("model".into(), toml::Value::Table(section));
    }
}

fn apply_override(table: &mut toml::Table, assignment: &str) -> anyhow::Result<()> {
    let (key, raw) = assignment.split_once('=').context("expected key=value")?;
    // `--set model=PATH` sets the model's path and keeps its other keys (`model.dtype`).
    let key = if key.trim() == "model" {
        "model.path"
    } else {
        key
    };
    let parsed: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").expect("parsed key"),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.trim().split('.').collect();
    let (last, sections) = parts.split_last().context("empty key")?;
    let mut current = table;
    for section in sections {
        current = current
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .with_context(|| format!("`{section}` is not a section"))?;
    }
    current.insert(last.to_string(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cold_start_is_a_schedule_of_policies() {
        let policy = PolicySection {
            kind: SpanPolicyKind::EntropyNtp,
            cold_start_steps: 3,
            ..PolicySection::default()
        };
        let kinds: Vec<SpanPolicyKind> = (0..5).map(|step| policy.kind_at(step)).collect();
        use SpanPolicyKind::*;
        assert_eq!(
            kinds,
            [RandomSpan, RandomSpan, RandomSpan, EntropyNtp, EntropyNtp]
        );
        assert_eq!(
            PolicySection::default().kind_at(0),
            Pretrainzero,
            "no cold start by default"
        );
    }

    #[test]
    fn invalid_role_temperatures_are_refused_by_name() {
        let error = TrainConfig::built_in_default(&["rollout.generator_temperature=0.0".into()])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("rollout.generator_temperature = 0: must be a finite number > 0"),
            "{error}"
        );
    }

    #[test]
    fn the_copy_constraint_needs_the_direct_prompt() {
        TrainConfig::built_in_default(&["policy.generator_copy_constraint=true".into()]).unwrap();
        let error = TrainConfig::built_in_default(&[
            "policy.generator_copy_constraint=true".into(),
            "policy.prompt_style=\"reasoning\"".into(),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("policy.generator_copy_constraint") && error.contains("direct"),
            "{error}"
        );
    }

    #[test]
    fn the_model_is_a_path_or_a_section_with_its_compute_type() {
        let default = TrainConfig::built_in_default(&[]).unwrap();
        assert!(default.model.path.ends_with("models/pretrainzero-wiki-31m"));
        assert_eq!(default.model.dtype, ComputeDtype::F32);

        // `model=PATH` sets the path and keeps the type, in either order.
        for overrides in [
            ["model.dtype=bf16", "model=/somewhere/else"],
            ["model=/somewhere/else", "model.dtype=bf16"],
        ] {
            let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
            let config = TrainConfig::built_in_default(&overrides).unwrap();
            assert_eq!(
                config.model.path,
                PathBuf::from("/somewhere/else"),
                "{overrides:?}"
            );
            assert_eq!(config.model.dtype, ComputeDtype::Bf16, "{overrides:?}");
        }

        // A run folder's saved configuration reads back the same.
        let config = TrainConfig::built_in_default(&["model.dtype=bf16".into()]).unwrap();
        let saved = toml::to_string_pretty(&config).unwrap();
        assert_eq!(
            TrainConfig::from_toml(&saved, "saved", &[]).unwrap(),
            config
        );

        let error = TrainConfig::built_in_default(&["model.dtype=f16".into()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("invalid configuration"), "{error}");
    }
}
