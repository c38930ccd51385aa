//! Training checkpoints: model and optimizer records plus a JSON state (step, data
//! cursor, anything the loop needs to continue exactly), in
//! `RUN_DIR/checkpoints/step-NNNNNNN/`. A checkpoint is written into a temporary
//! folder, its files are synced and listed with their SHA-256 in `checksums.json`, and
//! the folder is renamed into place, so an interrupted write never looks complete.
//! Resuming verifies the checksums; a damaged newest checkpoint is named and skipped
//! in favour of the previous one. Only the newest `keep_last` are kept.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

const STATE_FILE: &str = "state.json";
const CHECKSUMS_FILE: &str = "checksums.json";

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
    write_checksums(&tmp_dir)?;
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

/// `(step, folder)` of every `step-N` folder (renamed into place, so fully written
/// unless damaged later), oldest first.
fn checkpoint_folders(run_dir: &Path) -> anyhow::Result<Vec<(usize, PathBuf)>> {
    let dir = checkpoints_dir(run_dir);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(step) = name.strip_prefix("step-").and_then(|s| s.parse().ok()) {
            out.push((step, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a resumed run continues from a checkpoint. A run killed before its first
/// checkpoint has none and starts again from step 0 with its stored configuration
/// (said on stderr); a run with checkpoint folders continues from the newest usable.
pub fn resumes_from_checkpoint(run_dir: &Path) -> anyhow::Result<bool> {
    let any = !checkpoint_folders(run_dir)?.is_empty();
    if !any {
        eprintln!(
            "note: {}: no checkpoint was written before the run stopped; starting it again from step 0",
            run_dir.display()
        );
    }
    Ok(any)
}

/// `(step, folder)` of every checkpoint with a state file, oldest first.
pub fn list_checkpoints(run_dir: &Path) -> anyhow::Result<Vec<(usize, PathBuf)>> {
    Ok(checkpoint_folders(run_dir)?
        .into_iter()
        .filter(|(_, path)| path.join(STATE_FILE).is_file())
        .collect())
}

/// A fresh start in `run_dir` is refused once an earlier run there wrote a
/// checkpoint (that run is continued with `--resume`). An earlier start that failed
/// before its first checkpoint left only its configuration (and perhaps a few logged
/// steps), which the new start replaces, saying so.
pub fn refuse_started_run(run_dir: &Path, config_file: &str) -> anyhow::Result<()> {
    if !list_checkpoints(run_dir)?.is_empty() {
        anyhow::bail!(
            "{}: already holds a run; pass --resume {0} to continue it, or choose another run folder",
            run_dir.display()
        );
    }
    if run_dir.join(config_file).exists() {
        eprintln!(
            "note: {}: an earlier start here wrote no checkpoint; starting afresh",
            run_dir.display()
        );
    }
    Ok(())
}

/// The error that stops a run after `count` consecutive steps (the last one `step`)
/// whose loss or gradient was NaN or infinite: the steps were skipped, so the
/// newest checkpoint holds the last good weights.
pub fn nonfinite_stop(run_dir: &Path, count: usize, step: usize) -> anyhow::Error {
    let newest = match list_checkpoints(run_dir) {
        Ok(list) => match list.last() {
            Some((step, dir)) => format!(
                "the newest checkpoint, step {step} ({}), is intact",
                dir.display()
            ),
            None => "no checkpoint was written yet".to_string(),
        },
        Err(e) => format!("the checkpoints cannot be listed: {e:#}"),
    };
    anyhow::anyhow!(
        "{}: stopped at step {step}: {count} consecutive steps had a NaN or infinite loss or gradient and were skipped; {newest}. A lower learning rate may help",
        run_dir.display()
    )
}

/// Loads the newest usable checkpoint of `run_dir` into `model` and `optimizer`. A
/// newer checkpoint that is damaged (missing file, checksum mismatch, unreadable
/// record or state) is reported on stderr and the previous one is tried.
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
    let folders = checkpoint_folders(run_dir)?;
    let mut damaged = Vec::new();
    for (_, dir) in folders.iter().rev() {
        match load_checkpoint(dir, model.clone(), optimizer.clone(), device) {
            Ok(loaded) => {
                if !damaged.is_empty() {
                    eprintln!(
                        "warning: resuming from the older checkpoint {}",
                        dir.display()
                    );
                }
                return Ok(loaded);
            }
            Err(error) => {
                let reason = format!("{error:#}");
                eprintln!(
                    "warning: checkpoint {} is damaged and is skipped: {reason}",
                    dir.display()
                );
                damaged.push(reason);
            }
        }
    }
    if damaged.is_empty() {
        anyhow::bail!(
            "{}: no checkpoint to resume from",
            checkpoints_dir(run_dir).display()
        );
    }
    anyhow::bail!(
        "{}: no usable checkpoint ({} damaged: {})",
        checkpoints_dir(run_dir).display(),
        damaged.len(),
        damaged.join("; ")
    )
}

fn load_checkpoint<B, M, O, S>(
    dir: &Path,
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
    let state_path = dir.join(STATE_FILE);
    if !state_path.is_file() {
        anyhow::bail!("no {STATE_FILE}");
    }
    verify_checksums(dir)?;
    let damaged = |file: &str| format!("checkpoint file {} is damaged", dir.join(file).display());
    let model = model
        .load_file(dir.join("model"), &recorder(), device)
        .with_context(|| damaged("model.mpk"))?;
    let optimizer_record = recorder()
        .load(dir.join("optimizer"), device)
        .with_context(|| damaged("optimizer.mpk"))?;
    let optimizer = optimizer.load_record(optimizer_record);
    let state: S = serde_json::from_str(
        &std::fs::read_to_string(&state_path).with_context(|| state_path.display().to_string())?,
    )
    .with_context(|| damaged(STATE_FILE))?;
    Ok((model, optimizer, state))
}

pub(crate) fn sha256_of(path: &Path) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Syncs every file of `dir` to disk and records its SHA-256 in `checksums.json`.
fn write_checksums(dir: &Path) -> anyhow::Result<()> {
    let mut sums = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        std::fs::File::open(&path)?.sync_all()?;
        sums.insert(name, sha256_of(&path)?);
    }
    let path = dir.join(CHECKSUMS_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(&sums)?)?;
    std::fs::File::open(&path)?.sync_all()?;
    Ok(())
}

/// Checks the files listed in `checksums.json`; checkpoints written before checksums
/// existed have none and are accepted as they are.
fn verify_checksums(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join(CHECKSUMS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    let sums: BTreeMap<String, String> = serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid checksum list", path.display()))?;
    for (name, expected) in sums {
        let file = dir.join(&name);
        if sha256_of(&file)? != expected {
            anyhow::bail!(
                "checkpoint file {} is damaged (checksum mismatch)",
                file.display()
            );
        }
    }
    Ok(())
}
