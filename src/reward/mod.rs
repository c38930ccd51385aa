//! Rewards (DESIGN.md §1, §4): exact match of the predictor's answer with the hidden
//! span, and the generator's reward from the predictor group's accuracy.

pub mod answer;
pub mod rewards;

pub use answer::{exact_match, normalize_answer};
pub use rewards::{generator_reward, predictor_reward};
