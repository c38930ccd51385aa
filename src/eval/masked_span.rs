//! Held-out masked-span accuracy: hide a span chosen by a seeded rule, ask the model
//! with the predictor prompt, and score the last `\boxed{}` by exact match after the
//! normalisation of DESIGN.md §4.

use crate::data::split::{Split, SplitRule};
use crate::kernels::RewardStepBackend;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::ops::RangeInclusive;

use crate::data::{CorpusSpec, Paragraph};
use crate::eval::length_order::LengthOrder;
use crate::models::{Decoder, SamplingConfig, TextTokenizer};
use crate::policy::parse::last_braced;
use crate::policy::prompts::PromptTemplates;
use crate::policy::random_span::{random_word_span, MaskedParagraph};
use crate::reward::exact_match;
use crate::rollout::RolloutEngine;
use crate::train::span_log::SpanLogRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanChoice {
    /// 1–3 contiguous words, uniformly.
    Random,
    /// One capitalised word (not sentence-initial) or number.
    Entity,
    /// The spans a training run's policy chose: `--data` is the run's `spans.jsonl`.
    Logged,
}

impl SpanChoice {
    pub fn name(self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::Entity => "entity",
            Self::Logged => "logged",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptStyle {
    /// The answer starts right after the forced prefix `\boxed{`.
    Direct,
    /// The model reasons first and ends with `\boxed{...}`.
    Reasoning,
}

#[derive(Debug, Clone, Serialize)]
pub struct MaskedSpanItem {
    /// `article_id:paragraph_index`.
    pub id: String,
    pub span: SpanChoice,
    pub masked_paragraph: String,
    pub gold: String,
}

/// The masked-span tasks of a run's span log whose step lies in `steps` (next-word
/// tasks are left out), at most `limit`: the spans exactly as the predictor saw them.
pub fn logged_items(
    rows: &[SpanLogRow],
    steps: RangeInclusive<usize>,
    limit: usize,
) -> Vec<MaskedSpanItem> {
    rows.iter()
        .enumerate()
        .filter(|(_, row)| steps.contains(&row.step) && !row.span.next_word)
        .take(limit)
        .map(|(line, row)| MaskedSpanItem {
            id: format!("step-{}:line-{}", row.step, line + 1),
            span: SpanChoice::Logged,
            masked_paragraph: row.span.context.clone(),
            gold: row.span.gold.clone(),
        })
        .collect()
}

/// The first `limit` paragraphs of the corpus that admit a span under `choice`, each
/// with its span drawn from an RNG seeded by (seed, item id) — the same items for
/// every model and run.
pub fn build_items(
    corpus: &CorpusSpec,
    choice: SpanChoice,
    seed: u64,
    limit: usize,
    split: Option<(SplitRule, Split)>,
) -> anyhow::Result<Vec<MaskedSpanItem>> {
    let mut items = Vec::new();
    let mut paragraphs = corpus.open()?;
    for paragraph in paragraphs.by_ref() {
        if items.len() >= limit {
            break;
        }
        if let Some((rule, side)) = split {
            if rule.split_of(&paragraph.article_id) != side {
                continue;
            }
        }
        let id = format!("{}:{}", paragraph.article_id, paragraph.index);
        let mut rng = StdRng::seed_from_u64(seed ^ fnv(&id));
        let masked = match choice {
            SpanChoice::Random => random_word_span(&paragraph.text, 3, &mut rng),
            SpanChoice::Entity => entity_span(&paragraph, &mut rng),
            SpanChoice::Logged => anyhow::bail!("logged spans are read with `logged_items`"),
        };
        if let Some(MaskedParagraph { span, masked }) = masked {
            items.push(MaskedSpanItem {
                id,
                span: choice,
                masked_paragraph: masked,
                gold: span,
            });
        }
    }
    // Malformed input (invalid UTF-8, an unclosed `<doc>`) is skipped by the reader;
    // say so, as `data stats` and `train` do.
    if let Some(summary) = paragraphs.warnings().summary() {
        eprintln!("warning: {summary}");
    }
    Ok(items)
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A capitalised word that does not start a sentence, or a number.
fn entity_span(paragraph: &Paragraph, rng: &mut impl Rng) -> Option<MaskedParagraph> {
    let words: Vec<&str> = paragraph.text.split_whitespace().collect();
    let candidates: Vec<&str> = words
        .iter()
        .enumerate()
        .filter(|(i, _)| *i > 0 && !words[i - 1].ends_with(['.', '!', '?']))
        .map(|(_, w)| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit())
        })
        .filter(|w| {
            let n = paragraph.text.matches(*w).count();
            (1..=7).contains(&n)
        })
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let span = candidates[rng.random_range(0..candidates.len())].to_string();
    Some(MaskedParagraph {
        masked: paragraph.text.replace(&span, "[mask]"),
        span,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct ScoredItem {
    pub id: String,
    pub span: SpanChoice,
    pub prompt: String,
    pub response: String,
    pub extracted: Option<String>,
    pub gold: String,
    pub correct: bool,
    /// Mean log-probability per token of the teacher-forced answer `gold}` (after the
    /// templates' answer lead) following the direct predictor prompt (see
    /// `span_likelihood`); filled in by the caller.
    pub gold_loglik: Option<f64>,
}

/// The answer given most often (after trimming; `None` for no extracted answer) and
/// how many items gave it: a model that answers "the" to everything has high
/// exact match on spans that are "the" and learns nothing from the game.
pub fn most_frequent_answer(scored: &[ScoredItem]) -> Option<(String, usize)> {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for item in scored {
        if let Some(answer) = &item.extracted {
            *counts.entry(answer.trim()).or_default() += 1;
        }
    }
    // Ties go to the alphabetically first answer, so the report is reproducible.
    counts
        .into_iter()
        .fold(
            None,
            |best: Option<(&str, usize)>, (answer, n)| match best {
                Some((_, m)) if m >= n => best,
                _ => Some((answer, n)),
            },
        )
        .map(|(answer, n)| (answer.to_string(), n))
}

pub struct EvalSettings {
    pub style: PromptStyle,
    pub templates: PromptTemplates,
    pub sampling: SamplingConfig,
    pub max_new_tokens: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub case_insensitive: bool,
}

/// Generates and scores every item, in item order; `on_batch` is called with the number
/// done.
pub fn evaluate<B: RewardStepBackend>(
    model: &Decoder<B>,
    tokenizer: &TextTokenizer,
    eos_token_ids: &[u32],
    items: &[MaskedSpanItem],
    settings: &EvalSettings,
    device: &B::Device,
    mut on_batch: impl FnMut(usize),
) -> anyhow::Result<Vec<ScoredItem>> {
    let (template, stop_strings) = match settings.style {
        PromptStyle::Direct => (&settings.templates.predictor_direct, vec!["}".to_string()]),
        PromptStyle::Reasoning => (&settings.templates.predictor_reasoning, Vec::new()),
    };
    // Generation goes through the rollout engine (batching, per-batch seeds, decoding),
    // longest prompts first (see `length_order`); batches are fed one round at a time
    // only to report progress.
    let engine = RolloutEngine {
        model,
        tokenizer,
        eos_token_ids,
        sampling: settings.sampling.clone(),
        max_new_tokens: settings.max_new_tokens,
        batch_size: settings.batch_size.max(1),
        concurrent_batches: B::concurrent_pieces(),
        device,
    };
    let prompts: Vec<String> = items
        .iter()
        .map(|item| PromptTemplates::fill(template, &item.masked_paragraph))
        .collect();
    let prompt_ids = prompts
        .iter()
        .map(|p| tokenizer.encode(p, false))
        .collect::<Result<Vec<_>, _>>()?;
    let order = LengthOrder::longest_first(prompt_ids.iter().map(Vec::len));
    let mut responses = Vec::with_capacity(items.len());
    let mut batches_done = 0;
    for round in order.arrange(&prompt_ids).chunks(engine.round_len()) {
        let rollouts =
            engine.run_eval_round(round, &stop_strings, settings.seed, &mut batches_done)?;
        responses.extend(rollouts.into_iter().map(|rollout| rollout.response_text));
        on_batch(responses.len());
    }
    let responses = order.restore(responses);
    Ok(items
        .iter()
        .zip(prompts)
        .zip(responses)
        .map(|((item, prompt), response)| {
            let extracted = match settings.style {
                // The forced prefix `\boxed{` belongs to the answer.
                PromptStyle::Direct => last_braced(&format!("\\boxed{{{response}"), "boxed"),
                PromptStyle::Reasoning => last_braced(&response, "boxed"),
            };
            let correct = extracted
                .as_deref()
                .is_some_and(|answer| exact_match(answer, &item.gold, settings.case_insensitive));
            ScoredItem {
                id: item.id.clone(),
                span: item.span,
                prompt,
                response,
                extracted,
                gold: item.gold.clone(),
                correct,
                gold_loglik: None,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(extracted: Option<&str>) -> ScoredItem {
        ScoredItem {
            id: String::new(),
            span: SpanChoice::Random,
            prompt: String::new(),
            response: String::new(),
            extracted: extracted.map(str::to_string),
            gold: String::new(),
            correct: false,
            gold_loglik: None,
        }
    }

    #[test]
    fn most_frequent_answer_counts_trimmed_answers_and_breaks_ties_alphabetically() {
        let items = [
            scored(Some("the")),
            scored(Some(" the ")),
            scored(Some("of")),
            scored(None),
            scored(None),
            scored(None),
            scored(Some("Paris")),
        ];
        assert_eq!(most_frequent_answer(&items), Some(("the".to_string(), 2)));
        let tie = [scored(Some("b")), scored(Some("a"))];
        assert_eq!(most_frequent_answer(&tie), Some(("a".to_string(), 1)));
        assert_eq!(most_frequent_answer(&[scored(None)]), None);
    }
}
