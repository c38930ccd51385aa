//! Group advantages and generator rewards on the device: one unit per group. Groups
//! hold G_m = 4–16 masks or G_p = 8–32 answers, so a unit walking its group is as fast
//! as anything cleverer, and the whole step is one launch.

use cubecl::prelude::*;

/// `advantages[i] = (r_i − mean) / (std + 1e-6)` (or `r_i − mean` when `scale == 0`)
/// within each consecutive group of `group_size`; all-equal groups get 0 and keep 0.
#[cube(launch)]
pub fn group_advantages_kernel<F: Float>(
    rewards: &Tensor<F>,
    advantages: &mut Tensor<F>,
    keep: &mut Tensor<F>,
    group_size: u32,
    scale: u32,
    #[define(F)] _dtype: StorageType,
) {
    let size = group_size as usize;
    let group = ABSOLUTE_POS;
    if group >= rewards.len() / size {
        terminate!();
    }
    let start = group * size;
    let mut sum = 0.0f32;
    let mut lowest = f32::cast_from(rewards[start]);
    let mut highest = lowest;
    for i in 0..size {
        let r = f32::cast_from(rewards[start + i]);
        sum += r;
        lowest = lowest.min(r);
        highest = highest.max(r);
    }
    let mean = sum / (size as f32);
    let mut squares = 0.0f32;
    for i in 0..size {
        let d = f32::cast_from(rewards[start + i]) - mean;
        squares += d * d;
    }
    // Population standard deviation, as in verl's GRPO.
    let std = (squares / (size as f32)).sqrt();
    let kept = highest > lowest;
    for i in 0..size {
        let mut a = 0.0f32;
        let mut k = f32::new(0.0);
        if kept {
            k = f32::new(1.0);
            a = f32::cast_from(rewards[start + i]) - mean;
            if scale != 0 {
                a = a / (std + 1e-6);
            }
        }
        advantages[start + i] = F::cast_from(a);
        keep[start + i] = F::cast_from(k);
    }
}

/// `reward[t] = 0` if the predictor group `t` never answered right, else `1 − acc`.
#[cube(launch)]
pub fn generator_rewards_kernel<F: Float>(
    predictor_rewards: &Tensor<F>,
    rewards: &mut Tensor<F>,
    answers_per_mask: u32,
    #[define(F)] _dtype: StorageType,
) {
    let task = ABSOLUTE_POS;
    if task >= rewards.len() {
        terminate!();
    }
    let size = answers_per_mask as usize;
    let mut correct = 0.0f32;
    for i in 0..size {
        correct += f32::cast_from(predictor_rewards[task * size + i]);
    }
    let accuracy = correct / (size as f32);
    let mut reward = 0.0f32;
    if accuracy > 0.0 {
        reward = 1.0 - accuracy;
    }
    rewards[task] = F::cast_from(reward);
}
