//! Choosing the next token on the device: greedy, or temperature with optional
//! top-k / top-p truncation, by inverse-CDF sampling with one uniform draw per row.
//! Only the chosen ids (and their log-probs, at the end of generation) leave the device.
//!
//! The uniform draws come from the caller (a seeded host RNG, one number per row):
//! the backends' own RNGs are process-global, so two generations running at once
//! would otherwise interleave their draws and lose reproducibility.

use crate::row_ops::{log_softmax_rows, row_argmax, row_cumsum, row_sum};
use burn::prelude::*;

#[derive(Debug, Clone, PartialEq)]
pub struct SamplingConfig {
    /// 0 means greedy (argmax).
    pub temperature: f32,
    /// Nucleus mass in (0, 1]; 1 disables top-p.
    pub top_p: f32,
    /// 0 disables top-k.
    pub top_k: usize,
}

impl SamplingConfig {
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
        }
    }

    /// Plain sampling at `temperature`, no truncation.
    pub fn with_temperature(temperature: f32) -> Self {
        Self {
            temperature,
            top_p: 1.0,
            top_k: 0,
        }
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }
}

/// The chosen token of each row and its log-probability.
pub struct SampledTokens<B: Backend> {
    /// `[batch]`.
    pub ids: Tensor<B, 1, Int>,
    /// `[batch]`: log-softmax of the temperature-scaled logits at the chosen id
    /// (before top-k/top-p truncation, as vLLM reports it); temperature 1 for greedy.
    pub logprobs: Tensor<B, 1>,
}

/// `logits`: `[batch, vocab]`; `uniform`: `[batch, 1]` draws in [0, 1) (unused when greedy).
pub fn sample<B: Backend>(
    logits: Tensor<B, 2>,
    config: &SamplingConfig,
    uniform: Tensor<B, 2>,
) -> SampledTokens<B> {
    let [batch, vocab] = logits.dims();
    let device = logits.device();
    // Softmax, cumulative sums and log-probabilities in f32 whatever the logits' type
    // (bf16 logits under a bf16 compute type): a bf16 CDF over a large vocabulary
    // cannot resolve the tail it samples from. (f32 logits are returned as they are.)
    let logits = logits.cast(burn::tensor::FloatDType::F32);
    if config.is_greedy() {
        let ids = row_argmax(logits.clone());
        let logprobs = log_softmax_rows(logits).gather(1, ids.clone());
        return SampledTokens {
            ids: ids.reshape([batch]),
            logprobs: logprobs.reshape([batch]),
        };
    }

    let logprobs_all = log_softmax_rows(logits / config.temperature);
    let probs = logprobs_all.clone().exp();
    let truncate = config.top_p < 1.0 || (config.top_k > 0 && config.top_k < vocab);
    // Candidates in the order the CDF runs over, and their ids.
    let (candidate_probs, candidate_ids) = if truncate {
        let (sorted, order) = probs.sort_descending_with_indices(1);
        let rank = Tensor::<B, 1, Int>::arange(0..vocab as i64, &device)
            .reshape([1, vocab])
            .expand([batch, vocab]);
        let mut dropped: Vec<Tensor<B, 2, Bool>> = Vec::new();
        if config.top_k > 0 && config.top_k < vocab {
            dropped.push(rank.greater_equal_elem(config.top_k as i64));
        }
        if config.top_p < 1.0 {
            // Keep the smallest prefix whose mass reaches top_p: a token is dropped when
            // the mass strictly before it already reaches top_p (the first always stays).
            let mass_before = row_cumsum(sorted.clone()) - sorted.clone();
            dropped.push(mass_before.greater_equal_elem(config.top_p));
        }
        let dropped = dropped
            .into_iter()
            .reduce(|a, b| a.bool_or(b))
            .expect("truncation implies at least one rule");
        (sorted.mask_fill(dropped, 0.0), Some(order))
    } else {
        (probs, None)
    };

    let cdf = row_cumsum(candidate_probs);
    let total = cdf.clone().slice([0..batch, vocab - 1..vocab]);
    let threshold = uniform * total;
    // Index of the first candidate whose CDF exceeds the draw.
    let below = cdf.lower_equal(threshold.expand([batch, vocab])).float();
    let position = row_sum(below).int().clamp_max(vocab as i64 - 1);
    let ids = match candidate_ids {
        Some(order) => order.gather(1, position),
        None => position,
    };
    let logprobs = logprobs_all.gather(1, ids.clone());
    SampledTokens {
        ids: ids.reshape([batch]),
        logprobs: logprobs.reshape([batch]),
    }
}
