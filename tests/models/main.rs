//! Model tests: parity with PyTorch transformers on the shared fixtures, the KV
//! cache, batching, weight round trips, the tokenizer, errors and the CLI.

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod errors;
mod kv_cache;
mod parity;
mod reference;
mod roundtrip;
mod tokenizer;
mod wgpu;

pub type Cpu = burn::backend::NdArray<f32>;

/// The HF fixtures with `reference_outputs.*`.
pub const FIXTURE_MODELS: [&str; 4] = [
    "tiny-random-qwen3",
    "tiny-random-qwen2",
    "tiny-random-llama",
    "stories260K-hf",
];
