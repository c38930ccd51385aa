//! Batched autoregressive generation with a KV cache — the rollout engine.
//!
//! Prompts of different lengths are left-padded to a common length; each sequence
//! gets its own positions (starting at 0 at its first real token) and never attends
//! to padding, so a sequence generates the same tokens in a batch as alone.

use burn::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::decoder::{AttentionMask, Decoder};
use crate::error::{ModelError, Result};
use crate::sampling::{sample, SamplingConfig};
use crate::tokenizer::TextTokenizer;
use pretrainzero_kernels::FusedLayerBackend;

#[derive(Debug, Clone)]
pub struct GenerationConfig {
    pub max_new_tokens: usize,
    pub sampling: SamplingConfig,
    /// Generation of a sequence ends after any of these ids (included in the output).
    pub eos_token_ids: Vec<u32>,
    /// Generation ends once the decoded new text contains one of these; the output
    /// keeps the tokens up to the one that completed it (needs a tokenizer).
    pub stop_strings: Vec<String>,
    /// Seeds the sampling RNG (one uniform draw per sequence and step).
    pub seed: u64,
}

impl GenerationConfig {
    /// Exactly `max_new_tokens` tokens per sequence: no EOS, no stop strings (what
    /// benchmarks and reference comparisons need).
    pub fn fixed_length(max_new_tokens: usize, sampling: SamplingConfig, seed: u64) -> Self {
        Self {
            max_new_tokens,
            sampling,
            eos_token_ids: Vec::new(),
            stop_strings: Vec::new(),
            seed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Eos,
    StopString,
    Length,
}

#[derive(Debug, Clone)]
pub struct GeneratedSequence {
    pub tokens: Vec<u32>,
    /// Log-probability of each token in `tokens` (see `SampledTokens::logprobs`).
    pub logprobs: Vec<f32>,
    pub finish_reason: FinishReason,
}

/// Restricts the tokens a sequence may sample next (constrained decoding).
pub trait TokenConstraint {
    /// The token ids row `row` of the batch may sample after having generated
    /// `generated`; `None` leaves the row free. An empty list leaves it free too (a
    /// constraint with no way forward must not turn the row into NaN).
    fn allowed(&self, row: usize, generated: &[u32]) -> Option<Vec<u32>>;
}

/// Generates a continuation for every prompt. `tokenizer` is needed only for stop strings.
pub fn generate<B: FusedLayerBackend>(
    model: &Decoder<B>,
    prompts: &[Vec<u32>],
    config: &GenerationConfig,
    tokenizer: Option<&TextTokenizer>,
    device: &B::Device,
) -> Result<Vec<GeneratedSequence>> {
    generate_constrained(model, prompts, config, tokenizer, None, device)
}

/// [`generate`], with the sampled tokens of each row restricted by `constraint`: the
/// other tokens' logits are set to −∞ before sampling, so the reported log-probabilities
/// are those of the constrained distribution.
pub fn generate_constrained<B: FusedLayerBackend>(
    model: &Decoder<B>,
    prompts: &[Vec<u32>],
    config: &GenerationConfig,
    tokenizer: Option<&TextTokenizer>,
    constraint: Option<&dyn TokenConstraint>,
    device: &B::Device,
) -> Result<Vec<GeneratedSequence>> {
    if prompts.is_empty() {
        return Ok(Vec::new());
    }
    let vocab = model.vocab_size();
    for (i, prompt) in prompts.iter().enumerate() {
        if prompt.is_empty() {
            return Err(ModelError::Input(format!("prompt {i} is empty")));
        }
        if let Some(&bad) = prompt.iter().find(|&&id| id as usize >= vocab) {
            return Err(ModelError::Input(format!(
                "prompt {i} has token id {bad}, outside the vocabulary of {vocab}"
            )));
        }
    }
    if !config.stop_strings.is_empty() && tokenizer.is_none() {
        return Err(ModelError::Input("stop strings need a tokenizer".into()));
    }
    if config.max_new_tokens == 0 {
        let empty = GeneratedSequence {
            tokens: Vec::new(),
            logprobs: Vec::new(),
            finish_reason: FinishReason::Length,
        };
        return Ok(vec![empty; prompts.len()]);
    }
    let mut rng = StdRng::seed_from_u64(config.seed);

    let batch = prompts.len();
    let prompt_len = prompts.iter().map(Vec::len).max().unwrap_or(0);
    // Prefill. A GRPO group samples many responses to one prompt; each distinct prompt
    // is prefilled once and its cache rows are then copied to every row that repeats it.
    let (distinct, row_source) = distinct_prompts(prompts);
    let mut cache = model.new_cache(distinct.len(), prompt_len + config.max_new_tokens, device);
    let padded: Vec<i64> = distinct
        .iter()
        .flat_map(|prompt| {
            std::iter::repeat_n(0, prompt_len - prompt.len())
                .chain(prompt.iter().map(|&id| id as i64))
        })
        .collect();
    let input = Tensor::<B, 2, Int>::from_data(
        TensorData::new(padded, [distinct.len(), prompt_len]),
        device,
    );
    let distinct_pads: Vec<i64> = distinct
        .iter()
        .map(|p| (prompt_len - p.len()) as i64)
        .collect();
    let mut pad_counts =
        Tensor::<B, 1, Int>::from_data(TensorData::new(distinct_pads, [distinct.len()]), device);
    let hidden = model.hidden_states(
        input,
        Some(positions(&pad_counts, 0, prompt_len)),
        &AttentionMask::Explicit(padding_mask(&pad_counts, 0, prompt_len, prompt_len)),
        Some(&mut cache),
    );
    let width = hidden.dims()[2];
    let mut last = hidden
        .slice([0..distinct.len(), prompt_len - 1..prompt_len, 0..width])
        .reshape([distinct.len(), width]);
    if distinct.len() < batch {
        let rows = Tensor::<B, 1, Int>::from_data(
            TensorData::new(row_source.iter().map(|&r| r as i64).collect(), [batch]),
            device,
        );
        cache = cache.select_rows(rows.clone());
        last = last.select(0, rows.clone());
        pad_counts = pad_counts.select(0, rows);
    }
    let mut step_start = prompt_len;
    let mut next_input: Option<Tensor<B, 2, Int>> = None;

    let mut outputs: Vec<Vec<u32>> = vec![Vec::new(); batch];
    let mut finish: Vec<Option<FinishReason>> = vec![None; batch];
    let mut logprob_steps: Vec<Tensor<B, 1>> = Vec::new();
    let stop_window = config
        .stop_strings
        .iter()
        .map(|s| 4 * s.len() + 4)
        .max()
        .unwrap_or(0);

    for step in 0..config.max_new_tokens {
        if step > 0 {
            // Decode: one new token per row, attending to everything written so far.
            let input = next_input.take().expect("set after every sampling step");
            let mask = padding_mask(&pad_counts, step_start, 1, step_start + 1);
            let hidden = model.hidden_states(
                input,
                Some(positions(&pad_counts, step_start, 1)),
                &AttentionMask::Explicit(mask),
                Some(&mut cache),
            );
            last = hidden.reshape([batch, width]);
            step_start += 1;
        }
        let draws: Vec<f32> = (0..batch).map(|_| rng.random::<f32>()).collect();
        let uniform = Tensor::<B, 2>::from_data(TensorData::new(draws, [batch, 1]), device);
        let mut logits = model.logits(last.clone());
        if let Some(constraint) = constraint {
            if let Some(forbidden) = forbidden_tokens(constraint, &outputs, &finish, vocab) {
                let forbidden = Tensor::<B, 2, Bool>::from_data(
                    TensorData::new(forbidden, [batch, vocab]),
                    device,
                );
                logits = logits.mask_fill(forbidden, f32::NEG_INFINITY);
            }
        }
        let sampled = sample(logits, &config.sampling, uniform);
        logprob_steps.push(sampled.logprobs);
        // Finished rows keep decoding (their tokens are discarded) so the batch stays whole.
        next_input = Some(sampled.ids.clone().reshape([batch, 1]));

        let ids = sampled.ids.into_data().convert::<i64>();
        let ids = ids
            .as_slice::<i64>()
            .map_err(|e| ModelError::Input(format!("{e:?}")))?;
        for b in 0..batch {
            if finish[b].is_some() {
                continue;
            }
            let id = ids[b] as u32;
            outputs[b].push(id);
            if config.eos_token_ids.contains(&id) {
                finish[b] = Some(FinishReason::Eos);
            } else if let Some(tokenizer) = tokenizer.filter(|_| stop_window > 0) {
                let tail = &outputs[b][outputs[b].len().saturating_sub(stop_window)..];
                let text = tokenizer.decode(tail, false)?;
                if config
                    .stop_strings
                    .iter()
                    .any(|s| text.contains(s.as_str()))
                {
                    finish[b] = Some(FinishReason::StopString);
                }
            }
        }
        if finish.iter().all(Option::is_some) {
            break;
        }
    }

    let steps = logprob_steps.len();
    let logprobs = Tensor::stack::<2>(logprob_steps, 1)
        .into_data()
        .convert::<f32>();
    let logprobs = logprobs
        .as_slice::<f32>()
        .map_err(|e| ModelError::Input(format!("{e:?}")))?;
    Ok(outputs
        .into_iter()
        .zip(finish)
        .enumerate()
        .map(|(b, (tokens, finish))| {
            let logprobs = logprobs[b * steps..b * steps + tokens.len()].to_vec();
            GeneratedSequence {
                tokens,
                logprobs,
                finish_reason: finish.unwrap_or(FinishReason::Length),
            }
        })
        .collect())
}

/// `[batch × vocab]`, true for the tokens a row may not sample; `None` when no live
/// row is constrained.
fn forbidden_tokens(
    constraint: &dyn TokenConstraint,
    outputs: &[Vec<u32>],
    finish: &[Option<FinishReason>],
    vocab: usize,
) -> Option<Vec<bool>> {
    let mut forbidden = vec![false; outputs.len() * vocab];
    let mut any = false;
    for (row, generated) in outputs.iter().enumerate() {
        if finish[row].is_some() {
            continue;
        }
        let Some(allowed) = constraint.allowed(row, generated) else {
            continue;
        };
        let allowed: Vec<usize> = allowed
            .into_iter()
            .map(|id| id as usize)
            .filter(|&id| id < vocab)
            .collect();
        if allowed.is_empty() {
            continue;
        }
        any = true;
        let row_mask = &mut forbidden[row * vocab..(row + 1) * vocab];
        row_mask.fill(true);
        for id in allowed {
            row_mask[id] = false;
        }
    }
    any.then_some(forbidden)
}

/// The distinct prompts in order of first appearance, and for every prompt the index
/// of its distinct copy.
fn distinct_prompts(prompts: &[Vec<u32>]) -> (Vec<&Vec<u32>>, Vec<usize>) {
    let mut index: std::collections::HashMap<&[u32], usize> = std::collections::HashMap::new();
    let mut distinct = Vec::new();
    let source = prompts
        .iter()
        .map(|prompt| {
            *index.entry(prompt.as_slice()).or_insert_with(|| {
                distinct.push(prompt);
                distinct.len() - 1
            })
        })
        .collect();
    (distinct, source)
}

/// Position of each query token, `[batch, queries]`: its index minus the sequence's
/// left padding (padding itself sits at position 0).
fn positions<B: Backend>(
    pad_counts: &Tensor<B, 1, Int>,
    start: usize,
    queries: usize,
) -> Tensor<B, 2, Int> {
    let batch = pad_counts.dims()[0];
    let device = pad_counts.device();
    let index = Tensor::<B, 1, Int>::arange(start as i64..(start + queries) as i64, &device)
        .reshape([1, queries])
        .expand([batch, queries]);
    (index
        - pad_counts
            .clone()
            .reshape([batch, 1])
            .expand([batch, queries]))
    .clamp_min(0)
}

/// `[batch, 1, queries, keys]`, true where attention is forbidden: future keys, and
/// padding keys. A padding query may still see itself, so that no row is fully
/// masked (a fully masked row can give NaN in fused kernels and poison the values).
pub fn padding_mask<B: Backend>(
    pad_counts: &Tensor<B, 1, Int>,
    query_start: usize,
    queries: usize,
    keys: usize,
) -> Tensor<B, 4, Bool> {
    let batch = pad_counts.dims()[0];
    let device = pad_counts.device();
    let shape = [batch, 1, queries, keys];
    let key_index = Tensor::<B, 1, Int>::arange(0..keys as i64, &device)
        .reshape([1, 1, 1, keys])
        .expand(shape);
    let query_index =
        Tensor::<B, 1, Int>::arange(query_start as i64..(query_start + queries) as i64, &device)
            .reshape([1, 1, queries, 1])
            .expand(shape);
    let pads = pad_counts.clone().reshape([batch, 1, 1, 1]).expand(shape);
    let future = key_index.clone().greater(query_index.clone());
    let padding_key = key_index.clone().lower(pads);
    let is_self = key_index.equal(query_index);
    future.bool_or(padding_key.bool_and(is_self.bool_not()))
}
