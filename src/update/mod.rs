//! The actor update (DESIGN.md §5): per-token log-probabilities of the sampled
//! responses, the clipped GRPO objective, and mini-batched optimizer steps.

pub mod grpo_loss;
pub mod policy_update;
pub mod token_logprobs;

pub use grpo_loss::{grpo_token_loss, LossAggregation, PolicyLossConfig};
pub use policy_update::{PolicySample, UpdateConfig, UpdateStats};
pub use token_logprobs::response_token_scores;
