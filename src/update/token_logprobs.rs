//! Per-token log-probabilities and entropies of response tokens under a model: the
//! forward pass, then the masked-token reward step of the kernels crate (DESIGN.md §7).

use crate::kernels::{RewardStepBackend, RowChunking};
use burn::prelude::*;

use crate::models::Decoder;

/// A batch of prompt + response sequences, right-padded, as the update sees it.
pub struct ResponseBatch<B: Backend> {
    /// `[n, len]` token ids (padding: 0).
    pub tokens: Tensor<B, 2, Int>,
    /// `[n, len - 1]`: 1 where position `t` predicts a response token `tokens[t + 1]`.
    pub response_mask: Tensor<B, 2>,
}

impl<B: Backend> ResponseBatch<B> {
    /// `sequences[i] = (prompt, response)`.
    pub fn new(sequences: &[(&[u32], &[u32])], device: &B::Device) -> Self {
        let n = sequences.len();
        let len = sequences
            .iter()
            .map(|(p, r)| p.len() + r.len())
            .max()
            .unwrap_or(1)
            .max(2);
        let mut ids = vec![0i64; n * len];
        let mut mask = vec![0f32; n * (len - 1)];
        for (i, (prompt, response)) in sequences.iter().enumerate() {
            for (t, &id) in prompt.iter().chain(response.iter()).enumerate() {
                ids[i * len + t] = id as i64;
            }
            // Response token k sits at position prompt_len + k, predicted from the one before.
            for k in 0..response.len() {
                mask[i * (len - 1) + prompt.len() + k - 1] = 1.0;
            }
        }
        Self {
            tokens: Tensor::from_data(TensorData::new(ids, [n, len]), device),
            response_mask: Tensor::from_data(TensorData::new(mask, [n, len - 1]), device),
        }
    }
}

/// `(logprob [n, len-1], entropy [n, len-1])` of each response token under `model`
/// (0 outside the responses). Right padding needs no attention mask: causal attention
/// never lets a real token see the padding after it.
pub fn response_token_scores<B: RewardStepBackend>(
    model: &Decoder<B>,
    batch: &ResponseBatch<B>,
    chunking: RowChunking,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let [n, len] = batch.tokens.dims();
    let inputs = batch.tokens.clone().slice([0..n, 0..len - 1]);
    let targets = batch
        .tokens
        .clone()
        .slice([0..n, 1..len])
        .reshape([n * (len - 1)]);
    let logits = model.forward(inputs);
    let vocab = logits.dims()[2];
    let (logprobs, entropy) = crate::kernels::masked_token_logprob_entropy(
        logits.reshape([n * (len - 1), vocab]),
        targets,
        batch.response_mask.clone().reshape([n * (len - 1)]),
        chunking,
    );
    (
        logprobs.reshape([n, len - 1]),
        entropy.reshape([n, len - 1]),
    )
}
