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
