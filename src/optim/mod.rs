//! What both training loops (continued pretraining and GRPO) share for the update:
//! AdamW fused into one pass per parameter, the learning-rate schedule, global-norm
//! gradient clipping, gradients of a micro-batch computed as concurrent shards, and
//! the guard against NaN/inf steps.

pub mod adamw;
pub mod clip;
pub mod nonfinite;
pub mod schedule;
pub mod sharded_backward;

pub use adamw::FusedAdamW;
pub use clip::clip_global_norm;
pub use nonfinite::{is_finite_step, NonfiniteGuard};
pub use schedule::CosineSchedule;
pub use sharded_backward::{accumulate_sharded_gradients, run_concurrently, BackwardShards};
