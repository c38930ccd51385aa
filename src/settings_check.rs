//! Valid ranges of numeric settings, checked in one place before any work starts.
//!
//! A NaN learning rate, a `beta2` above 1 or a negative clip range does not fail
//! loudly: the run trains, exports a broken model and exits 0. Every numeric key of
//! the run configuration and every numeric flag of `pretrain` goes through a
//! [`RangeCheck`], which collects all violations and reports them together, each
//! with the key's name, the value and the range it must lie in.

/// Collects range violations of named settings.
#[derive(Debug, Default)]
pub struct RangeCheck {
    violations: Vec<String>,
}

impl RangeCheck {
    pub fn new() -> Self {
        Self::default()
    }

    fn violation(&mut self, key: &str, value: impl std::fmt::Display, range: &str) {
        self.violations
            .push(format!("{key} = {value}: must be {range}"));
    }

    /// A finite number > 0.
    pub fn positive(&mut self, key: &str, value: f64) -> &mut Self {
        if !(value.is_finite() && value > 0.0) {
            self.violation(key, value, "a finite number > 0");
        }
        self
    }

    /// A finite number >= 0.
    pub fn non_negative(&mut self, key: &str, value: f64) -> &mut Self {
        if !(value.is_finite() && value >= 0.0) {
            self.violation(key, value, "a finite number >= 0");
        }
        self
    }

    /// In [0, 1].
    pub fn unit_closed(&mut self, key: &str, value: f64) -> &mut Self {
        if !(0.0..=1.0).contains(&value) {
            self.violation(key, value, "in [0, 1]");
        }
        self
    }

    /// In [0, 1): a fraction that must leave something on the other side, or a
    /// moment decay (1 would never forget).
    pub fn unit_half_open(&mut self, key: &str, value: f64) -> &mut Self {
        if !(0.0..1.0).contains(&value) {
            self.violation(key, value, "in [0, 1)");
        }
        self
    }

    /// In (0, 1]: a probability mass or share that must keep something.
    pub fn unit_positive(&mut self, key: &str, value: f64) -> &mut Self {
        if !(value > 0.0 && value <= 1.0) {
            self.violation(key, value, "in (0, 1]");
        }
        self
    }

    /// A count >= 1.
    pub fn at_least_one(&mut self, key: &str, value: usize) -> &mut Self {
        if value == 0 {
            self.violation(key, value, "at least 1");
        }
        self
    }

    /// `low <= high` for two related counts.
    pub fn ordered(&mut self, low: (&str, usize), high: (&str, usize)) -> &mut Self {
        if low.1 > high.1 {
            self.violation(high.0, high.1, &format!("at least {} ({})", low.0, low.1));
        }
        self
    }

    /// Ok, or one error listing every violation, introduced by `context`.
    pub fn finish(&mut self, context: &str) -> anyhow::Result<()> {
        if self.violations.is_empty() {
            return Ok(());
        }
        let list = std::mem::take(&mut self.violations).join("\n  ");
        anyhow::bail!("{context}: invalid settings:\n  {list}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_values_inside_their_ranges() {
        RangeCheck::new()
            .positive("a", 1e-9)
            .non_negative("b", 0.0)
            .unit_closed("c", 1.0)
            .unit_half_open("d", 0.0)
            .unit_positive("e", 1.0)
            .at_least_one("f", 1)
            .ordered(("g", 3), ("h", 3))
            .finish("test")
            .unwrap();
    }

    #[test]
    fn lists_every_violation_with_its_key_and_range() {
        let error = RangeCheck::new()
            .positive("optim.lr", f64::NAN)
            .positive("pretrain.lr", -1.0)
            .non_negative("optim.max_grad_norm", f64::INFINITY)
            .unit_closed("optim.min_lr_ratio", 1.5)
            .unit_half_open("optim.beta2", 1.0)
            .unit_positive("rollout.top_p", 0.0)
            .at_least_one("policy.answers_per_mask", 0)
            .ordered(("data.min_words", 20), ("data.max_words", 10))
            .finish("run.toml")
            .unwrap_err()
            .to_string();
        for expected in [
            "run.toml: invalid settings:",
            "optim.lr = NaN: must be a finite number > 0",
            "pretrain.lr = -1: must be a finite number > 0",
            "optim.max_grad_norm = inf: must be a finite number >= 0",
            "optim.min_lr_ratio = 1.5: must be in [0, 1]",
            "optim.beta2 = 1: must be in [0, 1)",
            "rollout.top_p = 0: must be in (0, 1]",
            "policy.answers_per_mask = 0: must be at least 1",
            "data.max_words = 10: must be at least data.min_words (20)",
        ] {
            assert!(
                error.contains(expected),
                "missing `{expected}` in:\n{error}"
            );
        }
        assert_eq!(error.lines().count(), 9, "{error}");
    }
}
