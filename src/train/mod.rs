pub mod config;
pub mod step;
pub mod trainer;

pub use config::TrainConfig;
pub use trainer::run_training;
