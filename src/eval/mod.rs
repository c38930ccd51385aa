//! Evaluation. At small scale the direct measure of PretrainZero is masked-span
//! accuracy on held-out Wikipedia paragraphs; the paper's reasoning benchmarks
//! (multiple choice and math) are scored from generated or saved responses.

pub mod benchmarks;
pub mod bootstrap;
pub mod choice;
pub mod fixture_parity;
pub mod generation;
pub mod length_order;
pub mod masked_span;
pub mod math_answer;
pub mod numeric;
pub mod responses;
pub mod scoring;
pub mod span_likelihood;
