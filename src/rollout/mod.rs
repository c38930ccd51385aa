//! Rollout: batched generation on the device for many prompts, returning tokens,
//! text and per-token log-probs (verl's "rollout" role).

use burn::prelude::Backend;

use crate::models::{
    generate_constrained, Decoder, FinishReason, GenerationConfig, SamplingConfig, TextTokenizer,
    TokenConstraint,
};

/// One sampled response.
#[derive(Debug, Clone)]
pub struct Rollout {
    pub prompt_ids: Vec<u32>,
    pub response_ids: Vec<u32>,
    /// Decoded response (special tokens skipped).
    pub response_text: String,
    pub logprobs: Vec<f32>,
    pub finish_reason: FinishReason,
}

pub struct RolloutEngine<'a, B: Backend> {
    pub model: &'a Decoder<B>,
    pub tokenizer: &'a TextTokenizer,
    pub eos_token_ids: &'a [u32],
    pub sampling: SamplingConfig,
    pub max_new_tokens: usize,
    pub batch_size: usize,
    pub device: &'a B::Device,
}

impl<B: Backend> RolloutEngine<'_, B> {
    /// Samples one response per prompt (repeat a prompt for a group). `seed` makes
    /// the draws reproducible; each generation batch gets its own derived seed.
    pub fn run(
        &self,
        prompts: &[Vec<u32>],
        stop_strings: &[String],
        seed: u64,
    ) -> anyhow::Result<Vec<Rollout>> {
        self.run_constrained(prompts, stop_strings, seed, None)
    }

    /// [`Self::run`] with each prompt's tokens restricted by `constraint`, whose rows
    /// are indices into `prompts`.
    pub fn run_constrained(
        &self,
        prompts: &[Vec<u32>],
        stop_strings: &[String],
        seed: u64,
        constraint: Option<&dyn TokenConstraint>,
    ) -> anyhow::Result<Vec<Rollout>> {
        let mut out = Vec::with_capacity(prompts.len());
        for (batch_index, batch) in prompts.chunks(self.batch_size.max(1)).enumerate() {
            let config = GenerationConfig {
                max_new_tokens: self.max_new_tokens,
                sampling: self.sampling.clone(),
                eos_token_ids: self.eos_token_ids.to_vec(),
                stop_strings: stop_strings.to_vec(),
                seed: seed
                    .wrapping_mul(1_000_003)
                    .wrapping_add(batch_index as u64),
            };
            let offset = batch_index * self.batch_size.max(1);
            let shifted = constraint.map(|inner| RowOffset { inner, offset });
            let generated = generate_constrained(
                self.model,
                batch,
                &config,
                Some(self.tokenizer),
                shifted.as_ref().map(|c| c as &dyn TokenConstraint),
                self.device,
            )?;
            for (prompt, sequence) in batch.iter().zip(generated) {
                out.push(Rollout {
                    prompt_ids: prompt.clone(),
                    response_text: self.tokenizer.decode(&sequence.tokens, true)?,
                    response_ids: sequence.tokens,
                    logprobs: sequence.logprobs,
                    finish_reason: sequence.finish_reason,
                });
            }
        }
        Ok(out)
    }
}

/// A constraint over all prompts seen from one generation batch, whose row 0 is
/// prompt `offset`.
struct RowOffset<'a> {
    inner: &'a dyn TokenConstraint,
    offset: usize,
}

impl TokenConstraint for RowOffset<'_> {
    fn allowed(&self, row: usize, generated: &[u32]) -> Option<Vec<u32>> {
        self.inner.allowed(self.offset + row, generated)
    }
}
