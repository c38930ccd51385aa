//! Group-relative advantages (DESIGN.md §5): `(r − mean) / (std + 1e-6)` within each
//! group (masks of one paragraph; answers to one mask), or `r − mean` with
//! `scale = false` (Dr.GRPO). Groups whose rewards are all equal carry no signal and
//! are dropped (DAPO dynamic filtering).
//!
//! The loop calls [`device_group_advantages`] and [`device_generator_rewards`]: the
//! CubeCL kernels of the kernels crate on WGPU and CUDA, plain tensor ops on the CPU.
//! [`group_advantages`] is the host reference (and handles unequal group sizes).

use burn::prelude::*;

use crate::kernels::RewardStepBackend;

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

/// Advantages of consecutive groups of `group_size` rewards, computed on `device`.
pub fn device_group_advantages<B: RewardStepBackend>(
    rewards: &[f32],
    group_size: usize,
    scale: bool,
    device: &B::Device,
) -> GroupAdvantages {
    let groups = rewards.len() / group_size.max(1);
    if rewards.is_empty() {
        return GroupAdvantages {
            advantages: Vec::new(),
            keep: Vec::new(),
            groups: 0,
            zero_variance_groups: 0,
        };
    }
    let rewards = Tensor::<B, 1>::from_floats(rewards, device);
    let (advantages, keep) = crate::kernels::group_advantages(rewards, group_size, scale);
    let keep: Vec<bool> = to_host(keep).into_iter().map(|k| k > 0.5).collect();
    // A single-member group has no spread either; the kernel already drops it.
    let zero_variance_groups = keep.chunks(group_size).filter(|group| !group[0]).count();
    GroupAdvantages {
        advantages: to_host(advantages),
        keep,
        groups,
        zero_variance_groups,
    }
}

/// Generator reward of each mask from its `answers_per_mask` predictor rewards
/// (`0` if none was right, else `1 − acc`), computed on `device`.
pub fn device_generator_rewards<B: RewardStepBackend>(
    predictor_rewards: &[f32],
    answers_per_mask: usize,
    device: &B::Device,
) -> Vec<f32> {
    if predictor_rewards.is_empty() {
        return Vec::new();
    }
    let rewards = Tensor::<B, 1>::from_floats(predictor_rewards, device);
    to_host(crate::kernels::generator_rewards(rewards, answers_per_mask))
}

fn to_host<B: Backend>(t: Tensor<B, 1>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().expect("f32 data")
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

    #[test]
    fn device_path_matches_the_host_reference() {
        type Cpu = burn::backend::NdArray<f32>;
        let device = Default::default();
        let rewards = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0, 1.0, 0.0];
        let host = group_advantages(&rewards, &[4, 4, 4], true);
        let on_device = device_group_advantages::<Cpu>(&rewards, 4, true, &device);
        assert_eq!(on_device.keep, host.keep);
        assert_eq!((on_device.groups, on_device.zero_variance_groups), (3, 1));
        for (a, b) in on_device.advantages.iter().zip(&host.advantages) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        // acc 0 → 0; 1 of 4 → 3/4; all 4 → 0.
        let predictor = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        assert_eq!(
            device_generator_rewards::<Cpu>(&predictor, 4, &device),
            vec![0.0, 0.75, 0.0]
        );
    }
}
