//! Per-token log-probabilities and entropies of response tokens under a model: the
//! forward pass, then the masked-token reward step of the kernels crate (DESIGN.md §7).

use std::collections::HashMap;

use crate::kernels::{RewardStepBackend, RowChunking};
use burn::backend::Autodiff;
use burn::prelude::*;

use crate::models::{AttentionMask, Decoder};

/// A batch of prompt + response sequences as the update sees it, laid out so that a
/// prompt shared by several sequences runs through the model once.
///
/// In a GRPO batch the sequences of one group share their prompt (8 answers to one
/// masked paragraph), and the prompt is most of every sequence: a paragraph of
/// 100–250 tokens before a response of a few. So the forward pass runs in two parts:
///
/// - the **prefix**: each distinct prompt but its last token, once (`[m, prefix_len]`),
///   writing its keys and values into a KV cache whose rows are then handed to every
///   sequence that continues it;
/// - the **chunk**: per sequence, its last prompt token followed by its response but
///   the last token (`[n, chunk_len]`), attending to its prefix's cached keys and to
///   its own earlier chunk tokens.
///
/// Causal attention makes this the same computation as running every full sequence
/// (the prefix's hidden states never depend on what follows), and autodiff sums each
/// shared prefix's gradient over the sequences that read it. Only the chunk positions
/// predict response tokens, so only they go through the LM head and the reward step.
pub struct ResponseBatch<B: Backend> {
    /// `None` when every prompt is a single token: the chunks are then whole sequences
    /// from position 0, and plain causal attention is exact (a real token never sees
    /// the right padding after it).
    pub prefixes: Option<SharedPrefixes<B>>,
    /// `[n, chunk_len]`: last prompt token, then the response without its last token;
    /// right-padded with 0.
    pub chunk_tokens: Tensor<B, 2, Int>,
    /// `[n, chunk_len]`: position of each chunk token in its full sequence.
    pub chunk_positions: Tensor<B, 2, Int>,
    /// `[R]`: row-major index into the `[n, chunk_len]` chunk positions of the position
    /// predicting each response token, in sequence order (sequence 0's tokens first).
    pub response_rows: Tensor<B, 1, Int>,
    /// `[R]`: the response tokens themselves.
    pub response_tokens: Tensor<B, 1, Int>,
}

/// The distinct prompt prefixes of a [`ResponseBatch`] and how its chunks read them.
pub struct SharedPrefixes<B: Backend> {
    /// `[m, prefix_len]`: each distinct prompt without its last token, right-padded
    /// with 0.
    pub tokens: Tensor<B, 2, Int>,
    /// `[n]`: the row of `tokens` each sequence continues.
    pub rows: Tensor<B, 1, Int>,
    /// `[n, 1, chunk_len, prefix_len + chunk_len]`, true where a chunk token may not
    /// look: the padding after its own prefix, and later chunk tokens.
    pub chunk_mask: Tensor<B, 4, Bool>,
}

impl<B: Backend> ResponseBatch<B> {
    /// `sequences[i] = (prompt, response)`; every prompt holds at least one token.
    /// Sequences whose prompts agree in all but the last token share one prefix.
    pub fn new(sequences: &[(&[u32], &[u32])], device: &B::Device) -> Self {
        let n = sequences.len();
        let mut prefixes: Vec<&[u32]> = Vec::new();
        let mut prefix_index: HashMap<&[u32], usize> = HashMap::new();
        let prefix_rows: Vec<i64> = sequences
            .iter()
            .map(|(prompt, _)| {
                let prefix = &prompt[..prompt.len() - 1];
                *prefix_index.entry(prefix).or_insert_with(|| {
                    prefixes.push(prefix);
                    prefixes.len() - 1
                }) as i64
            })
            .collect();
        let prefix_len = prefixes.iter().map(|p| p.len()).max().unwrap_or(0);
        let chunk_len = sequences
            .iter()
            .map(|(_, r)| r.len().max(1))
            .max()
            .unwrap_or(1);
        let keys = prefix_len + chunk_len;

        let mut prefix_ids = vec![0i64; prefixes.len() * prefix_len];
        for (row, prefix) in prefixes.iter().enumerate() {
            for (t, &id) in prefix.iter().enumerate() {
                prefix_ids[row * prefix_len + t] = id as i64;
            }
        }
        let mut chunk_ids = vec![0i64; n * chunk_len];
        let mut positions = vec![0i64; n * chunk_len];
        let mut masked = vec![false; n * chunk_len * keys];
        let mut rows = Vec::new();
        let mut targets = Vec::new();
        for (i, (prompt, response)) in sequences.iter().enumerate() {
            let own_prefix = prompt.len() - 1;
            chunk_ids[i * chunk_len] = prompt[own_prefix] as i64;
            for (j, &id) in response
                .iter()
                .take(response.len().saturating_sub(1))
                .enumerate()
            {
                chunk_ids[i * chunk_len + j + 1] = id as i64;
            }
            for j in 0..chunk_len {
                positions[i * chunk_len + j] = (own_prefix + j) as i64;
                let mask_row = &mut masked[(i * chunk_len + j) * keys..][..keys];
                mask_row[own_prefix..prefix_len].fill(true);
                mask_row[prefix_len + j + 1..].fill(true);
            }
            // Response token k is predicted at chunk position k.
            for (k, &id) in response.iter().enumerate() {
                rows.push((i * chunk_len + k) as i64);
                targets.push(id as i64);
            }
        }
        let count = rows.len();
        let int2 = |data: Vec<i64>, shape: [usize; 2]| {
            Tensor::<B, 2, Int>::from_data(TensorData::new(data, shape), device)
        };
        Self {
            prefixes: (prefix_len > 0).then(|| SharedPrefixes {
                tokens: int2(prefix_ids, [prefixes.len(), prefix_len]),
                rows: Tensor::from_data(TensorData::new(prefix_rows, [n]), device),
                chunk_mask: Tensor::from_data(
                    TensorData::new(masked, [n, 1, chunk_len, keys]),
                    device,
                ),
            }),
            chunk_tokens: int2(chunk_ids, [n, chunk_len]),
            chunk_positions: int2(positions, [n, chunk_len]),
            response_rows: Tensor::from_data(TensorData::new(rows, [count]), device),
            response_tokens: Tensor::from_data(TensorData::new(targets, [count]), device),
        }
    }

    /// Number of response tokens `R`.
    pub fn response_len(&self) -> usize {
        self.response_rows.dims()[0]
    }

    /// The same batch on the autodiff backend (the update computes `logp_old` without
    /// gradients, then the loss with them, on one layout).
    pub fn into_autodiff(self) -> ResponseBatch<Autodiff<B>> {
        ResponseBatch {
            prefixes: self.prefixes.map(|p| SharedPrefixes {
                tokens: Tensor::from_inner(p.tokens),
                rows: Tensor::from_inner(p.rows),
                chunk_mask: Tensor::from_inner(p.chunk_mask),
            }),
            chunk_tokens: Tensor::from_inner(self.chunk_tokens),
            chunk_positions: Tensor::from_inner(self.chunk_positions),
            response_rows: Tensor::from_inner(self.response_rows),
            response_tokens: Tensor::from_inner(self.response_tokens),
        }
    }
}

/// `(logprob [R], entropy [R])` of each response token under `model`, in the order of
/// [`ResponseBatch::response_rows`].
pub fn response_token_scores<B: RewardStepBackend>(
    model: &Decoder<B>,
    batch: &ResponseBatch<B>,
    chunking: RowChunking,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [n, chunk_len] = batch.chunk_tokens.dims();
    let device = batch.chunk_tokens.device();
    let hidden = match &batch.prefixes {
        None => model.hidden_states(
            batch.chunk_tokens.clone(),
            Some(batch.chunk_positions.clone()),
            &AttentionMask::Causal,
            None,
        ),
        Some(prefixes) => {
            let [distinct, prefix_len] = prefixes.tokens.dims();
            let mut cache = model.new_cache(distinct, prefix_len + chunk_len, &device);
            // Only the prefixes' keys and values are read (through the cache); their
            // hidden states are not. (Skipping the last layer's attention output and MLP
            // for the prefix made no measurable difference on the CPU.)
            let _ = model.hidden_states(
                prefixes.tokens.clone(),
                None,
                &AttentionMask::Causal,
                Some(&mut cache),
            );
            let mut cache = cache.select_rows(prefixes.rows.clone());
            model.hidden_states(
                batch.chunk_tokens.clone(),
                Some(batch.chunk_positions.clone()),
                &AttentionMask::Explicit(prefixes.chunk_mask.clone()),
                Some(&mut cache),
            )
        }
    };
    let width = hidden.dims()[2];
    let predicting = hidden
        .reshape([n * chunk_len, width])
        .select(0, batch.response_rows.clone());
    let logits = model.logits(predicting);
    let rows = batch.response_len();
    crate::kernels::masked_token_logprob_entropy(
        logits,
        batch.response_tokens.clone(),
        Tensor::ones([rows], &device),
        chunking,
    )
}
