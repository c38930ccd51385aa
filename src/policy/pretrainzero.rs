//! `pretrainzero`: the model itself chooses the span. The generator role reads each
//! paragraph `G_m` times and names a span as `\mask{...}`; each valid response becomes
//! a prediction task, and the rollouts themselves are trained on the generator reward.

use rand::rngs::StdRng;

use super::copy_constraint::{ParagraphCopy, TokenTexts};
use super::prompts::PromptTemplates;
use super::span_policy::{ChosenSpans, GeneratorRollouts, PredictionTask, SpanContext, SpanPolicy};
use super::span_rules::SpanRules;
use crate::kernels::RewardStepBackend;
use crate::models::TokenConstraint;

pub struct GeneratorSpans {
    /// The generator prompt (direct or reasoning variant).
    pub template: String,
    /// The forced prefix the direct prompt ends with (`\mask{`), which belongs to the
    /// response when it is parsed; `None` for the reasoning prompt.
    pub forced_prefix: Option<String>,
    /// Strings that end a generation.
    pub stop: Vec<String>,
    pub rules: SpanRules,
    /// Sample only spans copied from the paragraph (see `copy_constraint`).
    pub copy_constraint: bool,
}

impl<B: RewardStepBackend> SpanPolicy<B> for GeneratorSpans {
    fn choose(
        &self,
        context: &SpanContext<'_, B>,
        paragraphs: &[String],
        spans_per_paragraph: usize,
        _rng: &mut StdRng,
    ) -> anyhow::Result<ChosenSpans> {
        let mut prompts = Vec::with_capacity(paragraphs.len() * spans_per_paragraph);
        for paragraph in paragraphs {
            let ids = context
                .tokenizer
                .encode(&PromptTemplates::fill(&self.template, paragraph), false)?;
            prompts.extend(std::iter::repeat_n(ids, spans_per_paragraph));
        }
        let token_texts = if self.copy_constraint {
            Some(TokenTexts::new(
                context.tokenizer,
                context.model.vocab_size(),
            )?)
        } else {
            None
        };
        let copy = token_texts.as_ref().map(|tokens| ParagraphCopy {
            tokens,
            paragraphs: paragraphs
                .iter()
                .flat_map(|p| std::iter::repeat_n(p.as_str(), spans_per_paragraph))
                .collect(),
            content_only: self.rules.reject_stop_word_spans,
            content_start: self.rules.reject_stop_word_starts,
        });
        let rollouts = context.generator.run_constrained(
            &prompts,
            &self.stop,
            context.seed ^ 0x6e6,
            copy.as_ref().map(|c| c as &(dyn TokenConstraint + Sync)),
        )?;
        let mut tasks = Vec::new();
        let mut task_of = Vec::with_capacity(rollouts.len());
        for (i, rollout) in rollouts.iter().enumerate() {
            let paragraph = i / spans_per_paragraph;
            let response = match &self.forced_prefix {
                Some(prefix) => format!("{prefix}{}", rollout.response_text),
                None => rollout.response_text.clone(),
            };
            task_of.push(
                match self
                    .rules
                    .mask_from_response(&paragraphs[paragraph], &response)
                {
                    Ok(mask) => {
                        tasks.push(PredictionTask {
                            paragraph,
                            context: mask.masked,
                            gold: mask.span,
                            next_word: false,
                        });
                        Some(tasks.len() - 1)
                    }
                    Err(_) => None,
                },
            );
        }
        Ok(ChosenSpans {
            tasks,
            generator: Some(GeneratorRollouts { rollouts, task_of }),
        })
    }
}
