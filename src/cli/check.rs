//! `pretrainzero check parity`: the project's outputs against PyTorch transformers on
//! HF fixture models with stored reference outputs, on any compiled-in backend (on a
//! GPU machine: `--device cuda`), in f32 or bf16. Exits non-zero when a fixture is
//! outside the tolerances of the CPU tests for that type.

use std::path::{Path, PathBuf};

use super::DeviceArg;
use crate::backend::{run_on, BackendTask};
use crate::eval::fixture_parity::{check_fixture, FixtureParity};
use crate::kernels::RewardStepBackend;
use crate::models::ComputeDtype;

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    #[command(subcommand)]
    pub what: CheckWhat,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum CheckWhat {
    /// Scores and greedy continuations against transformers' reference outputs.
    Parity(ParityArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ParityArgs {
    /// A fixture folder (config.json, model.safetensors, reference_outputs.json and
    /// .safetensors), or a folder of them (e.g. shared/data/models).
    #[arg(long)]
    pub fixtures: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Type the model computes in (bf16: CUDA and --device flex), against the same
    /// f32 reference with bf16's wider tolerances.
    #[arg(long, default_value_t = ComputeDtype::F32)]
    pub dtype: ComputeDtype,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    match args.what {
        CheckWhat::Parity(args) => run_parity(args),
    }
}

fn run_parity(args: ParityArgs) -> anyhow::Result<()> {
    let fixtures = fixture_folders(&args.fixtures)?;
    let device = args.device.kind();
    let dtype = args.dtype;
    let results = run_on(device, ParityTask { fixtures, dtype })??;
    let passed = results.iter().all(FixtureParity::passes);
    if args.json {
        println!(
            "{}",
            serde_json::json!({"device": device.name(), "dtype": dtype, "passed": passed, "fixtures": results})
        );
    } else {
        println!("check parity on {}, computing in {dtype}", device.name());
        println!("| fixture | log-prob max abs Δ | log-sum-exp max abs Δ | mean NLL rel. Δ | greedy | pass |");
        println!("|---|---:|---:|---:|---|---|");
        for r in &results {
            println!(
                "| {} | {:.2e} | {:.2e} | {:.2e} | {} | {} |",
                r.fixture,
                r.target_logprob_max_diff,
                r.logsumexp_max_diff,
                r.mean_nll_relative_diff,
                if r.greedy_continuation_matches {
                    "same"
                } else {
                    "DIFFERS"
                },
                if r.passes() { "yes" } else { "NO" }
            );
        }
    }
    anyhow::ensure!(
        passed,
        "a fixture is outside the parity tolerances (see above)"
    );
    Ok(())
}

/// `path` itself when it holds reference outputs, else its subfolders that do.
fn fixture_folders(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let is_fixture = |dir: &Path| dir.join("reference_outputs.json").is_file();
    if is_fixture(path) {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read the folder: {e}", path.display()))?;
    let mut folders: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|dir| is_fixture(dir))
        .collect();
    folders.sort();
    anyhow::ensure!(
        !folders.is_empty(),
        "{}: no fixture folder (one with reference_outputs.json) in it",
        path.display()
    );
    Ok(folders)
}

struct ParityTask {
    fixtures: Vec<PathBuf>,
    dtype: ComputeDtype,
}

impl BackendTask for ParityTask {
    type Output = anyhow::Result<Vec<FixtureParity>>;

    fn run<B: RewardStepBackend>(self, device: &B::Device) -> Self::Output {
        self.fixtures
            .iter()
            .map(|dir| check_fixture::<B>(dir, self.dtype, device))
            .collect()
    }
}
