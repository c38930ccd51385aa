//! `pretrainzero report`: regenerate the report of a run folder, or compare runs.

use std::path::PathBuf;

use crate::report::{write_comparison, write_report, write_report_to};

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Run folder (holds metrics.jsonl; examples.jsonl and train_config.toml are optional).
    #[arg(long)]
    pub run: PathBuf,
    /// Further run folders: draw each quantity with one line per run.
    #[arg(long, value_name = "RUN_DIR", num_args = 1..)]
    pub compare: Vec<PathBuf>,
    /// Output folder. Default: <RUN>/report, or <RUN>/comparison with --compare.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let paths = if args.compare.is_empty() {
        match &args.out {
            Some(out) => write_report_to(&args.run, out)?,
            None => write_report(&args.run)?,
        }
    } else {
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| args.run.join("comparison"));
        let mut runs = vec![args.run.clone()];
        runs.extend(args.compare.iter().cloned());
        write_comparison(&runs, &out)?
    };
    println!(
        "wrote {} and {} charts in {}",
        paths.index.display(),
        paths.plots.len(),
        paths.dir.display()
    );
    Ok(())
}
