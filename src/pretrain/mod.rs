//! Continued pretraining (the paper's "Continue PT" baseline, and how the shipped
//! small model was made): next-token cross-entropy on packed corpus paragraphs.

pub mod loss;
pub mod token_stream;
pub mod trainer;

pub use token_stream::{
    PackedTokenStream, StreamPosition, TaskLoss, TaskMix, TokenChunk, DEFAULT_PREDICTOR_SHARE,
    REPEAT_WINDOW_WORDS,
};
pub use trainer::{run_pretraining, PretrainConfig, PretrainState};
