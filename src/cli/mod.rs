//! The `pretrainzero` command line. Each subcommand parses its arguments here and
//! calls into the library; errors travel up to `main`, which prints them on one line.

pub mod bench;
pub mod bench_kernels;
pub mod bench_train;
pub mod check;
pub mod data;
pub mod device_report;
pub mod eval;
pub mod generate;
pub mod pretrain;
pub mod report;
pub mod score;
pub mod train;

use clap::{Parser, Subcommand};

use crate::backend::DeviceKind;

#[derive(Debug, Parser)]
#[command(
    name = "pretrainzero",
    version,
    about = "PretrainZero: reinforcement active pretraining on Burn"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train with PretrainZero (or a baseline span policy): the main job.
    Train(train::TrainArgs),
    /// Continue a prompt with a model folder (HF config.json + safetensors).
    Generate(generate::GenerateArgs),
    /// Mean negative log-likelihood and perplexity of a text or id sequence.
    Score(score::ScoreArgs),
    /// Speed benchmarks that print a table.
    Bench(bench::BenchArgs),
    /// Corpus tools.
    Data(data::DataArgs),
    /// Tokenizer tools.
    Tokenizer(data::TokenizerArgs),
    /// Evaluate a model (held-out masked-span accuracy).
    Eval(eval::EvalArgs),
    /// Continued pretraining (next-token cross-entropy), from an HF model or a preset.
    Pretrain(pretrain::PretrainArgs),
    /// Charts and an HTML page of a run folder, or of several runs compared.
    Report(report::ReportArgs),
    /// Correctness checks against PyTorch references (e.g. on a GPU machine).
    Check(check::CheckArgs),
}

impl Command {
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Train(args) => train::run(args),
            Command::Generate(args) => generate::run(args),
            Command::Score(args) => score::run(args),
            Command::Bench(args) => bench::run(args),
            Command::Data(args) => data::run_data(args),
            Command::Tokenizer(args) => data::run_tokenizer(args),
            Command::Pretrain(args) => pretrain::run(args),
            Command::Eval(args) => eval::run(args),
            Command::Report(args) => report::run(args),
            Command::Check(args) => check::run(args),
        }
    }
}

/// `--device`, shared by every command that computes.
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArg {
    /// Backend to run on (defaults to cuda when compiled in, else flex).
    #[arg(long, value_enum)]
    pub device: Option<DeviceKind>,
}

impl DeviceArg {
    pub fn kind(&self) -> DeviceKind {
        self.device.unwrap_or_else(DeviceKind::default_for_build)
    }
}
