//! Training checkpoints: model and optimizer records plus a JSON state (step, data
//! cursor, anything the loop needs to continue exactly), in
//! `RUN_DIR/checkpoints/step-NNNNNNN/`. A checkpoint is written into a temporary
//! folder and renamed into place, so an interrupted write never looks complete;
//! only the newest `keep_last` are kept.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::de::DeserializeOwned;
use serde::Serialize;

const STATE_FILE: &str = "state.json";

fn recorder() -> NamedMpkFileRecorder<FullPrecisionSettings> {
    NamedMpkFileRecorder::<FullPrecisionSettings>::new()
}

pub fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// Writes checkpoint `step` and prunes old ones.
pub fn save_checkpoint<B, M, O, S>(
    run_dir: &Path,
    step: usize,
    model: &M,
    optimizer: &O,
    state: &S,
    keep_last: usize,
) -> anyhow::Result<PathBuf>
where
    B: AutodiffBackend,
    M: Module<B> + burn::module::AutodiffModule<B>,
    O: Optimizer<M, B>,
    S: Serialize,
{
    let dir = checkpoints_dir(run_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let final_dir = dir.join(format!("step-{step:07}"));
    let tmp_dir = dir.join(format!(".step-{step:07}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp_dir);
    std::fs::create_dir_all(&tmp_dir)?;
    model
        .clone()
        .save_file(tmp_dir.join("model"), &recorder())
        .with_context(|| format!("writing model record in {}", tmp_dir.display()))?;
    recorder()
        .record(optimizer.to_record(), tmp_dir.join("optimizer"))
        .with_context(|| format!("writing optimizer record in {}", tmp_dir.display()))?;
    std::fs::write(
        tmp_dir.join(STATE_FILE),
        serde_json::to_string_pretty(state)?,
    )?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir)?;
    }
    std::fs::rename(&tmp_dir, &final_dir)?;

    let mut all = list_checkpoints(run_dir)?;
    while all.len() > keep_last.max(1) {
        let (_, oldest) = all.remove(0);
        std::fs::remove_dir_all(&oldest)
            .with_context(|| format!("removing {}", oldest.display()))?;
    }
    Ok(final_dir)
}

/// `(step, folder)` of every complete checkpoint, oldest first.
pub fn list_checkpoints(run_dir: &Path) -> anyhow::Result<Vec<(usize, PathBuf)>> {
    let dir = checkpoints_dir(run_dir);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(step) = name.strip_prefix("step-").and_then(|s| s.parse().ok()) {
            if path.join(STATE_FILE).is_file() {
                out.push((step, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Loads the newest checkpoint of `run_dir` into `model` and `optimizer`.
pub fn load_latest<B, M, O, S>(
    run_dir: &Path,
    model: M,
    optimizer: O,
    device: &B::Device,
) -> anyhow::Result<(M, O, S)>
where
    B: AutodiffBackend,
    M: Module<B> + burn::module::AutodiffModule<B>,
    O: Optimizer<M, B>,
    S: DeserializeOwned,
{
    let (_, dir) = list_checkpoints(run_dir)?.pop().with_context(|| {
        format!(
            "{}: no checkpoint to resume from",
            checkpoints_dir(run_dir).display()
        )
    })?;
    let model = model
        .load_file(dir.join("model"), &recorder(), device)
        .with_context(|| format!("{}: reading model record", dir.display()))?;
    let optimizer_record = recorder()
        .load(dir.join("optimizer"), device)
        .with_context(|| format!("{}: reading optimizer record", dir.display()))?;
    let optimizer = optimizer.load_record(optimizer_record);
    let state_path = dir.join(STATE_FILE);
    let state: S = serde_json::from_str(
        &std::fs::read_to_string(&state_path).with_context(|| state_path.display().to_string())?,
    )
    .with_context(|| format!("{}: invalid checkpoint state", state_path.display()))?;
    Ok((model, optimizer, state))
}
