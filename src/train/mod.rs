pub mod config;
pub mod dynamic_sampling;
pub mod game_diagnostics;
pub mod span_log;
pub mod step;
pub mod trainer;

pub use config::TrainConfig;
pub use trainer::run_training;
