//! The end-of-run report: PNG charts of the per-step metrics and an
//! HTML page with the run summary and, at a few steps, the spans the generator chose
//! and the predictor's answers. `write_report` is called at the end of training and by
//! `pretrainzero report`; `write_comparison` overlays several runs.

pub mod html;
pub mod plots;
pub mod run;

use std::path::{Path, PathBuf};

use anyhow::Context;

pub use run::RunData;

/// The report folder inside a run folder.
pub const REPORT_DIR: &str = "report";
const INDEX_FILE: &str = "index.html";

/// What a report wrote.
#[derive(Debug, Clone)]
pub struct ReportPaths {
    pub dir: PathBuf,
    pub index: PathBuf,
    pub plots: Vec<PathBuf>,
}

/// Writes `run_dir/report/` (charts and `index.html`) from the run's files.
pub fn write_report(run_dir: &Path) -> anyhow::Result<ReportPaths> {
    write_report_to(run_dir, &run_dir.join(REPORT_DIR))
}

/// Writes the report of `run_dir` into `out_dir`.
pub fn write_report_to(run_dir: &Path, out_dir: &Path) -> anyhow::Result<ReportPaths> {
    let run = RunData::load(run_dir)?;
    create_dir(out_dir)?;
    let mut plots = Vec::new();
    for spec in plots::RUN_CHARTS {
        let path = out_dir.join(spec.file);
        plots::draw_chart(&plots::Chart::for_run(spec, &run), &path)?;
        plots.push(path);
    }
    let page = html::run_page(&run, &file_names(&plots));
    finish(out_dir, plots, &page)
}

/// Writes one chart per quantity with a line per run, and an `index.html` table of
/// final and mean values, into `out_dir`.
pub fn write_comparison(run_dirs: &[PathBuf], out_dir: &Path) -> anyhow::Result<ReportPaths> {
    anyhow::ensure!(!run_dirs.is_empty(), "no run folder to compare");
    let runs = run_dirs
        .iter()
        .map(|dir| RunData::load(dir))
        .collect::<anyhow::Result<Vec<_>>>()?;
    create_dir(out_dir)?;
    let mut plots = Vec::new();
    for spec in plots::COMPARISON_CHARTS {
        let path = out_dir.join(spec.file);
        plots::draw_chart(&plots::Chart::across_runs(spec, &runs), &path)?;
        plots.push(path);
    }
    let page = html::comparison_page(&runs, &file_names(&plots));
    finish(out_dir, plots, &page)
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn file_names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect()
}

fn finish(out_dir: &Path, plots: Vec<PathBuf>, page: &str) -> anyhow::Result<ReportPaths> {
    let index = out_dir.join(INDEX_FILE);
    crate::models::pretrained::write_atomically(&index, page.as_bytes())?;
    Ok(ReportPaths {
        dir: out_dir.to_path_buf(),
        index,
        plots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh empty folder under the system temp dir.
    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pretrainzero-report-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn metrics_line(step: usize, accuracy: f64, skipped: bool) -> String {
        serde_json::json!({
            "step": step, "policy": "pretrainzero", "paragraphs": 2,
            "generator_rollouts": 4, "valid_mask_fraction": 0.5,
            "generator_reward_mean": 1.0 - accuracy, "predictor_rollouts": 6,
            "predictor_accuracy": accuracy, "reward_mean": 0.5,
            "mask_words_mean": 1.5, "mask_tokens_mean": 2.0,
            "zero_variance_fraction": 0.25, "predictor_all_zero_fraction": 0.5,
            "predictor_all_one_fraction": 0.0, "response_length_mean": 3.5,
            "response_length_max": 8, "response_clipped_fraction": 0.0,
            "update_skipped": skipped, "loss": 0.1, "grad_norm": 1.0,
            // NaN is written as null by serde_json; it must read as missing.
            "entropy": if skipped { serde_json::Value::Null } else { 2.5.into() },
            "lr": 1e-5, "step_seconds": 1.5,
        })
        .to_string()
    }

    /// A run folder with three steps and two examples; the answers were scored by
    /// hand: step 1 has 2 of 3 correct, step 3 has 0 of 2.
    fn write_run(dir: &Path) {
        let metrics: Vec<String> = [(1, 0.25, false), (2, 0.5, true), (3, 0.75, false)]
            .iter()
            .map(|&(step, acc, skipped)| metrics_line(step, acc, skipped))
            .collect();
        std::fs::write(dir.join("metrics.jsonl"), metrics.join("\n") + "\n").unwrap();
        let examples = [
            serde_json::json!({"step": 1, "example": {
                "paragraph": "Tom & Jerry <cartoon> by Hanna. Tom runs.",
                "context": "[mask] & Jerry <cartoon> by Hanna. [mask] runs.",
                "gold": "Tom",
                "answers": ["Tom", " Tom ", "Jerry"],
            }}),
            serde_json::json!({"step": 3, "example": {
                "paragraph": "The river \"Aare\" flows north.",
                "context": "The river \"[mask]\" flows north.",
                "gold": "Aare",
                "answers": ["aare", null],
            }}),
        ];
        let examples: Vec<String> = examples.iter().map(|e| e.to_string()).collect();
        std::fs::write(dir.join("examples.jsonl"), examples.join("\n") + "\n").unwrap();
        std::fs::write(
            dir.join("train_config.toml"),
            "model = \"models/tiny\"\nseed = 3\n[policy]\nkind = \"pretrainzero\"\ncase_insensitive = false\n",
        )
        .unwrap();
    }

    /// (width, height) from a PNG's signature and IHDR chunk.
    fn png_size(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        (be(16), be(20))
    }

    #[test]
    fn report_of_a_small_run() {
        let dir = temp_dir("run");
        write_run(&dir);
        let paths = write_report(&dir).unwrap();
        assert_eq!(paths.dir, dir.join("report"));
        assert_eq!(paths.plots.len(), plots::RUN_CHARTS.len());
        for plot in &paths.plots {
            assert_eq!(png_size(plot), (plots::WIDTH, plots::HEIGHT));
        }
        let page = std::fs::read_to_string(&paths.index).unwrap();
        for spec in plots::RUN_CHARTS {
            assert!(page.contains(&format!("<img src=\"{}\"", spec.file)));
        }
        // Escaped text, the span marked at both masked places.
        assert!(page.contains(
            "<mark>Tom</mark> &amp; Jerry &lt;cartoon&gt; by Hanna. <mark>Tom</mark> runs."
        ));
        assert!(page.contains("The river &quot;<mark>Aare</mark>&quot; flows north."));
        assert!(!page.contains("<cartoon>"));
        // "Tom" and " Tom " match (whitespace is normalised), "Jerry" does not;
        // "aare" fails the case-sensitive match and the missing answer counts as wrong.
        assert!(page.contains("2 of 3 answers correct"));
        assert!(page.contains("0 of 2 answers correct"));
        assert_eq!(page.matches("<li class=correct>").count(), 2);
        assert_eq!(page.matches("<li class=incorrect>").count(), 3);
        assert!(page.contains("<h3>Step 1</h3>") && page.contains("<h3>Step 3</h3>"));
        // No temporary file is left behind.
        for entry in std::fs::read_dir(&paths.dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.contains("tmp"), "{name}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn comparison_of_two_runs() {
        let dir = temp_dir("compare");
        let (a, b) = (dir.join("run-a"), dir.join("run-b"));
        for run in [&a, &b] {
            std::fs::create_dir_all(run).unwrap();
            write_run(run);
        }
        let out = dir.join("out");
        let paths = write_comparison(&[a, b], &out).unwrap();
        assert_eq!(paths.plots.len(), plots::COMPARISON_CHARTS.len());
        for plot in &paths.plots {
            assert_eq!(png_size(plot), (plots::WIDTH, plots::HEIGHT));
        }
        let page = std::fs::read_to_string(&paths.index).unwrap();
        assert!(page.contains("run-a<br>(pretrainzero)") && page.contains("run-b"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn malformed_metrics_line_names_file_and_line() {
        let dir = temp_dir("malformed");
        write_run(&dir);
        let good = metrics_line(1, 0.5, false);
        std::fs::write(
            dir.join("metrics.jsonl"),
            format!("{good}\n{{\"step\": 2, oops\n"),
        )
        .unwrap();
        let error = format!("{:#}", write_report(&dir).unwrap_err());
        assert!(error.contains("metrics.jsonl line 2"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_metrics_file_is_named() {
        let dir = temp_dir("missing");
        let error = format!("{:#}", write_report(&dir).unwrap_err());
        assert!(error.contains("metrics.jsonl: not found"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn example_steps_spread_over_the_run() {
        let example = run::ExampleRecord {
            paragraph: "a b".into(),
            context: "[mask] b".into(),
            gold: "a".into(),
            answers: vec![],
        };
        let examples: Vec<_> = (1..=9).map(|s| (s, example.clone())).collect();
        assert_eq!(html::example_steps(&examples), vec![1, 3, 5, 7, 9]);
        assert_eq!(html::example_steps(&examples[..2]), vec![1, 2]);
        assert!(html::example_steps(&[]).is_empty());
    }
}
