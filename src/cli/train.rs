//! `pretrainzero train`: the PretrainZero loop (or a baseline span policy).

use crate::kernels::RewardStepBackend;
use std::path::{Path, PathBuf};

use super::DeviceArg;
use crate::backend::{run_on_devices, MultiDeviceTask};
use crate::determinism::enter_deterministic_mode;
use crate::parallel::DeviceList;
use crate::train::config::DEFAULT_CONFIG_NAME;
use crate::train::trainer::run_training_on_devices;
use crate::train::trainer::TrainSummary;
use crate::train::trainer::RUN_CONFIG_FILE;
use crate::train::TrainConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// TOML configuration (presets in configs/). Default: configs/tiny-cpu.toml, the
    /// shipped model on the shipped Wikipedia sample, built into the binary.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a key: `--set optim.lr=1e-5 --set policy.kind=random-span`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Run folder (metrics.jsonl, checkpoints/, final/). Default: runs/<config name>-<policy>.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Continue the run in this folder from its newest checkpoint.
    #[arg(long, conflicts_with_all = ["run_dir", "overrides", "deterministic"])]
    pub resume: Option<PathBuf>,
    /// Bitwise-reproducible run on the CPU (one thread): same seed, same metrics and
    /// weights, also across kill and resume. Same as `--set deterministic=true`; a
    /// resumed run keeps its mode.
    #[arg(long)]
    pub deterministic: bool,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Data parallel: device indices of the `--device` backend, e.g. `--devices 0,1`
    /// (one replica per device, each rolling out and learning from its share of every
    /// step; gradients summed by burn-collective). Default: the backend's one device.
    #[arg(long, value_name = "I,J,...")]
    pub devices: Option<DeviceList>,
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let (config, run_dir) = match &args.resume {
        Some(dir) => {
            // The stored configuration says whether the run is deterministic, and the
            // mode must be set before any parallel work.
            if TrainConfig::load(&dir.join(RUN_CONFIG_FILE), &[])?.deterministic {
                enter_deterministic_mode()?;
            }
            (None, dir.clone())
        }
        None => {
            let mut config = match &args.config {
                Some(path) => TrainConfig::load(path, &args.overrides)?,
                None => TrainConfig::built_in_default(&args.overrides)?,
            };
            config.deterministic |= args.deterministic;
            if config.deterministic {
                enter_deterministic_mode()?;
            }
            let run_dir = args.run_dir.clone().unwrap_or_else(|| {
                let name = Path::new(
                    args.config
                        .as_deref()
                        .unwrap_or(Path::new(DEFAULT_CONFIG_NAME)),
                )
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("run");
                let policy = serde_json::to_value(config.policy.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                PathBuf::from("runs").join(format!("{name}-{policy}"))
            });
            (Some(config), run_dir)
        }
    };
    let summary = run_on_devices(
        args.device.kind(),
        args.devices.as_ref(),
        TrainTask { config, run_dir },
    )??;
    println!(
        "trained {} steps; metrics: {}, final model: {}",
        summary.steps,
        summary.run_dir.join("metrics.jsonl").display(),
        summary.export_dir.display()
    );
    Ok(())
}

struct TrainTask {
    config: Option<TrainConfig>,
    run_dir: PathBuf,
}

impl MultiDeviceTask for TrainTask {
    type Output = anyhow::Result<TrainSummary>;

    fn run<B: RewardStepBackend>(self, devices: &[B::Device]) -> Self::Output {
        run_training_on_devices::<B>(self.config, &self.run_dir, devices)
    }
}
