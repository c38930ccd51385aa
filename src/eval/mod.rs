//! Evaluation. At small scale the direct measure of PretrainZero is masked-span
//! accuracy on held-out Wikipedia paragraphs.

pub mod masked_span;
