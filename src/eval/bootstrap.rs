//! Percentile bootstrap intervals of a mean: resample the items with replacement,
//! recompute the mean, take the 2.5 % and 97.5 % quantiles. Seeded, so a report is
//! reproducible.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A mean with its 95 % bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MeanInterval {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

impl std::fmt::Display for MeanInterval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.4} [{:.4}, {:.4}]", self.mean, self.low, self.high)
    }
}

/// The mean of `values` and its 95 % percentile-bootstrap interval over `resamples`
/// resamples. Empty input gives NaN.
pub fn bootstrap_mean(values: &[f64], resamples: usize, seed: u64) -> MeanInterval {
    let n = values.len();
    if n == 0 {
        return MeanInterval {
            mean: f64::NAN,
            low: f64::NAN,
            high: f64::NAN,
        };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let quantile = |q: f64| means[((means.len() - 1) as f64 * q).round() as usize];
    MeanInterval {
        mean,
        low: quantile(0.025),
        high: quantile(0.975),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_values_have_a_zero_width_interval() {
        let interval = bootstrap_mean(&[0.25; 10], 200, 1);
        assert_eq!(
            (interval.mean, interval.low, interval.high),
            (0.25, 0.25, 0.25)
        );
    }

    #[test]
    fn interval_of_a_proportion_matches_the_normal_approximation() {
        // 400 items, half right: the standard error is sqrt(0.25 / 400) = 0.025, so
        // the 95 % interval is about 0.5 ± 0.049.
        let values: Vec<f64> = (0..400).map(|i| (i % 2) as f64).collect();
        let interval = bootstrap_mean(&values, 2000, 7);
        assert_eq!(interval.mean, 0.5);
        assert!((interval.low - 0.451).abs() < 0.01, "{interval}");
        assert!((interval.high - 0.549).abs() < 0.01, "{interval}");
        assert_eq!(bootstrap_mean(&values, 2000, 7), interval, "seeded");
    }
}
