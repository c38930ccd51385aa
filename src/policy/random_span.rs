//! Uniformly random word spans: the `random-span` policy ("Random RLPT"), also used
//! for the cold-start task examples of continued pretraining.

use rand::rngs::StdRng;
use rand::Rng;

use super::span_policy::{ChosenSpans, PredictionTask, SpanContext, SpanPolicy};
use crate::kernels::RewardStepBackend;

/// `random-span`: `G_m` uniformly random spans of `1..=max_words` words per paragraph.
pub struct RandomSpans {
    pub max_words: usize,
}

impl<B: RewardStepBackend> SpanPolicy<B> for RandomSpans {
    fn choose(
        &self,
        _context: &SpanContext<'_, B>,
        paragraphs: &[String],
        spans_per_paragraph: usize,
        rng: &mut StdRng,
    ) -> anyhow::Result<ChosenSpans> {
        let mut tasks = Vec::new();
        for (index, paragraph) in paragraphs.iter().enumerate() {
            tasks.extend(
                (0..spans_per_paragraph)
                    .filter_map(|_| random_word_span(paragraph, self.max_words, rng))
                    .map(|m| PredictionTask {
                        paragraph: index,
                        context: m.masked,
                        gold: m.span,
                        next_word: false,
                    }),
            );
        }
        Ok(ChosenSpans {
            tasks,
            generator: None,
        })
    }
}

/// A span to hide and the paragraph with it masked.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedParagraph {
    pub span: String,
    pub masked: String,
}

/// Picks `1..=max_words` contiguous words (edge punctuation stripped) and replaces
/// every occurrence by `[mask]`. `None` when no valid span is found in a few tries
/// (e.g. the span occurs 8 times or more, DESIGN.md §3).
pub fn random_word_span(
    paragraph: &str,
    max_words: usize,
    rng: &mut impl Rng,
) -> Option<MaskedParagraph> {
    let words: Vec<&str> = paragraph.split_whitespace().collect();
    if words.len() < 2 {
        return None;
    }
    for _ in 0..8 {
        let len = rng.random_range(1..=max_words.max(1)).min(words.len() - 1);
        let start = rng.random_range(0..=words.len() - len);
        let span = words[start..start + len]
            .join(" ")
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_string();
        if span.is_empty() {
            continue;
        }
        let occurrences = paragraph.matches(span.as_str()).count();
        if occurrences == 0 || occurrences > 7 {
            continue;
        }
        return Some(MaskedParagraph {
            masked: paragraph.replace(span.as_str(), "[mask]"),
            span,
        });
    }
    None
}
