//! Per-token log-probabilities and entropies of response tokens under a model: the
//! forward pass, then the masked-token reward step of the kernels crate (DESIGN.md §7).

use crate::kernels::{RewardStepBackend, RowChunking};
use burn::prelude::*;

use crate::models::{AttentionMask, Decoder};

/// A batch of prompt + response sequences, right-padded, as the update sees it.
///
/// Only the positions that predict a response token go through the LM head and the
/// reward step: in RL batches the prompt is most of every sequence (a paragraph of
/// 100–250 tokens before a response of a few), so projecting every position onto the
/// vocabulary would spend most of the update on logits nobody reads.
pub struct ResponseBatch<B: Backend> {
    /// `[n, len]` token ids (padding: 0).
    pub tokens: Tensor<B, 2, Int>,
    /// `[R]`: row-major index into the `[n, len - 1]` predicting positions of each
    /// response token, in sequence order (sequence 0's tokens first).
    pub response_rows: Tensor<B, 1, Int>,
    /// `[R]`: the response tokens themselves.
    pub response_tokens: Tensor<B, 1, Int>,
}

impl<B: Backend> ResponseBatch<B> {
    /// `sequences[i] = (prompt, response)`; every prompt holds at least one token.
    pub fn new(sequences: &[(&[u32], &[u32])], device: &B::Device) -> Self {
        let n = sequences.len();
        let len = sequences
            .iter()
            .map(|(p, r)| p.len() + r.len())
            .max()
            .unwrap_or(1)
            .max(2);
        let mut ids = vec![0i64; n * len];
        let mut rows = Vec::new();
        let mut targets = Vec::new();
        for (i, (prompt, response)) in sequences.iter().enumerate() {
            for (t, &id) in prompt.iter().chain(response.iter()).enumerate() {
                ids[i * len + t] = id as i64;
            }
            // Response token k sits at position prompt_len + k, predicted from the one before.
            for (k, &id) in response.iter().enumerate() {
                rows.push((i * (len - 1) + prompt.len() + k - 1) as i64);
                targets.push(id as i64);
            }
        }
        let count = rows.len();
        Self {
            tokens: Tensor::from_data(TensorData::new(ids, [n, len]), device),
            response_rows: Tensor::from_data(TensorData::new(rows, [count]), device),
            response_tokens: Tensor::from_data(TensorData::new(targets, [count]), device),
        }
    }

    /// Number of response tokens `R`.
    pub fn response_len(&self) -> usize {
        self.response_rows.dims()[0]
    }
}

/// `(logprob [R], entropy [R])` of each response token under `model`, in the order of
/// [`ResponseBatch::response_rows`]. Right padding needs no attention mask: causal
/// attention never lets a real token see the padding after it.
pub fn response_token_scores<B: RewardStepBackend>(
    model: &Decoder<B>,
    batch: &ResponseBatch<B>,
    chunking: RowChunking,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [n, len] = batch.tokens.dims();
    let inputs = batch.tokens.clone().slice([0..n, 0..len - 1]);
    let hidden = model.hidden_states(inputs, None, &AttentionMask::Causal, None);
    let width = hidden.dims()[2];
    let predicting = hidden
        .reshape([n * (len - 1), width])
        .select(0, batch.response_rows.clone());
    let logits = model.logits(predicting);
    let rows = batch.response_len();
    crate::kernels::masked_token_logprob_entropy(
        logits,
        batch.response_tokens.clone(),
        Tensor::ones([rows], &batch.tokens.device()),
        chunking,
    )
}
