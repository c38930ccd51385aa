//! The run configuration: every default of DESIGN.md §1–6 is a key here. Read from a
//! TOML file (presets in `configs/`), then `--set section.key=value` overrides.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::policy::prompts::PromptTemplates;
use crate::policy::span_rules::SpanRules;
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
    /// HF model folder (with tokenizer.json) to start from.
    pub model: PathBuf,
    pub seed: u64,
    pub data: DataSection,
    pub policy: PolicySection,
    pub rollout: RolloutSection,
    pub optim: OptimSection,
    pub checkpoint: CheckpointSection,
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
    pub templates: PromptTemplates,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutSection {
    pub paragraphs_per_step: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub max_prompt_tokens: usize,
    pub max_response_tokens: usize,
    /// Sequences generated together.
    pub generation_batch_size: usize,
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
            prompt_style: PromptStyle::Reasoning,
            masks_per_paragraph: 8,
            answers_per_mask: 8,
            random_span_max_words: 3,
            entropy_top_fraction: 0.2,
            case_insensitive: false,
            span_rules: SpanRules::default(),
            templates: PromptTemplates::default(),
        }
    }
}

impl Default for RolloutSection {
    fn default() -> Self {
        Self {
            paragraphs_per_step: 32,
            temperature: 1.0,
            top_p: 1.0,
            max_prompt_tokens: 1536,
            max_response_tokens: 4096,
            generation_batch_size: 64,
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
    /// TOML syntax; bare words are taken as strings). Relative paths in the file are
    /// resolved against the current directory.
    pub fn load(path: &Path, overrides: &[String]) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read config", path.display()))?;
        let mut value: toml::Table =
            toml::from_str(&text).with_context(|| format!("{}: invalid TOML", path.display()))?;
        for assignment in overrides {
            apply_override(&mut value, assignment)
                .with_context(|| format!("--set {assignment}"))?;
        }
        let config: TrainConfig = toml::Value::Table(value)
            .try_into()
            .with_context(|| format!("{}: invalid configuration", path.display()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        let positive = [
            (
                "policy.masks_per_paragraph",
                self.policy.masks_per_paragraph,
            ),
            ("policy.answers_per_mask", self.policy.answers_per_mask),
            (
                "rollout.paragraphs_per_step",
                self.rollout.paragraphs_per_step,
            ),
            (
                "rollout.max_response_tokens",
                self.rollout.max_response_tokens,
            ),
            (
                "rollout.generation_batch_size",
                self.rollout.generation_batch_size,
            ),
            ("optim.ppo_mini_batches", self.optim.ppo_mini_batches),
            ("optim.micro_batch_size", self.optim.micro_batch_size),
        ];
        for (key, value) in positive {
            if value == 0 {
                anyhow::bail!("{key} must be at least 1");
            }
        }
        if !(self.rollout.temperature > 0.0) {
            anyhow::bail!("rollout.temperature must be > 0 (RL needs sampling)");
        }
        if !(0.0..=1.0).contains(&self.policy.entropy_top_fraction)
            || self.policy.entropy_top_fraction == 0.0
        {
            anyhow::bail!("policy.entropy_top_fraction must be in (0, 1]");
        }
        Ok(())
    }
}

fn apply_override(table: &mut toml::Table, assignment: &str) -> anyhow::Result<()> {
    let (key, raw) = assignment.split_once('=').context("expected key=value")?;
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
