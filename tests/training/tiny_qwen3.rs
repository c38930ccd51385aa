//! The small Qwen3 shape and the fixed token batches that the optimizer and
//! mixed-precision tests train on: 2 layers, 4 query and 2 key/value heads, a
//! 97-token vocabulary, tied embeddings.

use std::path::Path;

use pretrainzero::models::ModelConfig;
use pretrainzero::pretrain::TokenChunk;

pub const VOCAB: usize = 97;

/// The shape at width `hidden` (a multiple of 4): head_dim `hidden / 4`, SwiGLU
/// `2 × hidden`.
pub fn config(hidden: usize) -> ModelConfig {
    ModelConfig::from_json(
        serde_json::json!({"model_type": "qwen3", "vocab_size": VOCAB, "hidden_size": hidden,
            "intermediate_size": 2 * hidden, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": hidden / 4, "tie_word_embeddings": true}),
        Path::new("test"),
    )
    .unwrap()
}

/// `rows` sequences of `len` tokens, a different fixed batch for each `step`.
pub fn batch(rows: usize, len: usize, step: usize) -> Vec<TokenChunk> {
    (0..rows)
        .map(|row| {
            TokenChunk::scored_everywhere(
                (0..len)
                    .map(|i| ((i * 31 + row * 7 + step * 13) % VOCAB) as u32)
                    .collect(),
            )
        })
        .collect()
}
