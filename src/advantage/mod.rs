//! Group-relative advantages (DESIGN.md §5): `(r − mean) / (std + 1e-6)` within each
//! group (masks of one paragraph; answers to one mask), or `r − mean` with
//! `scale = false` (Dr.GRPO). Groups whose rewards are all equal carry no signal and
//! are dropped (DAPO dynamic filtering).
//!
//! This is the host reference; the CubeCL kernel of the kernels crate computes the
//! same on the device.

#[derive(Debug, Clone, PartialEq)]
pub struct GroupAdvantages {
    /// One per sample, 0 for dropped samples.
    pub advantages: Vec<f32>,
    /// Whether the sample's group was kept.
    pub keep: Vec<bool>,
    pub groups: usize,
    pub zero_variance_groups: usize,
}

/// `group_sizes` partitions `rewards` into consecutive groups.
pub fn group_advantages(rewards: &[f32], group_sizes: &[usize], scale: bool) -> GroupAdvantages {
    assert_eq!(
        group_sizes.iter().sum::<usize>(),
        rewards.len(),
        "groups must cover the rewards"
    );
    let mut advantages = vec![0.0; rewards.len()];
    let mut keep = vec![false; rewards.len()];
    let mut zero_variance_groups = 0;
    let mut start = 0;
    for &size in group_sizes {
        let group = &rewards[start..start + size];
        let all_equal = group.iter().all(|&r| r == group[0]);
        if size < 2 || all_equal {
            zero_variance_groups += 1;
        } else {
            let mean = group.iter().sum::<f32>() / size as f32;
            // Population standard deviation, as in verl's GRPO.
            let std = (group.iter().map(|r| (r - mean).powi(2)).sum::<f32>() / size as f32).sqrt();
            for (i, &r) in group.iter().enumerate() {
                advantages[start + i] = if scale {
                    (r - mean) / (std + 1e-6)
                } else {
                    r - mean
                };
                keep[start + i] = true;
            }
        }
        start += size;
    }
    GroupAdvantages {
        advantages,
        keep,
        groups: group_sizes.len(),
        zero_variance_groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_per_group_and_zero_variance_dropped() {
        // Group 1: [1, 0, 0, 0] mean 0.25, std sqrt(3)/4; group 2 all equal.
        let out = group_advantages(&[1.0, 0.0, 0.0, 0.0, 1.0, 1.0], &[4, 2], true);
        let std = 3f32.sqrt() / 4.0;
        let expected = [0.75 / (std + 1e-6), -0.25 / (std + 1e-6)];
        assert!((out.advantages[0] - expected[0]).abs() < 1e-5);
        assert!((out.advantages[1] - expected[1]).abs() < 1e-5);
        assert_eq!(out.keep, vec![true, true, true, true, false, false]);
        assert_eq!(out.advantages[4..], [0.0, 0.0]);
        assert_eq!((out.groups, out.zero_variance_groups), (2, 1));
    }

    #[test]
    fn dr_grpo_does_not_divide() {
        let out = group_advantages(&[0.875, 0.0], &[2], false);
        assert_eq!(out.advantages, vec![0.4375, -0.4375]);
    }

    #[test]
    fn singleton_groups_carry_no_signal() {
        let out = group_advantages(&[1.0], &[1], true);
        assert_eq!(out.keep, vec![false]);
        assert_eq!(out.zero_variance_groups, 1);
    }
}
