//! One rollout phase of the loop (DESIGN.md §1): span choice (the generator role
//! for `pretrainzero`, a fixed rule for the baselines), predictor rollouts, rewards
//! and group advantages, ending in the samples the update learns from.

use crate::kernels::RewardStepBackend;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::config::{PolicySection, PromptStyle, SpanPolicyKind, TrainConfig};
use super::game_diagnostics::{span_diagnostics, SpanDiagnostics};
use crate::advantage::{device_generator_rewards, device_group_advantages};
use crate::models::{Decoder, FinishReason, SamplingConfig, TextTokenizer};
use crate::policy::entropy_ntp::EntropyNextWord;
use crate::policy::parse::last_braced;
use crate::policy::pretrainzero::GeneratorSpans;
use crate::policy::prompts::PromptTemplates;
use crate::policy::random_ntp::RandomNextWord;
use crate::policy::random_span::RandomSpans;
use crate::policy::span_policy::{ChosenSpans, SpanContext, SpanPolicy};
use crate::reward::{exact_match, predictor_reward};
use crate::rollout::{Rollout, RolloutEngine};
use crate::update::PolicySample;

/// What the rollout phase measured (the rollout half of DESIGN.md §8).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RolloutMetrics {
    pub paragraphs: usize,
    pub generator_rollouts: usize,
    pub valid_mask_fraction: f64,
    pub generator_reward_mean: f64,
    pub predictor_rollouts: usize,
    /// Mean predictor reward = accuracy on the chosen spans ("verification scaling").
    pub predictor_accuracy: f64,
    pub reward_mean: f64,
    pub mask_words_mean: f64,
    pub mask_tokens_mean: f64,
    pub zero_variance_fraction: f64,
    /// Groups (predictor groups, and generator groups for `pretrainzero`) whose
    /// rewards are not all equal: the groups the update learns from.
    pub signal_groups: usize,
    pub predictor_all_zero_fraction: f64,
    pub predictor_all_one_fraction: f64,
    pub response_length_mean: f64,
    pub response_length_max: usize,
    pub response_clipped_fraction: f64,
    /// Generated tokens of all rollouts.
    pub rollout_tokens: usize,
    /// Prompt tokens of the step's distinct prompts, each once and unpadded: what the
    /// rollout prefills when each group's answers sit in one generation batch
    /// (generation runs a batch's shared prompt once, padded to the batch's longest).
    pub prefill_tokens: usize,
    pub rollout_seconds: f64,
    /// Extra batches of paragraphs drawn by dynamic sampling. With extra draws,
    /// `paragraphs`, `signal_groups`, `rollout_tokens`, `prefill_tokens` and
    /// `rollout_seconds` count all draws, and every rate and mean is that of the first
    /// draw (comparable with steps and runs without dynamic sampling).
    pub extra_draws: usize,
    /// Diversity and difficulty of this step's spans (the generator's valid masks
    /// for `pretrainzero`).
    #[serde(flatten)]
    pub spans: SpanDiagnostics,
}

/// A paragraph with a chosen span and the predictor's answers, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub paragraph: String,
    pub context: String,
    pub gold: String,
    pub answers: Vec<Option<String>>,
}

/// One span the step's policy chose and how the predictor group did on it; a run logs
/// every one (`spans.jsonl`), so that the spans can be scored again later, e.g. by the
/// frozen base model to see whether the generator's choices get harder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SpanRecord {
    /// The text shown to the predictor (masked paragraph, or a prefix for next-word tasks).
    pub context: String,
    pub gold: String,
    pub next_word: bool,
    /// Predictor answers that matched the gold span, of `answers`.
    pub correct: usize,
    pub answers: usize,
    /// The predictor's answers (`None`: no `\boxed{}` in the response). Empty in logs
    /// written before they were recorded.
    #[serde(default)]
    pub predicted: Vec<Option<String>>,
}

pub struct StepRollouts {
    pub samples: Vec<PolicySample>,
    pub metrics: RolloutMetrics,
    pub examples: Vec<Example>,
    /// The first draw's spans (those the metrics describe).
    pub spans: Vec<SpanRecord>,
}

impl StepRollouts {
    /// One step's rollouts from the draws of dynamic sampling (one draw without it):
    /// every draw's samples; the first draw's metrics and examples, with the counts
    /// summed (see [`RolloutMetrics::extra_draws`]).
    pub fn from_draws(draws: Vec<StepRollouts>) -> Self {
        let mut draws = draws.into_iter();
        let mut step = draws
            .next()
            .expect("dynamic sampling makes at least one draw");
        for draw in draws {
            step.metrics.extra_draws += 1;
            step.metrics.paragraphs += draw.metrics.paragraphs;
            step.metrics.signal_groups += draw.metrics.signal_groups;
            step.metrics.rollout_tokens += draw.metrics.rollout_tokens;
            step.metrics.prefill_tokens += draw.metrics.prefill_tokens;
            step.metrics.rollout_seconds += draw.metrics.rollout_seconds;
            step.samples.extend(draw.samples);
        }
        step
    }
}

impl StepRollouts {
    /// One draw's rollouts from the parts the replicas of a data-parallel run rolled
    /// out on their shares of the paragraphs, in replica order: every sample, span and
    /// count; every rate and mean over all parts (weighted by what it is a rate of);
    /// the span diagnostics of all spans; the first part's examples. The parts ran at
    /// the same time, so the rollout took the longest part's time. One part is
    /// returned as it is.
    pub fn from_replicas(parts: Vec<StepRollouts>) -> Self {
        if parts.len() == 1 {
            return parts.into_iter().next().expect("one part");
        }
        let answers_per_span = parts
            .iter()
            .map(|p| {
                p.metrics
                    .spans
                    .predictor_accuracy_histogram
                    .len()
                    .saturating_sub(1)
            })
            .max()
            .unwrap_or(0)
            .max(1);
        let metrics: Vec<&RolloutMetrics> = parts.iter().map(|p| &p.metrics).collect();
        // Weighted mean of a rate over the parts.
        let weighted = |value: fn(&RolloutMetrics) -> f64,
                        weight: &dyn Fn(&RolloutMetrics) -> f64| {
            let total: f64 = metrics.iter().map(|m| weight(m)).sum();
            if total == 0.0 {
                0.0
            } else {
                metrics.iter().map(|m| value(m) * weight(m)).sum::<f64>() / total
            }
        };
        let tasks = |m: &RolloutMetrics| (m.predictor_rollouts / answers_per_span) as f64;
        let rollouts = |m: &RolloutMetrics| (m.predictor_rollouts + m.generator_rollouts) as f64;
        let paragraphs = |m: &RolloutMetrics| m.paragraphs as f64;
        let generator = |m: &RolloutMetrics| m.generator_rollouts as f64;
        let predictor = |m: &RolloutMetrics| m.predictor_rollouts as f64;
        // Groups: one per task, and one per paragraph where a generator rolled out.
        let groups = |m: &RolloutMetrics| {
            tasks(m)
                + if m.generator_rollouts > 0 {
                    m.paragraphs as f64
                } else {
                    0.0
                }
        };
        let mut merged = RolloutMetrics {
            paragraphs: metrics.iter().map(|m| m.paragraphs).sum(),
            generator_rollouts: metrics.iter().map(|m| m.generator_rollouts).sum(),
            valid_mask_fraction: weighted(|m| m.valid_mask_fraction, &paragraphs),
            generator_reward_mean: weighted(|m| m.generator_reward_mean, &generator),
            predictor_rollouts: metrics.iter().map(|m| m.predictor_rollouts).sum(),
            predictor_accuracy: weighted(|m| m.predictor_accuracy, &predictor),
            reward_mean: weighted(|m| m.reward_mean, &rollouts),
            mask_words_mean: weighted(|m| m.mask_words_mean, &tasks),
            mask_tokens_mean: weighted(|m| m.mask_tokens_mean, &tasks),
            zero_variance_fraction: weighted(|m| m.zero_variance_fraction, &groups),
            signal_groups: metrics.iter().map(|m| m.signal_groups).sum(),
            predictor_all_zero_fraction: weighted(|m| m.predictor_all_zero_fraction, &tasks),
            predictor_all_one_fraction: weighted(|m| m.predictor_all_one_fraction, &tasks),
            response_length_mean: weighted(|m| m.response_length_mean, &rollouts),
            response_length_max: metrics
                .iter()
                .map(|m| m.response_length_max)
                .max()
                .unwrap_or(0),
            response_clipped_fraction: weighted(|m| m.response_clipped_fraction, &rollouts),
            rollout_tokens: metrics.iter().map(|m| m.rollout_tokens).sum(),
            prefill_tokens: metrics.iter().map(|m| m.prefill_tokens).sum(),
            rollout_seconds: metrics
                .iter()
                .map(|m| m.rollout_seconds)
                .fold(0.0, f64::max),
            extra_draws: 0,
            spans: SpanDiagnostics::default(),
        };
        let mut parts = parts.into_iter();
        let mut step = parts.next().expect("at least one part");
        for part in parts {
            step.samples.extend(part.samples);
            step.spans.extend(part.spans);
        }
        merged.spans = records_diagnostics(&step.spans, answers_per_span);
        step.metrics = merged;
        step
    }
}

/// The span diagnostics of a step's span records, each answered `answers_per_span` times:
/// one place that reads the records, for a replica's rollouts and for their merge.
fn records_diagnostics(records: &[SpanRecord], answers_per_span: usize) -> SpanDiagnostics {
    let golds: Vec<&str> = records.iter().map(|r| r.gold.as_str()).collect();
    let correct: Vec<usize> = records.iter().map(|r| r.correct).collect();
    let predicted: Vec<Option<&str>> = records
        .iter()
        .flat_map(|r| r.predicted.iter().map(|a| a.as_deref()))
        .collect();
    span_diagnostics(&golds, &correct, answers_per_span, &predicted)
}

fn direct_prefix(style: PromptStyle, command: &str, response: &str) -> String {
    match style {
        // The prompt ends with the forced prefix; it belongs to the answer.
        PromptStyle::Direct => format!("\\{command}{{{response}"),
        PromptStyle::Reasoning => response.to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn collect_rollouts<B: RewardStepBackend>(
    model: &Decoder<B>,
    tokenizer: &TextTokenizer,
    eos_token_ids: &[u32],
    paragraphs: &[String],
    config: &TrainConfig,
    kind: SpanPolicyKind,
    seed: u64,
    device: &B::Device,
) -> anyhow::Result<StepRollouts> {
    let started = Instant::now();
    let policy = &config.policy;
    let style = policy.prompt_style;
    let templates = &policy.templates;
    let stop: Vec<String> = match style {
        PromptStyle::Direct => vec!["}".to_string()],
        PromptStyle::Reasoning => Vec::new(),
    };
    // One engine per role: they differ only in the sampling temperature.
    let engine_at = |temperature: Option<f32>| RolloutEngine {
        model,
        tokenizer,
        eos_token_ids,
        sampling: SamplingConfig {
            temperature: temperature.unwrap_or(config.rollout.temperature),
            top_p: config.rollout.top_p,
            top_k: 0,
        },
        max_new_tokens: config.rollout.max_response_tokens,
        batch_size: config.rollout.generation_batch_size,
        concurrent_batches: B::concurrent_pieces(),
        device,
    };
    let generator_engine = engine_at(config.rollout.generator_temperature);
    let predictor_engine = engine_at(config.rollout.predictor_temperature);
    let mut rng = StdRng::seed_from_u64(seed);
    let g_m = policy.masks_per_paragraph;
    let g_p = policy.answers_per_mask;
    let mut metrics = RolloutMetrics {
        paragraphs: paragraphs.len(),
        ..RolloutMetrics::default()
    };

    // 1. Span choice by the step's policy; a trained generator brings its rollouts.
    let span_context = SpanContext {
        model,
        tokenizer,
        generator: &generator_engine,
        device,
        seed,
    };
    let ChosenSpans { tasks, generator } = span_policy_for::<B>(kind, policy, &stop).choose(
        &span_context,
        paragraphs,
        g_m,
        &mut rng,
    )?;
    let (generator_rollouts, task_of) = match generator {
        Some(generator) => (generator.rollouts, generator.task_of),
        None => (Vec::new(), Vec::new()),
    };
    metrics.generator_rollouts = generator_rollouts.len();
    metrics.valid_mask_fraction = tasks.len() as f64 / (paragraphs.len() * g_m).max(1) as f64;

    // 2. Predictor rollouts: G_p answers per task.
    let mut predictor_prompts = Vec::with_capacity(tasks.len() * g_p);
    for task in &tasks {
        let template = match (task.next_word, style) {
            (false, PromptStyle::Direct) => &templates.predictor_direct,
            (false, PromptStyle::Reasoning) => &templates.predictor_reasoning,
            (true, PromptStyle::Direct) => &templates.next_word_direct,
            (true, PromptStyle::Reasoning) => &templates.next_word_reasoning,
        };
        let ids = tokenizer.encode(&PromptTemplates::fill(template, &task.context), false)?;
        predictor_prompts.extend(std::iter::repeat_n(ids, g_p));
    }
    let predictor_rollouts = predictor_engine.run(&predictor_prompts, &stop, seed ^ 0x9e3)?;

    // 3. Rewards.
    let answers: Vec<Option<String>> = predictor_rollouts
        .iter()
        .map(|r| last_braced(&direct_prefix(style, "boxed", &r.response_text), "boxed"))
        .collect();
    let predictor_rewards: Vec<f32> = answers
        .iter()
        .enumerate()
        .map(|(i, answer)| {
            let gold = &tasks[i / g_p].gold;
            predictor_reward(
                answer
                    .as_deref()
                    .is_some_and(|a| exact_match(a, gold, policy.case_insensitive)),
            )
        })
        .collect();
    let task_accuracy: Vec<f32> = predictor_rewards
        .chunks(g_p)
        .map(|c| c.iter().sum::<f32>() / g_p as f32)
        .collect();
    // Per mask on the device; an invalid mask (no predictor task) earns 0.
    let task_generator_rewards = device_generator_rewards::<B>(&predictor_rewards, g_p, device);
    let generator_rewards: Vec<f32> = task_of
        .iter()
        .map(|t| t.map_or(0.0, |t| task_generator_rewards[t]))
        .collect();

    // 4. Advantages and samples; groups with equal rewards carry no signal.
    let predictor_adv = device_group_advantages::<B>(
        &predictor_rewards,
        g_p,
        config.optim.advantage_scale,
        device,
    );
    let mut samples = Vec::new();
    for (i, rollout) in predictor_rollouts.iter().enumerate() {
        if predictor_adv.keep[i] {
            samples.push(PolicySample {
                prompt_ids: rollout.prompt_ids.clone(),
                response_ids: rollout.response_ids.clone(),
                advantage: predictor_adv.advantages[i],
            });
        }
    }
    let mut groups = predictor_adv.groups;
    let mut zero_variance = predictor_adv.zero_variance_groups;
    if !generator_rollouts.is_empty() {
        let generator_adv = device_group_advantages::<B>(
            &generator_rewards,
            g_m,
            config.optim.advantage_scale,
            device,
        );
        for (i, rollout) in generator_rollouts.iter().enumerate() {
            if generator_adv.keep[i] {
                samples.push(PolicySample {
                    prompt_ids: rollout.prompt_ids.clone(),
                    response_ids: rollout.response_ids.clone(),
                    advantage: generator_adv.advantages[i],
                });
            }
        }
        groups += generator_adv.groups;
        zero_variance += generator_adv.zero_variance_groups;
        metrics.generator_reward_mean = mean(&generator_rewards);
    }

    // 5. Metrics.
    metrics.predictor_rollouts = predictor_rollouts.len();
    metrics.predictor_accuracy = mean(&predictor_rewards);
    let all_rewards: Vec<f32> = predictor_rewards
        .iter()
        .chain(&generator_rewards)
        .copied()
        .collect();
    metrics.reward_mean = mean(&all_rewards);
    metrics.zero_variance_fraction = zero_variance as f64 / groups.max(1) as f64;
    metrics.signal_groups = groups - zero_variance;
    metrics.predictor_all_zero_fraction = task_accuracy.iter().filter(|&&a| a == 0.0).count()
        as f64
        / task_accuracy.len().max(1) as f64;
    metrics.predictor_all_one_fraction = task_accuracy.iter().filter(|&&a| a == 1.0).count() as f64
        / task_accuracy.len().max(1) as f64;
    if !tasks.is_empty() {
        metrics.mask_words_mean = tasks
            .iter()
            .map(|t| t.gold.split_whitespace().count())
            .sum::<usize>() as f64
            / tasks.len() as f64;
        let mut token_count = 0;
        for task in &tasks {
            token_count += tokenizer.encode(&task.gold, false)?.len();
        }
        metrics.mask_tokens_mean = token_count as f64 / tasks.len() as f64;
    }
    let all_rollouts: Vec<&Rollout> = generator_rollouts
        .iter()
        .chain(&predictor_rollouts)
        .collect();
    metrics.rollout_tokens = all_rollouts.iter().map(|r| r.response_ids.len()).sum();
    let distinct_prompts: std::collections::HashSet<&[u32]> = all_rollouts
        .iter()
        .map(|r| r.prompt_ids.as_slice())
        .collect();
    metrics.prefill_tokens = distinct_prompts.iter().map(|p| p.len()).sum();
    metrics.response_length_mean = metrics.rollout_tokens as f64 / all_rollouts.len().max(1) as f64;
    metrics.response_length_max = all_rollouts
        .iter()
        .map(|r| r.response_ids.len())
        .max()
        .unwrap_or(0);
    metrics.response_clipped_fraction = all_rollouts
        .iter()
        .filter(|r| r.finish_reason == FinishReason::Length)
        .count() as f64
        / all_rollouts.len().max(1) as f64;
    let correct_answers: Vec<usize> = predictor_rewards
        .chunks(g_p)
        .map(|c| c.iter().filter(|&&r| r > 0.0).count())
        .collect();
    let span_records: Vec<SpanRecord> = tasks
        .iter()
        .zip(&correct_answers)
        .enumerate()
        .map(|(t, (task, &correct))| SpanRecord {
            context: task.context.clone(),
            gold: task.gold.clone(),
            next_word: task.next_word,
            correct,
            answers: g_p,
            predicted: answers[t * g_p..(t + 1) * g_p].to_vec(),
        })
        .collect();
    metrics.spans = records_diagnostics(&span_records, g_p);
    metrics.rollout_seconds = started.elapsed().as_secs_f64();
    let examples = tasks
        .iter()
        .enumerate()
        .take(2)
        .map(|(t, task)| Example {
            paragraph: paragraphs[task.paragraph].clone(),
            context: task.context.clone(),
            gold: task.gold.clone(),
            answers: answers[t * g_p..(t + 1) * g_p].to_vec(),
        })
        .collect();
    Ok(StepRollouts {
        samples,
        metrics,
        examples,
        spans: span_records,
    })
}

/// The span policy of `kind`, configured from the policy section.
fn span_policy_for<B: RewardStepBackend>(
    kind: SpanPolicyKind,
    policy: &PolicySection,
    stop: &[String],
) -> Box<dyn SpanPolicy<B>> {
    match kind {
        SpanPolicyKind::Pretrainzero => {
            let (template, forced_prefix) = match policy.prompt_style {
                PromptStyle::Direct => (
                    &policy.templates.generator_direct,
                    Some("\\mask{".to_string()),
                ),
                PromptStyle::Reasoning => (&policy.templates.generator_reasoning, None),
            };
            Box::new(GeneratorSpans {
                template: template.clone(),
                forced_prefix,
                stop: stop.to_vec(),
                rules: policy.span_rules.clone(),
                copy_constraint: policy.generator_copy_constraint,
            })
        }
        SpanPolicyKind::RandomSpan => Box::new(RandomSpans {
            max_words: policy.random_span_max_words,
        }),
        SpanPolicyKind::RandomNtp => Box::new(RandomNextWord),
        SpanPolicyKind::EntropyNtp => Box::new(EntropyNextWord {
            top_fraction: policy.entropy_top_fraction,
        }),
    }
}

fn mean(values: &[f32]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica's part of one draw: `spans` as (gold, correct answers, answers), with
    /// two predictor answers per span.
    fn part(
        paragraphs: usize,
        predictor_accuracy: f64,
        spans: &[(&str, usize, [Option<&str>; 2])],
    ) -> StepRollouts {
        let records: Vec<SpanRecord> = spans
            .iter()
            .map(|(gold, correct, answers)| SpanRecord {
                context: format!("a paragraph where [mask] was {gold}"),
                gold: gold.to_string(),
                next_word: false,
                correct: *correct,
                answers: 2,
                predicted: answers.iter().map(|a| a.map(str::to_string)).collect(),
            })
            .collect();
        StepRollouts {
            samples: Vec::new(),
            metrics: RolloutMetrics {
                paragraphs,
                generator_rollouts: 2 * paragraphs,
                predictor_rollouts: 2 * spans.len(),
                predictor_accuracy,
                spans: SpanDiagnostics {
                    predictor_accuracy_histogram: vec![0; 3],
                    ..SpanDiagnostics::default()
                },
                ..RolloutMetrics::default()
            },
            examples: Vec::new(),
            spans: records,
        }
    }

    #[test]
    fn replica_parts_merge_into_one_step() {
        let first = part(
            2,
            0.5,
            &[
                ("the city", 1, [Some("the city"), Some("first")]),
                ("river", 0, [Some("first"), None]),
            ],
        );
        let second = part(1, 1.0, &[("first", 2, [Some("first"), Some("first")])]);
        let merged = StepRollouts::from_replicas(vec![first, second]);

        assert_eq!(
            merged.spans.len(),
            3,
            "every replica's span records are kept"
        );
        assert_eq!(merged.metrics.paragraphs, 3);
        assert_eq!(merged.metrics.predictor_rollouts, 6);
        // Accuracy weighted by predictor rollouts: (0.5 * 4 + 1.0 * 2) / 6.
        assert!((merged.metrics.predictor_accuracy - 2.0 / 3.0).abs() < 1e-12);
        let spans = &merged.metrics.spans;
        // Answers of both replicas: `first` is 4 of the 6 (the unanswered one counts).
        assert_eq!(spans.top_answer, "first");
        assert!((spans.top_answer_share - 4.0 / 6.0).abs() < 1e-12);
        // Correct answers 1, 0 and 2 of 2.
        assert_eq!(spans.predictor_accuracy_histogram, vec![1, 1, 1]);
        // First words `the`, `river`, `first`: a three-way tie, the alphabetically first.
        assert_eq!(spans.top_first_word, "first");
        assert!((spans.top_first_word_share - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(spans.distinct_span_fraction, 1.0);
    }
}
