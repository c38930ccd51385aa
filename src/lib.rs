//! PretrainZero — reinforcement active pretraining — on Burn.
//!
//! The layout follows the algorithm (see `DESIGN.md`); this crate holds the
//! command-line front end and the training stack, `pretrainzero-models` the decoders.

pub mod advantage;
pub mod backend;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod determinism;
pub mod eval;
pub mod optim;
pub mod parallel;
pub mod policy;
pub mod pretrain;
pub mod progress;
pub mod report;
pub mod reward;
pub mod rollout;
pub mod run_lock;
pub mod settings_check;
pub mod step_log;
pub mod token_list;
pub mod train;
pub mod update;

pub use pretrainzero_kernels as kernels;
pub use pretrainzero_models as models;
