//! Span policy: prompts, span choice and parsing (DESIGN.md §2–3).

pub mod parse;
pub mod prompts;
pub mod random_span;
pub mod span_policy;
pub mod span_rules;
pub mod stop_words;
