//! `random-ntp`: cut each paragraph at random words and predict the next word.

use rand::rngs::StdRng;
use rand::Rng;

use super::span_policy::{next_word_task, ChosenSpans, SpanContext, SpanPolicy};
use crate::kernels::RewardStepBackend;

pub struct RandomNextWord;

impl<B: RewardStepBackend> SpanPolicy<B> for RandomNextWord {
    fn choose(
        &self,
        _context: &SpanContext<'_, B>,
        paragraphs: &[String],
        spans_per_paragraph: usize,
        rng: &mut StdRng,
    ) -> anyhow::Result<ChosenSpans> {
        let mut tasks = Vec::new();
        for (index, paragraph) in paragraphs.iter().enumerate() {
            let words = paragraph.split_whitespace().count();
            if words < 2 {
                continue;
            }
            tasks.extend(
                (0..spans_per_paragraph)
                    .filter_map(|_| next_word_task(index, paragraph, rng.random_range(1..words))),
            );
        }
        Ok(ChosenSpans {
            tasks,
            generator: None,
        })
    }
}
