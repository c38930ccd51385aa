//! Continued pretraining (the paper's "Continue PT" baseline, and how the shipped
//! small model was made): next-token cross-entropy on packed corpus paragraphs.

pub mod given_examples;
pub mod loss;
pub mod task_mix;
pub mod token_stream;
pub mod trainer;

pub use given_examples::{read_predictor_examples, GivenExamples, PredictorExample};
pub use task_mix::{TaskLoss, TaskMix, DEFAULT_PREDICTOR_SHARE, REPEAT_WINDOW_WORDS};
pub use token_stream::{PackedTokenStream, StreamPosition, TokenChunk};
pub use trainer::{run_pretraining, PretrainConfig, PretrainState};
