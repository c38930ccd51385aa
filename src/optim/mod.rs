//! What both training loops (continued pretraining and GRPO) share for the update:
//! the learning-rate schedule and global-norm gradient clipping.

pub mod clip;
pub mod schedule;

pub use clip::clip_global_norm;
pub use schedule::CosineSchedule;
