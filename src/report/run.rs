//! Reading a training run folder back: `metrics.jsonl` (one `StepRecord` a line),
//! `examples.jsonl` (`{"step", "example"}`) and `train_config.toml`.
//!
//! Metrics are read as name → number maps rather than into `StepRecord`, so that a
//! report still renders runs written before a field was added; `null` (serde_json's
//! spelling of NaN) reads as a missing value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

pub const METRICS_FILE: &str = "metrics.jsonl";
pub const EXAMPLES_FILE: &str = "examples.jsonl";
pub const CONFIG_FILE: &str = "train_config.toml";

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsRow {
    pub step: usize,
    pub policy: Option<String>,
    pub values: BTreeMap<String, f64>,
}

impl MetricsRow {
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.get(key).copied().filter(|v| v.is_finite())
    }

    /// True when this step had generator rollouts, so the generator fields mean
    /// something (they are 0 for the fixed-rule baselines).
    pub fn has_generator(&self) -> bool {
        self.get("generator_rollouts").is_none_or(|n| n > 0.0)
    }

    /// True when the policy was updated, so the update fields (entropy, loss, grad
    /// norm, clip fractions) were measured rather than left at their defaults.
    pub fn has_update(&self) -> bool {
        self.get("update_skipped")
            .is_none_or(|skipped| skipped == 0.0)
    }
}

/// A paragraph with the chosen span and the predictor's answers (`train::step::Example`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExampleRecord {
    pub paragraph: String,
    pub context: String,
    pub gold: String,
    pub answers: Vec<Option<String>>,
}

#[derive(Debug, Deserialize)]
struct ExampleLine {
    step: usize,
    example: ExampleRecord,
}

/// Everything the report shows about one run.
#[derive(Debug, Clone)]
pub struct RunData {
    pub dir: PathBuf,
    pub metrics: Vec<MetricsRow>,
    /// (step, example), in file order.
    pub examples: Vec<(usize, ExampleRecord)>,
    /// `train_config.toml`, when present.
    pub config: Option<toml::Table>,
}

impl RunData {
    /// Reads `run_dir`; `metrics.jsonl` is required, the other two files are optional.
    pub fn load(run_dir: &Path) -> anyhow::Result<Self> {
        let metrics_path = run_dir.join(METRICS_FILE);
        if !metrics_path.is_file() {
            anyhow::bail!(
                "{}: not found; is {} a training run folder?",
                metrics_path.display(),
                run_dir.display()
            );
        }
        let metrics = read_metrics(&metrics_path)?;
        let examples_path = run_dir.join(EXAMPLES_FILE);
        let examples = if examples_path.is_file() {
            read_examples(&examples_path)?
        } else {
            Vec::new()
        };
        let config_path = run_dir.join(CONFIG_FILE);
        let config = if config_path.is_file() {
            let text = std::fs::read_to_string(&config_path)
                .with_context(|| format!("reading {}", config_path.display()))?;
            Some(
                text.parse::<toml::Table>()
                    .with_context(|| format!("{}: invalid TOML", config_path.display()))?,
            )
        } else {
            None
        };
        Ok(Self {
            dir: run_dir.to_path_buf(),
            metrics,
            examples,
            config,
        })
    }

    /// The run folder's name, for titles and legends.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.dir.display().to_string())
    }

    /// The span policy, from the metrics (or the config when no step was logged).
    pub fn policy(&self) -> Option<String> {
        self.metrics
            .iter()
            .find_map(|row| row.policy.clone())
            .or_else(|| self.config_value("policy.kind").map(|v| display_toml(&v)))
    }

    /// A config value by dotted key, e.g. `policy.case_insensitive`.
    pub fn config_value(&self, dotted_key: &str) -> Option<toml::Value> {
        let mut parts = dotted_key.split('.');
        let mut value = self.config.as_ref()?.get(parts.next()?)?;
        for part in parts {
            value = value.as_table()?.get(part)?;
        }
        Some(value.clone())
    }

    /// Whether answers are compared case-insensitively, as the run's reward did.
    pub fn case_insensitive(&self) -> bool {
        self.config_value("policy.case_insensitive")
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }
}

/// A TOML value as the report prints it: strings without quotes.
pub fn display_toml(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn read_lines(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

pub fn read_metrics(path: &Path) -> anyhow::Result<Vec<MetricsRow>> {
    let text = read_lines(path)?;
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row = parse_metrics_line(line)
            .with_context(|| format!("{} line {}", path.display(), index + 1))?;
        rows.push(row);
    }
    Ok(rows)
}

fn parse_metrics_line(line: &str) -> anyhow::Result<MetricsRow> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)?;
    let step = object
        .get("step")
        .and_then(|v| v.as_u64())
        .context("no integer \"step\" field")? as usize;
    let policy = object
        .get("policy")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let values = object
        .iter()
        .filter_map(|(key, value)| {
            let number = match value {
                serde_json::Value::Number(n) => n.as_f64()?,
                serde_json::Value::Bool(b) => f64::from(u8::from(*b)),
                _ => return None,
            };
            Some((key.clone(), number))
        })
        .collect();
    Ok(MetricsRow {
        step,
        policy,
        values,
    })
}

pub fn read_examples(path: &Path) -> anyhow::Result<Vec<(usize, ExampleRecord)>> {
    let text = read_lines(path)?;
    let mut examples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: ExampleLine = serde_json::from_str(line)
            .with_context(|| format!("{} line {}", path.display(), index + 1))?;
        examples.push((parsed.step, parsed.example));
    }
    Ok(examples)
}
