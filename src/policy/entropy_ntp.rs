//! `entropy-ntp` (RPT-style): cut before words whose first token is among the
//! `top_fraction` highest-entropy positions of the paragraph under the current model,
//! and predict the next word.

use rand::rngs::StdRng;
use rand::Rng;

use super::span_policy::{next_word_task, ChosenSpans, PredictionTask, SpanContext, SpanPolicy};
use crate::kernels::RewardStepBackend;
use crate::update::token_logprobs::{response_token_scores, ResponseBatch};

pub struct EntropyNextWord {
    pub top_fraction: f64,
}

impl<B: RewardStepBackend> SpanPolicy<B> for EntropyNextWord {
    fn choose(
        &self,
        context: &SpanContext<'_, B>,
        paragraphs: &[String],
        spans_per_paragraph: usize,
        rng: &mut StdRng,
    ) -> anyhow::Result<ChosenSpans> {
        let mut tasks = Vec::new();
        for (index, paragraph) in paragraphs.iter().enumerate() {
            tasks.extend(self.paragraph_tasks(
                context,
                index,
                paragraph,
                spans_per_paragraph,
                rng,
            )?);
        }
        Ok(ChosenSpans {
            tasks,
            generator: None,
        })
    }
}

impl EntropyNextWord {
    fn paragraph_tasks<B: RewardStepBackend>(
        &self,
        context: &SpanContext<'_, B>,
        paragraph_index: usize,
        paragraph: &str,
        count: usize,
        rng: &mut StdRng,
    ) -> anyhow::Result<Vec<PredictionTask>> {
        let words: Vec<&str> = paragraph.split_whitespace().collect();
        if words.len() < 2 {
            return Ok(Vec::new());
        }
        // Token ids word by word, so every word start has a known token position.
        let mut ids = Vec::new();
        let mut word_start_token = Vec::with_capacity(words.len());
        for (i, word) in words.iter().enumerate() {
            word_start_token.push(ids.len());
            let piece = if i == 0 {
                word.to_string()
            } else {
                format!(" {word}")
            };
            ids.extend(context.tokenizer.encode(&piece, false)?);
        }
        // The entropy of the distribution that predicts token t sits at position t − 1.
        let batch = ResponseBatch::<B>::new(&[(&ids[..1], &ids[1..])], context.device);
        let (_, entropy) = response_token_scores(
            context.model,
            &batch,
            crate::kernels::RowChunking::default(),
        );
        let entropy: Vec<f32> = entropy
            .into_data()
            .convert::<f32>()
            .into_vec()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut candidates: Vec<(f32, usize)> = (1..words.len())
            .map(|w| (entropy[word_start_token[w] - 1], w))
            .collect();
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        let keep = ((candidates.len() as f64 * self.top_fraction).ceil() as usize).max(1);
        candidates.truncate(keep);
        Ok((0..count)
            .filter_map(|_| {
                let (_, word) = candidates[rng.random_range(0..candidates.len())];
                next_word_task(paragraph_index, paragraph, word)
            })
            .collect())
    }
}
