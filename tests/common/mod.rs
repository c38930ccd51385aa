//! The one gate through which tests read `../shared/data` (the fixtures with
//! reference outputs computed by PyTorch transformers). When the folder is absent,
//! tests that need it print why and return early instead of failing.
#![allow(dead_code)]

use std::path::PathBuf;

/// `<repo>/../shared/data`, or `$PRETRAINZERO_SHARED_DATA` when set.
pub fn shared_data_root() -> PathBuf {
    match std::env::var_os("PRETRAINZERO_SHARED_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
    }
}

/// The path of `relative` inside the shared data, or `None` (with a message on
/// stderr naming what is missing) when it is not there.
pub fn shared_data(relative: &str) -> Option<PathBuf> {
    let path = shared_data_root().join(relative);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: shared fixture {} is absent (set PRETRAINZERO_SHARED_DATA to the shared data folder)",
            path.display()
        );
        None
    }
}

/// Like `shared_data`, but returns from the calling test when the fixture is absent.
#[macro_export]
macro_rules! require_shared {
    ($relative:expr) => {
        match $crate::common::shared_data($relative) {
            Some(path) => path,
            None => return,
        }
    };
}

/// A fresh scratch folder under the target directory, removed when dropped.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(name: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Self(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
