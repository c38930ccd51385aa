//! Per-step JSONL logs (`metrics.jsonl`, `examples.jsonl`) kept consistent with the
//! checkpoints.
//!
//! A run killed after step 57 with its newest checkpoint at step 50 has logged steps
//! 51–57 that the resumed run will compute again. Appending would log them twice
//! (and a kill in the middle of a write leaves a torn last line), so on resume the
//! log is cut back to the rows of steps up to the checkpoint's, through a temporary
//! file renamed into place, before appending continues.

use std::fs::File;
use std::path::Path;

use anyhow::Context;

/// Opens `path` for appending the rows of steps after `resumed_step`: rows with a
/// larger `step`, and everything from the first line that is not a JSON object with
/// an integer `step`, are dropped first. `resumed_step` 0 starts an empty log.
pub fn open_step_log(path: &Path, resumed_step: usize) -> anyhow::Result<File> {
    let kept = match std::fs::read_to_string(path) {
        Ok(text) => rows_up_to(&text, resumed_step),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    let tmp = path.with_extension("jsonl.tmp");
    std::fs::write(&tmp, &kept).with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot replace", path.display()))?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("{}: cannot open for appending", path.display()))
}

/// The leading lines of `text` (each with its newline) whose `step` is at most
/// `last_step`.
fn rows_up_to(text: &str, last_step: usize) -> String {
    let mut kept = String::new();
    for line in text.split_inclusive('\n') {
        if !line.ends_with('\n') {
            break; // torn by a kill mid-write
        }
        let step = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|row| row.get("step").and_then(|s| s.as_u64()));
        match step {
            Some(step) if step as usize <= last_step => kept.push_str(line),
            _ => break,
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn keeps_rows_up_to_the_checkpoint_and_drops_repeats_and_torn_lines() {
        let text = "{\"step\":1,\"a\":1}\n{\"step\":2}\n{\"step\":2,\"b\":2}\n{\"step\":3}\n{\"st";
        assert_eq!(
            rows_up_to(text, 2),
            "{\"step\":1,\"a\":1}\n{\"step\":2}\n{\"step\":2,\"b\":2}\n"
        );
        assert_eq!(
            rows_up_to(text, 3),
            "{\"step\":1,\"a\":1}\n{\"step\":2}\n{\"step\":2,\"b\":2}\n{\"step\":3}\n"
        );
        assert_eq!(rows_up_to(text, 0), "");
        // A garbage line ends the trustworthy prefix.
        assert_eq!(
            rows_up_to("{\"step\":1}\nnot json\n{\"step\":2}\n", 5),
            "{\"step\":1}\n"
        );
    }

    #[test]
    fn resumed_log_appends_after_the_kept_rows() {
        let dir = std::env::temp_dir().join(format!("step-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.jsonl");
        std::fs::write(&path, "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n").unwrap();
        let mut file = open_step_log(&path, 2).unwrap();
        writeln!(file, "{{\"step\":3,\"again\":true}}").unwrap();
        drop(file);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"step\":1}\n{\"step\":2}\n{\"step\":3,\"again\":true}\n"
        );
        assert!(!dir.join("metrics.jsonl.tmp").exists());
        open_step_log(&path, 0).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
