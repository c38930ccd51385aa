//! Rollout: batched generation on the device for many prompts, returning tokens,
//! text and per-token log-probs (verl's "rollout" role).
//!
//! On the CPU backends several generation batches run at the same time, one per thread
//! of rayon's pool: those backends multi-thread their matrix products but run the
//! elementwise work around them (norms, RoPE, softmax, sampling) on one thread, and a
//! decode step's products are too small to keep two cores busy anyway.

use crate::kernels::FusedLayerBackend;

use crate::optim::run_concurrently;

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

pub struct RolloutEngine<'a, B: FusedLayerBackend> {
    pub model: &'a Decoder<B>,
    pub tokenizer: &'a TextTokenizer,
    pub eos_token_ids: &'a [u32],
    pub sampling: SamplingConfig,
    pub max_new_tokens: usize,
    pub batch_size: usize,
    /// Generation batches that run at the same time, each on a thread of its own
    /// (`RewardStepBackend::concurrent_pieces`: one per CPU thread, one on a GPU).
    pub concurrent_batches: usize,
    pub device: &'a B::Device,
}

impl<B: FusedLayerBackend> RolloutEngine<'_, B> {
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
        constraint: Option<&(dyn TokenConstraint + Sync)>,
    ) -> anyhow::Result<Vec<Rollout>> {
        self.run_batches(prompts, stop_strings, constraint, |index| {
            batch_seed(seed, index)
        })
    }

    /// `prompts` as one round of concurrent batches, for callers that report progress
    /// between rounds: batch `k` of the whole run (`batches_done` counts the batches of
    /// earlier rounds) draws from the seed of a single-batch run seeded `seed + k`, as
    /// when each batch was a run of its own.
    pub fn run_eval_round(
        &self,
        prompts: &[Vec<u32>],
        stop_strings: &[String],
        seed: u64,
        batches_done: &mut usize,
    ) -> anyhow::Result<Vec<Rollout>> {
        let first = *batches_done;
        *batches_done += prompts.len().div_ceil(self.batch_size.max(1));
        self.run_batches(prompts, stop_strings, None, |index| {
            batch_seed(seed.wrapping_add((first + index) as u64), 0)
        })
    }

    /// How many prompts one round of concurrent batches takes.
    pub fn round_len(&self) -> usize {
        self.batch_size.max(1) * self.concurrent_batches.max(1)
    }

    /// `prompts` cut into batches of `batch_size`, batch `index` sampled from
    /// `seed_of(index)`, run in rounds of `concurrent_batches`.
    fn run_batches(
        &self,
        prompts: &[Vec<u32>],
        stop_strings: &[String],
        constraint: Option<&(dyn TokenConstraint + Sync)>,
        seed_of: impl Fn(usize) -> u64,
    ) -> anyhow::Result<Vec<Rollout>> {
        let batch_size = self.batch_size.max(1);
        let batches: Vec<GenerationBatch> = prompts
            .chunks(batch_size)
            .enumerate()
            .map(|(index, prompts)| GenerationBatch {
                prompts,
                offset: index * batch_size,
                seed: seed_of(index),
            })
            .collect();
        let mut out = Vec::with_capacity(prompts.len());
        for round in batches.chunks(self.concurrent_batches.max(1)) {
            for rollouts in self.run_round(round, stop_strings, constraint) {
                out.extend(rollouts?);
            }
        }
        Ok(out)
    }

    /// The given batches (at most `concurrent_batches` of them) at the same time.
    fn run_round(
        &self,
        batches: &[GenerationBatch],
        stop_strings: &[String],
        constraint: Option<&(dyn TokenConstraint + Sync)>,
    ) -> Vec<anyhow::Result<Vec<Rollout>>> {
        run_concurrently(batches.to_vec(), |batch| {
            self.run_batch(&batch, stop_strings, constraint)
        })
    }

    /// One generation batch. Its draws come from its own seed, so they do not depend on
    /// which batches ran at the same time.
    fn run_batch(
        &self,
        batch: &GenerationBatch,
        stop_strings: &[String],
        constraint: Option<&(dyn TokenConstraint + Sync)>,
    ) -> anyhow::Result<Vec<Rollout>> {
        let config = GenerationConfig {
            max_new_tokens: self.max_new_tokens,
            sampling: self.sampling.clone(),
            eos_token_ids: self.eos_token_ids.to_vec(),
            stop_strings: stop_strings.to_vec(),
            seed: batch.seed,
        };
        let shifted = constraint.map(|inner| RowOffset {
            inner,
            offset: batch.offset,
        });
        let generated = generate_constrained(
            self.model,
            batch.prompts,
            &config,
            Some(self.tokenizer),
            shifted.as_ref().map(|c| c as &dyn TokenConstraint),
            self.device,
        )?;
        batch
            .prompts
            .iter()
            .zip(generated)
            .map(|(prompt, sequence)| {
                Ok(Rollout {
                    prompt_ids: prompt.clone(),
                    response_text: self.tokenizer.decode(&sequence.tokens, true)?,
                    response_ids: sequence.tokens,
                    logprobs: sequence.logprobs,
                    finish_reason: sequence.finish_reason,
                })
            })
            .collect()
    }
}

/// The sampling seed of batch `index` of a run seeded with `seed`.
fn batch_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(index as u64)
}

/// One generation batch: its prompts, the index of its first prompt among all the
/// prompts a constraint sees, and its sampling seed.
#[derive(Debug, Clone, Copy)]
struct GenerationBatch<'a> {
    prompts: &'a [Vec<u32>],
    offset: usize,
    seed: u64,
}

/// A constraint over all prompts seen from one generation batch, whose row 0 is
/// prompt `offset`.
struct RowOffset<'a> {
    inner: &'a (dyn TokenConstraint + Sync),
    offset: usize,
}

impl TokenConstraint for RowOffset<'_> {
    fn allowed(&self, row: usize, generated: &[u32]) -> Option<Vec<u32>> {
        self.inner.allowed(self.offset + row, generated)
    }
}
