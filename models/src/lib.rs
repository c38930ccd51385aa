//! Decoder-only language models for PretrainZero: Qwen3, Qwen2/2.5, Llama 2/3 and
//! SmolLM3 configured from HuggingFace `config.json`, HF safetensors loading and
//! saving, a KV cache, on-device sampling and batched generation. Everything is
//! generic over the Burn backend.

pub mod config;
pub mod decoder;
pub mod error;
pub mod generate;
pub mod hf_tensors;
pub mod kv_cache;
pub mod precision;
pub mod pretrained;
pub mod rope;
pub mod row_ops;
pub mod sampling;
pub mod scoring;
pub mod tokenizer;
pub mod weights;

pub use config::{Architecture, ModelConfig, WeightDtype, PRESETS};
pub use decoder::{AttentionMask, Decoder};
pub use error::{ModelError, Result};
pub use generate::{
    generate, generate_constrained, FinishReason, GeneratedSequence, GenerationConfig,
    TokenConstraint,
};
pub use kv_cache::KvCache;
pub use precision::ComputeDtype;
pub use pretrained::{random_decoder, save_pretrained, PretrainedModel};
pub use sampling::{sample, SamplingConfig};
pub use scoring::{score_sequence, SequenceScores};
pub use tokenizer::TextTokenizer;
