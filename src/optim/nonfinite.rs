//! Numeric faults: an optimizer step whose loss or gradient is NaN or infinite is
//! skipped (applying it would poison the weights and AdamW's moments for good), and
//! a run of such steps stops the run, since it has diverged.

/// Counts consecutive steps that met a non-finite loss or gradient.
#[derive(Debug, Clone)]
pub struct NonfiniteGuard {
    limit: usize,
    consecutive: usize,
}

impl NonfiniteGuard {
    /// Stops after `limit` (at least 1) consecutive faulty steps.
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            consecutive: 0,
        }
    }

    /// Records one step; `Err(count)` once `count` = the limit of consecutive
    /// faulty steps is reached.
    pub fn observe(&mut self, faulty: bool) -> Result<(), usize> {
        self.consecutive = if faulty { self.consecutive + 1 } else { 0 };
        if self.consecutive >= self.limit {
            Err(self.consecutive)
        } else {
            Ok(())
        }
    }
}

/// Whether an optimizer step with this loss and gradient norm may be applied.
pub fn is_finite_step(loss: f64, grad_norm: f64) -> bool {
    loss.is_finite() && grad_norm.is_finite()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_consecutive_faults_count() {
        let mut guard = NonfiniteGuard::new(3);
        assert_eq!(guard.observe(true), Ok(()));
        assert_eq!(guard.observe(true), Ok(()));
        assert_eq!(guard.observe(false), Ok(()));
        assert_eq!(guard.observe(true), Ok(()));
        assert_eq!(guard.observe(true), Ok(()));
        assert_eq!(guard.observe(true), Err(3));
        assert!(is_finite_step(1.0, 2.0));
        assert!(!is_finite_step(f64::NAN, 2.0));
        assert!(!is_finite_step(1.0, f64::INFINITY));
    }
}
