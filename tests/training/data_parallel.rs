//! Data parallel on the CPU: two replicas sharing the one ndarray device, their
//! gradients summed by burn-collective, must take the step one device takes on the
//! combined batch, and a two-device run must resume from its checkpoint.
//!
//! burn-collective is one group per backend type per process, so these tests take a
//! lock and never run at the same time.

use std::sync::Mutex;

use burn::backend::Autodiff;
use burn::optim::SgdConfig;
use pretrainzero::models::Decoder;
use pretrainzero::optim::{run_concurrently, BackwardShards};
use pretrainzero::parallel::PeerGroup;
use pretrainzero::train::trainer::run_training_on_devices;
use pretrainzero::update::policy_update::{update_policy, update_policy_on_peer};
use pretrainzero::update::{
    LossAggregation, PolicyLossConfig, PolicySample, UpdateConfig, UpdateStats,
};

use crate::common::ScratchDir;
use crate::rl_loop::{killed_after_step_1, small_config};
use crate::sharded_backward::{ids, max_abs_diff, probe_logits, small_model};
use crate::{metrics, Cpu};

static ONE_COLLECTIVE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn samples(count: usize) -> Vec<PolicySample> {
    (0..count)
        .map(|i| PolicySample {
            prompt_ids: ids(i / 4, 5 + i / 4),
            response_ids: ids(100 + i, 1 + i % 4),
            advantage: if i % 3 == 0 { 1.5 } else { -0.75 },
        })
        .collect()
}

fn update_config(mini_batches: usize) -> UpdateConfig {
    UpdateConfig {
        loss: PolicyLossConfig::default(),
        aggregation: LossAggregation::TokenMean,
        ppo_mini_batches: mini_batches,
        micro_batch_size: 3,
        max_grad_norm: 1e9,
        reward_step_budget_bytes: 1 << 20,
    }
}

/// The update of `samples` on one device and on two replicas: (logits, stats) of
/// each, the two replicas' logits separately.
fn one_and_two_devices(
    samples: &[PolicySample],
    config: &UpdateConfig,
) -> (
    (Vec<f32>, UpdateStats),
    Vec<(Vec<f32>, UpdateStats)>,
    Vec<f32>,
) {
    let device = Default::default();
    let base = small_model();
    let initial = probe_logits(&base);
    let sgd = || SgdConfig::new().init::<Autodiff<Cpu>, Decoder<Autodiff<Cpu>>>();
    let single = {
        let (model, stats) = update_policy(
            base.clone(),
            &mut sgd(),
            None,
            samples,
            config,
            BackwardShards::new(1),
            0.3,
            &device,
        );
        (probe_logits(&model), stats)
    };
    let group = PeerGroup::<Cpu>::register(&[device, device]).unwrap();
    let replicas = run_concurrently(group.syncs.clone(), |sync| {
        let (model, stats) = update_policy_on_peer(
            base.clone(),
            &mut sgd(),
            None,
            samples,
            config,
            BackwardShards::new(1),
            0.3,
            &device,
            sync,
        );
        (probe_logits(&model), stats)
    });
    group.finish().unwrap();
    (single, replicas, initial)
}

fn assert_same_stats(one: &UpdateStats, two: &UpdateStats) {
    assert_eq!(one.optimizer_steps, two.optimizer_steps);
    assert_eq!(one.response_tokens, two.response_tokens);
    assert_eq!(one.nonfinite_steps, two.nonfinite_steps);
    for (name, a, b) in [
        ("loss", one.loss, two.loss),
        ("grad_norm", one.grad_norm, two.grad_norm),
        ("entropy", one.entropy, two.entropy),
        ("clip_low", one.clip_low_fraction, two.clip_low_fraction),
        ("clip_high", one.clip_high_fraction, two.clip_high_fraction),
    ] {
        assert!(
            (a - b).abs() < 1e-5 * a.abs().max(1.0),
            "{name}: {a} vs {b}"
        );
    }
}

/// The replicas' logits after the update are the one-device logits, up to f32
/// rounding measured against how far the update moved them. The two runs split the
/// batch into different micro-batches, so their matrix products have different
/// shapes and the CPU kernels sum in a different order (1.8e-5 of the movement on an
/// AVX2 AMD EPYC, less on another x86 machine); a lost or double-counted share would
/// miss by a large fraction of the movement, not by a few parts in a hundred thousand.
fn assert_same_step(single: &[f32], replica: &[f32], initial: &[f32]) {
    let moved = max_abs_diff(single, initial);
    let diff = max_abs_diff(single, replica);
    assert!(
        diff < 1e-4 * moved,
        "logits after the update differ by {diff} (the update moved them by {moved})"
    );
}

#[test]
fn one_update_on_two_devices_equals_one_update_on_one_device() {
    let _one = ONE_COLLECTIVE_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // 13 sequences in one mini-batch: replica shares of 7 and 6, micro-batches of 3.
    let samples = samples(13);
    let ((single, single_stats), replicas, initial) =
        one_and_two_devices(&samples, &update_config(1));
    assert_eq!(single_stats.optimizer_steps, 1);
    assert!(
        max_abs_diff(&single, &initial) > 1e-3,
        "the update must move the weights for the comparison to mean anything"
    );
    // Both replicas took the same step...
    assert_eq!(replicas[0].0, replicas[1].0, "the replicas diverged");
    // ...which is the one-device step.
    for (logits, stats) in &replicas {
        assert_same_stats(&single_stats, stats);
        assert_same_step(&single, logits, &initial);
    }
}

#[test]
fn a_replica_with_an_empty_share_still_takes_every_step() {
    let _one = ONE_COLLECTIVE_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // Three mini-batches of one sequence: the second replica never has a share, and
    // must still take part in every all-reduce (or the group would hang).
    let samples = samples(3);
    let ((single, single_stats), replicas, initial) =
        one_and_two_devices(&samples, &update_config(3));
    assert_eq!(single_stats.optimizer_steps, 3);
    assert_eq!(replicas[0].0, replicas[1].0, "the replicas diverged");
    for (logits, stats) in &replicas {
        assert_same_stats(&single_stats, stats);
        assert_same_step(&single, logits, &initial);
    }
}

#[test]
fn a_two_device_run_resumes_from_its_checkpoint() {
    let _one = ONE_COLLECTIVE_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let devices = [device, device];
    let scratch = ScratchDir::new("rl-two-devices");
    let full = scratch.0.join("full");
    run_training_on_devices::<Cpu>(Some(small_config("random-span", 3)), &full, &devices).unwrap();
    let expected = metrics(&full);
    assert_eq!(expected.len(), 3);
    // Both replicas rolled out: the step's paragraphs were shared between them.
    assert_eq!(expected[0]["paragraphs"], 2);

    let interrupted = scratch.0.join("interrupted");
    killed_after_step_1(&full, &interrupted, &expected[0]);
    run_training_on_devices::<Cpu>(None, &interrupted, &devices).unwrap();
    let resumed = metrics(&interrupted);
    assert_eq!(resumed.len(), 3);
    for step in 1..3 {
        for key in [
            "paragraphs",
            "predictor_rollouts",
            "samples",
            "optimizer_steps",
            "lr",
        ] {
            assert_eq!(
                resumed[step][key],
                expected[step][key],
                "step {} {key}",
                step + 1
            );
        }
        for key in ["loss", "grad_norm"] {
            let (a, b) = (
                resumed[step][key].as_f64().unwrap(),
                expected[step][key].as_f64().unwrap(),
            );
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1e-3),
                "step {} {key}: {a} vs {b}",
                step + 1
            );
        }
    }
    assert!(interrupted.join("final/model.safetensors").exists());
}
