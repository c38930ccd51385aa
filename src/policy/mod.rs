//! Span policies (one file each, behind the `SpanPolicy` trait of `span_policy.rs`),
//! their prompts, span rules and answer parsing (DESIGN.md §2–3, §6).

pub mod copy_constraint;
pub mod entropy_ntp;
pub mod parse;
pub mod pretrainzero;
pub mod prompts;
pub mod random_ntp;
pub mod random_span;
pub mod span_policy;
pub mod span_rules;
pub mod stop_words;
