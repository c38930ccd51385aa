//! The pretraining loss: mean next-token cross-entropy over the scored targets of a
//! batch of token chunks (plain text scores every token; an answer-only task example
//! only its answer, see `token_stream`).

use burn::prelude::*;

use super::token_stream::TokenChunk;
use crate::kernels::RewardStepBackend;
use crate::models::Decoder;

/// How many targets of `chunks` count in the loss.
pub fn scored_targets<'a>(chunks: impl IntoIterator<Item = &'a TokenChunk>) -> usize {
    chunks.into_iter().map(TokenChunk::scored_targets).sum()
}

fn chunk_tensor<B: Backend>(chunks: &[TokenChunk], device: &B::Device) -> Tensor<B, 2, Int> {
    let width = chunks[0].tokens.len();
    let ids: Vec<i64> = chunks
        .iter()
        .flat_map(|chunk| &chunk.tokens)
        .map(|&t| t as i64)
        .collect();
    Tensor::from_data(TensorData::new(ids, [chunks.len(), width]), device)
}

/// 1 where a chunk's target (token after the first) is scored, else 0: `[batch·seq]`.
fn target_mask<B: Backend>(chunks: &[TokenChunk], device: &B::Device) -> Tensor<B, 1> {
    debug_assert!(chunks.iter().all(|c| c.tokens.len() == c.scored.len()));
    let mask: Vec<f32> = chunks
        .iter()
        .flat_map(|chunk| &chunk.scored[1..])
        .map(|&scored| if scored { 1.0 } else { 0.0 })
        .collect();
    let rows = mask.len();
    Tensor::from_data(TensorData::new(mask, [rows]), device)
}

/// Mean next-token cross-entropy over the scored targets of `chunks` (each
/// `seq_len + 1` tokens).
pub fn next_token_loss<B: RewardStepBackend>(
    model: &Decoder<B>,
    chunks: &[TokenChunk],
    device: &B::Device,
) -> Tensor<B, 1> {
    let targets = scored_targets(chunks).max(1);
    next_token_loss_sum(model, chunks, device) / targets as f64
}

/// Summed next-token cross-entropy over the scored targets of `chunks`.
pub fn next_token_loss_sum<B: RewardStepBackend>(
    model: &Decoder<B>,
    chunks: &[TokenChunk],
    device: &B::Device,
) -> Tensor<B, 1> {
    let tokens = chunk_tensor::<B>(chunks, device);
    let [batch, width] = tokens.dims();
    let seq = width - 1;
    let rows = batch * seq;
    let inputs = tokens.clone().slice([0..batch, 0..seq]);
    let targets = tokens.slice([0..batch, 1..width]).reshape([rows]);
    let logits = model.forward(inputs);
    let vocab = logits.dims()[2];
    // The reward step's log-probability of each target (its entropy output gets no
    // gradient): one pass over the logits each way, where log-softmax and gather
    // would write several `[rows, V]` temporaries.
    let (logprobs, _entropy) = crate::kernels::masked_token_logprob_entropy(
        logits.reshape([rows, vocab]),
        targets,
        target_mask::<B>(chunks, device),
        crate::kernels::RowChunking::default(),
    );
    // Unscored rows have log-probability 0.
    logprobs.sum().neg()
}

pub fn validation_loss<B: RewardStepBackend>(
    model: &Decoder<B>,
    chunks: &[TokenChunk],
    batch_size: usize,
    device: &B::Device,
) -> f64 {
    let mut total = 0.0;
    for batch in chunks.chunks(batch_size.max(1)) {
        total += next_token_loss(model, batch, device)
            .into_scalar()
            .elem::<f64>()
            * batch.len() as f64;
    }
    total / chunks.len() as f64
}
