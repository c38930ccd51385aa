//! The update's shared-prompt forward pass (`ResponseBatch`): a prompt shared by several
//! sequences runs once and its keys/values are handed to each of them. Checked against
//! a second implementation, each full sequence on its own through the plain forward
//! pass: the same log-probabilities and entropies, and the same gradients.

use std::path::Path;

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use pretrainzero::kernels::{FusedLayerBackend, RowChunking};
use pretrainzero::models::{random_decoder, Decoder, ModelConfig};
use pretrainzero::update::response_token_scores;
use pretrainzero::update::token_logprobs::ResponseBatch;

use crate::Cpu;

/// Grouped-query attention (2 query heads per key/value head), so the chunk pass's
/// grouped attention over cached keys is exercised too.
fn model<B: Backend>(device: &B::Device) -> Decoder<B> {
    let config = ModelConfig::from_json(
        serde_json::json!({"model_type": "qwen3", "vocab_size": 48, "hidden_size": 32,
            "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": 8, "tie_word_embeddings": true}),
        Path::new("shared-prefix"),
    )
    .unwrap();
    random_decoder(&config, 7, device)
}

/// Groups of different prompt lengths, a one-token prompt, a prompt that shares all but
/// its last token with another, responses of one to five tokens.
fn sequences() -> Vec<(Vec<u32>, Vec<u32>)> {
    let a = vec![3u32, 9, 14, 2, 27, 5, 11];
    let mut a_other_last = a.clone();
    *a_other_last.last_mut().unwrap() = 40;
    let b = vec![8u32, 1, 30];
    vec![
        (a.clone(), vec![4]),
        (a.clone(), vec![6, 7, 8, 9]),
        (b.clone(), vec![12, 13, 14, 15, 16]),
        (a.clone(), vec![21, 22]),
        (vec![17], vec![18, 19, 20, 21]),
        (b, vec![33, 34, 35]),
        (a_other_last, vec![44, 45]),
    ]
}

/// Per response token: (log-probability, entropy) from the full sequence alone, as a
/// `[R]` tensor pair (so that gradients flow through them on an autodiff backend).
fn plain_scores<B: FusedLayerBackend>(
    model: &Decoder<B>,
    seqs: &[(Vec<u32>, Vec<u32>)],
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let device = Default::default();
    let mut logprobs = Vec::new();
    let mut entropies = Vec::new();
    for (prompt, response) in seqs {
        let ids: Vec<i64> = prompt.iter().chain(response).map(|&t| t as i64).collect();
        let len = ids.len();
        let tokens =
            Tensor::<B, 2, Int>::from_data(TensorData::new(ids.clone(), [1, len]), &device);
        let vocab = model.vocab_size();
        let logp = log_softmax(model.forward(tokens).reshape([len, vocab]), 1);
        let first = prompt.len() - 1;
        let predicting = logp.slice([first..len - 1, 0..vocab]);
        let targets = Tensor::<B, 2, Int>::from_data(
            TensorData::new(ids[first + 1..].to_vec(), [response.len(), 1]),
            &device,
        );
        logprobs.push(
            predicting
                .clone()
                .gather(1, targets)
                .reshape([response.len()]),
        );
        entropies.push(
            -(predicting.clone().exp() * predicting)
                .sum_dim(1)
                .reshape([response.len()]),
        );
    }
    (Tensor::cat(logprobs, 0), Tensor::cat(entropies, 0))
}

fn views(seqs: &[(Vec<u32>, Vec<u32>)]) -> Vec<(&[u32], &[u32])> {
    seqs.iter().map(|(p, r)| (&p[..], &r[..])).collect()
}

fn max_abs_diff<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    (a - b).abs().max().into_scalar().elem::<f32>()
}

#[test]
fn shared_prompts_run_once_and_score_like_each_sequence_alone() {
    let device = Default::default();
    let model = model::<Cpu>(&device);
    let seqs = sequences();
    let batch = ResponseBatch::<Cpu>::new(&views(&seqs), &device);
    // Three distinct prefixes: a (shared by four sequences, one with another last
    // token), b (two), and the empty prefix of the one-token prompt.
    let prefixes = batch
        .prefixes
        .as_ref()
        .expect("prompts longer than one token");
    assert_eq!(prefixes.tokens.dims(), [3, 6]);
    assert_eq!(batch.chunk_tokens.dims(), [7, 5]);

    let (logprob, entropy) = response_token_scores(&model, &batch, RowChunking::default());
    let (plain_logprob, plain_entropy) = plain_scores(&model, &seqs);
    assert_eq!(logprob.dims(), [21]);
    assert!(max_abs_diff(logprob, plain_logprob) < 1e-5);
    assert!(max_abs_diff(entropy, plain_entropy) < 1e-5);
}

#[test]
fn one_token_prompts_need_no_prefix_and_score_like_each_sequence_alone() {
    let device = Default::default();
    let model = model::<Cpu>(&device);
    let seqs = vec![(vec![5u32], vec![6, 7, 8]), (vec![9], vec![1])];
    let batch = ResponseBatch::<Cpu>::new(&views(&seqs), &device);
    assert!(batch.prefixes.is_none());
    let (logprob, entropy) = response_token_scores(&model, &batch, RowChunking::default());
    let (plain_logprob, plain_entropy) = plain_scores(&model, &seqs);
    assert!(max_abs_diff(logprob, plain_logprob) < 1e-5);
    assert!(max_abs_diff(entropy, plain_entropy) < 1e-5);
}

#[test]
fn a_shared_prompt_gets_the_gradient_of_every_sequence_that_reads_it() {
    type Ad = Autodiff<Cpu>;
    let device = Default::default();
    let model = model::<Ad>(&device);
    let seqs = sequences();
    // A loss that weighs every token differently, so a gradient summed over the wrong
    // sequences would show.
    let weights = |count: usize| {
        let w: Vec<f32> = (0..count).map(|i| 0.5 + 0.1 * i as f32).collect();
        Tensor::<Ad, 1>::from_data(TensorData::new(w, [count]), &device)
    };
    let batch = ResponseBatch::<Ad>::new(&views(&seqs), &device);
    let (logprob, entropy) = response_token_scores(&model, &batch, RowChunking::default());
    let count = logprob.dims()[0];
    let shared = ((logprob + entropy * 0.3) * weights(count))
        .sum()
        .backward();
    let (plain_logprob, plain_entropy) = plain_scores(&model, &seqs);
    let plain = ((plain_logprob + plain_entropy * 0.3) * weights(count))
        .sum()
        .backward();

    let embed = &model.embed_tokens.weight;
    let q_proj = &model.layers[0].self_attn.q_proj.weight;
    let k_proj = &model.layers[0].self_attn.k_proj.weight;
    for (name, shared_grad, plain_grad) in [
        (
            "embed_tokens",
            embed.grad(&shared).unwrap(),
            embed.grad(&plain).unwrap(),
        ),
        (
            "layers.0.q_proj",
            q_proj.grad(&shared).unwrap(),
            q_proj.grad(&plain).unwrap(),
        ),
        (
            "layers.0.k_proj",
            k_proj.grad(&shared).unwrap(),
            k_proj.grad(&plain).unwrap(),
        ),
    ] {
        let scale = plain_grad.clone().abs().max().into_scalar();
        assert!(scale > 1e-4, "{name}: the gradient is not exercised");
        let diff = max_abs_diff(shared_grad, plain_grad);
        // f32 rounding of two summation orders leaves ~3e-5 of the largest entry; a
        // sequence's gradient missing or counted twice would be of the order of 1.
        assert!(
            diff < 1e-4 * scale,
            "{name}: max |Δ| {diff} (scale {scale})"
        );
    }
}
