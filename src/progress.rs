//! The progress bar of the training loops: steps done / total, elapsed and ETA, and a
//! message with the headline numbers.

use indicatif::{ProgressBar, ProgressStyle};

pub fn step_progress(total_steps: usize, done_steps: usize) -> ProgressBar {
    let bar = ProgressBar::new(total_steps as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
        )
        .expect("valid template"),
    );
    bar.set_position(done_steps as u64);
    bar
}

/// With `PRETRAINZERO_TRACE_PHASES=1`, the training loops print one stderr line as
/// each phase of a step starts (`phase rollout 3`: the rollout of step 3), so that a
/// reliability test can kill a run inside a chosen phase.
pub fn trace_phase(phase: &str, step: usize) {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ENABLED
        .get_or_init(|| std::env::var_os("PRETRAINZERO_TRACE_PHASES").is_some_and(|v| v == "1"))
    {
        eprintln!("phase {phase} {step}");
    }
}
