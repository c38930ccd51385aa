//! One live run per run folder: `RUN_DIR/run.lock`, held with an OS file lock for
//! the life of the run. The OS releases it when the process ends in any way (kill -9
//! included), so a stale lock never blocks a resume; a second `train` or `pretrain`
//! on a folder that a live run holds is refused before it touches anything.

use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::Path;

use anyhow::Context;

const LOCK_FILE: &str = "run.lock";

/// Held while the run lives; dropping it releases the folder.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Creates `run_dir` if needed and takes its lock.
    pub fn acquire(run_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(run_dir)
            .with_context(|| format!("{}: cannot create the run folder", run_dir.display()))?;
        let path = run_dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| {
                format!(
                    "{}: cannot open (is the run folder writable?)",
                    path.display()
                )
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                anyhow::bail!(
                    "{}: another live run holds this run folder ({}); wait for it to end or choose another folder",
                    run_dir.display(),
                    holder.trim()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("{}: cannot lock", path.display()))
            }
        }
        file.set_len(0)?;
        write!(file, "pid {}", std::process::id())
            .with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_folder_is_refused_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("run-lock-{}", std::process::id()));
        let first = RunLock::acquire(&dir).unwrap();
        let error = RunLock::acquire(&dir).unwrap_err().to_string();
        assert!(
            error.contains("another live run holds this run folder"),
            "{error}"
        );
        assert!(
            error.contains(&format!("pid {}", std::process::id())),
            "{error}"
        );
        drop(first);
        RunLock::acquire(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
