//! The reward-step kernels against independent oracles:
//! - forward values against an f64 host computation written out below;
//! - gradients against burn's autodiff of the plain-tensor reference on the CPU
//!   (not against our own backward formula);
//! - advantages and generator rewards against hand-derived numbers and an f64 host loop.
//!
//! Data comes from a fresh seed on every run (printed, so a failure can be replayed
//! with `REWARD_STEP_SEED=<seed>`). The CPU path (ndarray, the reference) always runs;
//! the CubeCL path runs on WGPU when an adapter exists (Mesa's software Vulkan driver
//! in CI) and on CUDA when built with `--features cuda` and a GPU is present; without
//! them the tests say SKIPPED.

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use burn::tensor::{DType, Distribution, FloatDType};
use pretrainzero_kernels::{
    generator_rewards, group_advantages, masked_token_logprob_entropy, reference,
    RewardStepBackend, RowChunking,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Cpu = NdArray<f32>;

fn fresh_seed() -> u64 {
    let seed = std::env::var("REWARD_STEP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("REWARD_STEP_SEED={seed}");
    seed
}

/// One test case: logits, targets and mask on the host.
struct Case {
    rows: usize,
    vocab: usize,
    logits: Vec<f32>,
    targets: Vec<i64>,
    mask: Vec<f32>,
}

impl Case {
    /// Logits uniform in [−8, 8]; about a fifth of the rows masked out.
    fn random(rows: usize, vocab: usize, rng: &mut StdRng) -> Self {
        let logits = (0..rows * vocab)
            .map(|_| rng.random_range(-8.0..8.0))
            .collect();
        let targets = (0..rows)
            .map(|_| rng.random_range(0..vocab as i64))
            .collect();
        let mask = (0..rows)
            .map(|r| {
                if r > 0 && rng.random_bool(0.2) {
                    0.0
                } else {
                    1.0
                }
            })
            .collect();
        Self {
            rows,
            vocab,
            logits,
            targets,
            mask,
        }
    }

    /// Random rows, all kept, with `edit(v, logit, rng)` applied to every logit but the
    /// row's target.
    fn edited_off_target(
        rows: usize,
        vocab: usize,
        rng: &mut StdRng,
        mut edit: impl FnMut(usize, &mut f32, &mut StdRng),
    ) -> Self {
        let mut case = Self::random(rows, vocab, rng);
        for r in 0..rows {
            let target = case.targets[r] as usize;
            let row = &mut case.logits[r * vocab..(r + 1) * vocab];
            for (v, x) in row.iter_mut().enumerate() {
                if v != target {
                    edit(v, x, rng);
                }
            }
        }
        case.mask = vec![1.0; rows];
        case
    }

    /// Rows with logits of ±1e4 and −∞ entries (never at the target).
    fn extreme(rows: usize, vocab: usize, rng: &mut StdRng) -> Self {
        let mut case = Self::edited_off_target(rows, vocab, rng, |_, x, rng| {
            match rng.random_range(0..10) {
                0 => *x = f32::NEG_INFINITY,
                1 => *x = -1.0e4,
                2 => *x = 1.0e4 + rng.random_range(-3.0..3.0),
                _ => {}
            }
        });
        // The target sits near the top half of the time, deep below otherwise.
        for r in 0..rows {
            let target = case.targets[r] as usize;
            case.logits[r * vocab + target] = if r % 2 == 0 { 1.0e4 } else { -1.0e4 };
        }
        case
    }

    /// Rows that are −∞ but for the target and a few logits near the row's start, so
    /// that most units (on a GPU, whole planes) see no finite logit.
    fn sparse(rows: usize, vocab: usize, rng: &mut StdRng) -> Self {
        Self::edited_off_target(rows, vocab, rng, |v, x, _| {
            if v >= 5 {
                *x = f32::NEG_INFINITY;
            }
        })
    }

    fn tensors<B: Backend>(
        &self,
        device: &B::Device,
    ) -> (Tensor<B, 2>, Tensor<B, 1, Int>, Tensor<B, 1>) {
        (
            Tensor::from_data(
                TensorData::new(self.logits.clone(), [self.rows, self.vocab]),
                device,
            ),
            Tensor::from_data(TensorData::new(self.targets.clone(), [self.rows]), device),
            Tensor::from_data(TensorData::new(self.mask.clone(), [self.rows]), device),
        )
    }

    /// f64 host oracle: `(logprob, entropy)` per row, 0 on masked rows.
    fn host_forward(&self) -> Vec<(f64, f64)> {
        (0..self.rows)
            .map(|r| {
                if self.mask[r] == 0.0 {
                    return (0.0, 0.0);
                }
                let row: Vec<f64> = self.logits[r * self.vocab..(r + 1) * self.vocab]
                    .iter()
                    .map(|&x| x as f64)
                    .collect();
                let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let log_sum = row.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
                let logp = |x: f64| (x - max) - log_sum;
                let entropy: f64 = row
                    .iter()
                    .filter(|x| x.is_finite())
                    .map(|&x| -logp(x).exp() * logp(x))
                    .sum();
                (logp(row[self.targets[r] as usize]), entropy)
            })
            .collect()
    }

    /// f64 host gradient of `Σ w_lp · logprob + w_ent · entropy`.
    fn host_backward(&self, w_lp: &[f32], w_ent: &[f32]) -> Vec<f64> {
        let forward = self.host_forward();
        let mut grad = vec![0.0; self.rows * self.vocab];
        for r in 0..self.rows {
            if self.mask[r] == 0.0 {
                continue;
            }
            let row = &self.logits[r * self.vocab..(r + 1) * self.vocab];
            let max = row
                .iter()
                .map(|&x| x as f64)
                .fold(f64::NEG_INFINITY, f64::max);
            let log_sum = row
                .iter()
                .map(|&x| (x as f64 - max).exp())
                .sum::<f64>()
                .ln();
            let entropy = forward[r].1;
            for (v, &x) in row.iter().enumerate() {
                let logp = (x as f64 - max) - log_sum;
                let p = logp.exp();
                let mut g = -(w_lp[r] as f64) * p;
                if p > 0.0 {
                    g -= w_ent[r] as f64 * p * (logp + entropy);
                }
                if v == self.targets[r] as usize {
                    g += w_lp[r] as f64;
                }
                grad[r * self.vocab + v] = g;
            }
        }
        grad
    }
}

fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().unwrap()
}

fn assert_forward_close<B: RewardStepBackend>(case: &Case, device: &B::Device, what: &str) {
    let (logits, targets, mask) = case.tensors::<B>(device);
    let (lp, ent) = masked_token_logprob_entropy(logits, targets, mask, RowChunking::default());
    let (lp, ent) = (to_vec(lp), to_vec(ent));
    for (r, (host_lp, host_ent)) in case.host_forward().into_iter().enumerate() {
        let tol = |v: f64| 1e-5 * v.abs().max(1.0);
        assert!(
            (lp[r] as f64 - host_lp).abs() <= tol(host_lp),
            "{what}: row {r} logprob {} vs {host_lp}",
            lp[r]
        );
        assert!(
            (ent[r] as f64 - host_ent).abs() <= tol(host_ent),
            "{what}: row {r} entropy {} vs {host_ent}",
            ent[r]
        );
    }
}

/// Gradient of `Σ w_lp · logprob + w_ent · entropy` through `Autodiff<B>` (our backward).
fn kernel_gradient<B: RewardStepBackend>(
    case: &Case,
    w_lp: &[f32],
    w_ent: &[f32],
    logits_dtype: FloatDType,
    device: &B::Device,
) -> Vec<f32>
where
    Autodiff<B>: RewardStepBackend,
{
    let (logits, targets, mask) = case.tensors::<B>(device);
    let logits = Tensor::<Autodiff<B>, 2>::from_inner(logits.cast(logits_dtype)).require_grad();
    let targets = Tensor::<Autodiff<B>, 1, Int>::from_inner(targets);
    let mask = Tensor::<Autodiff<B>, 1>::from_inner(mask);
    let (lp, ent) =
        masked_token_logprob_entropy(logits.clone(), targets, mask, RowChunking::default());
    let weight = |w: &[f32]| {
        Tensor::<Autodiff<B>, 1>::from_inner(Tensor::<B, 1>::from_data(
            TensorData::new(w.to_vec(), [case.rows]),
            device,
        ))
    };
    let loss = (lp * weight(w_lp)).sum() + (ent * weight(w_ent)).sum();
    let grads = loss.backward();
    let grad = logits.grad(&grads).unwrap();
    assert_eq!(grad.dtype(), DType::from(logits_dtype), "gradient type");
    to_vec(grad)
}

/// The oracle: burn's own autodiff through the plain-tensor reference on the CPU.
fn autodiff_reference_gradient(case: &Case, w_lp: &[f32], w_ent: &[f32]) -> Vec<f32> {
    type B = Autodiff<Cpu>;
    let device = Default::default();
    let (logits, targets, mask) = case.tensors::<B>(&device);
    let logits = logits.require_grad();
    let (out, _) = reference::logprob_entropy_forward(logits.clone(), targets, mask);
    let rows = case.rows;
    let w = Tensor::<B, 2>::from_data(
        TensorData::new(
            w_lp.iter()
                .zip(w_ent)
                .flat_map(|(&a, &b)| [a, b])
                .collect::<Vec<_>>(),
            [rows, 2],
        ),
        &device,
    );
    let grads = (out * w).sum().backward();
    to_vec(logits.grad(&grads).unwrap())
}

fn weights(rows: usize, rng: &mut StdRng) -> (Vec<f32>, Vec<f32>) {
    (
        (0..rows).map(|_| rng.random_range(-2.0..2.0)).collect(),
        (0..rows).map(|_| rng.random_range(-2.0..2.0)).collect(),
    )
}

fn assert_all_close(found: &[f32], expected: impl Iterator<Item = f64>, tol: f64, what: &str) {
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!(
            (*f as f64 - e).abs() <= tol,
            "{what}: element {i}: {f} vs {e}"
        );
    }
}

/// Every check of one backend: forward on ordinary, odd-sized, single-row, masked and
/// extreme rows; gradients against autodiff of the reference and the f64 host formula;
/// row chunking; advantages.
fn check_backend<B: RewardStepBackend>(device: &B::Device, name: &str)
where
    Autodiff<B>: RewardStepBackend,
{
    let mut rng = StdRng::seed_from_u64(fresh_seed());
    // V not a multiple of the 256-unit block, N = 1, a Qwen3-sized row, masked rows;
    // V of 64 (most units, and on a GPU most planes, see no logit) and of 2 mod 4 (a
    // vector width of 2 where 4 is the widest load).
    for (rows, vocab) in [
        (1, 1000),
        (37, 1000),
        (16, 32_001),
        (3, 151_936),
        (4, 64),
        (5, 1002),
    ] {
        let case = Case::random(rows, vocab, &mut rng);
        assert_forward_close::<B>(&case, device, &format!("{name} random {rows}x{vocab}"));
    }
    let fully_masked = Case {
        mask: vec![0.0; 4],
        ..Case::random(4, 300, &mut rng)
    };
    assert_forward_close::<B>(&fully_masked, device, &format!("{name} fully masked"));
    let extreme = Case::extreme(6, 777, &mut rng);
    assert_forward_close::<B>(&extreme, device, &format!("{name} extreme"));
    let sparse = Case::sparse(3, 4096, &mut rng);
    assert_forward_close::<B>(&sparse, device, &format!("{name} sparse"));

    // Gradients: ordinary rows against autodiff of the reference, extreme rows
    // (where 0 · −∞ makes autodiff of the reference NaN) against the f64 formula.
    let case = Case::random(9, 1000, &mut rng);
    let (w_lp, w_ent) = weights(case.rows, &mut rng);
    let found = kernel_gradient::<B>(&case, &w_lp, &w_ent, FloatDType::F32, device);
    let oracle = autodiff_reference_gradient(&case, &w_lp, &w_ent);
    assert_all_close(
        &found,
        oracle.iter().map(|&v| v as f64),
        1e-4,
        &format!("{name} gradient"),
    );
    let (w_lp, w_ent) = weights(extreme.rows, &mut rng);
    let found = kernel_gradient::<B>(&extreme, &w_lp, &w_ent, FloatDType::F32, device);
    assert_all_close(
        &found,
        extreme.host_backward(&w_lp, &w_ent).into_iter(),
        1e-4,
        &format!("{name} extreme gradient"),
    );

    // Row chunking (here 1–2 rows per chunk) gives the same values.
    let case = Case::random(5, 1000, &mut rng);
    let (logits, targets, mask) = case.tensors::<B>(device);
    let (lp_whole, _) = masked_token_logprob_entropy(
        logits.clone(),
        targets.clone(),
        mask.clone(),
        RowChunking::default(),
    );
    let (lp_chunked, _) = masked_token_logprob_entropy(
        logits,
        targets,
        mask,
        RowChunking {
            budget_bytes: 2 * 1000 * 4,
        },
    );
    assert_all_close(
        &to_vec(lp_chunked),
        to_vec(lp_whole).into_iter().map(|v| v as f64),
        1e-5,
        &format!("{name}: chunked rows"),
    );

    check_advantages::<B>(device, name, &mut rng);
}

fn check_advantages<B: RewardStepBackend>(device: &B::Device, name: &str, rng: &mut StdRng) {
    // By hand: group [1, 0, 0, 0] has mean 1/4 and population std √3/4; [1, 1, 1, 1] is
    // dropped.
    let rewards = Tensor::<B, 1>::from_floats([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0], device);
    let (adv, keep) = group_advantages(rewards.clone(), 4, true);
    let std = 3f64.sqrt() / 4.0;
    let hand = [0.75 / (std + 1e-6), -0.25 / (std + 1e-6)];
    let expected = [hand[0], hand[1], hand[1], hand[1], 0.0, 0.0, 0.0, 0.0];
    assert_all_close(
        &to_vec(adv),
        expected.into_iter(),
        1e-5,
        &format!("{name} advantages"),
    );
    assert_eq!(to_vec(keep), vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    let (adv, _) = group_advantages(rewards, 4, false);
    assert_all_close(
        &to_vec(adv),
        [0.75, -0.25, -0.25, -0.25, 0.0, 0.0, 0.0, 0.0].into_iter(),
        1e-6,
        &format!("{name} Dr.GRPO advantages"),
    );
    // Generator rewards: acc 0 → 0; 1 of 8 right → 7/8; all right → 0.
    let mut predictor = vec![0.0f32; 24];
    predictor[8] = 1.0;
    predictor[16..24].fill(1.0);
    let generator = generator_rewards(Tensor::<B, 1>::from_floats(predictor.as_slice(), device), 8);
    assert_eq!(
        to_vec(generator),
        vec![0.0, 0.875, 0.0],
        "{name}: generator rewards"
    );

    // Random groups of 8 against an f64 host loop.
    let rewards: Vec<f32> = (0..8 * 50)
        .map(|_| rng.random_range(0..3) as f32 / 2.0)
        .collect();
    let (adv, keep) = group_advantages(
        Tensor::<B, 1>::from_floats(rewards.as_slice(), device),
        8,
        true,
    );
    let mut expected = Vec::new();
    let mut expected_keep = Vec::new();
    for group in rewards.chunks(8) {
        let g: Vec<f64> = group.iter().map(|&r| r as f64).collect();
        let mean = g.iter().sum::<f64>() / 8.0;
        let std = (g.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 8.0).sqrt();
        let kept = g.iter().any(|&r| r != g[0]);
        for r in &g {
            expected.push(if kept { (r - mean) / (std + 1e-6) } else { 0.0 });
            expected_keep.push(if kept { 1.0 } else { 0.0 });
        }
    }
    assert_all_close(
        &to_vec(adv),
        expected.into_iter(),
        1e-4,
        &format!("{name} random advantages"),
    );
    assert_eq!(to_vec(keep), expected_keep);
}

/// bf16 logits: the sums must be f32. The outputs (f32) match an f64 computation on
/// the same bf16-rounded logits to f32 accuracy, which bf16 sums over 32k–152k logits
/// could not reach, and the gradient comes back in bf16, within bf16 rounding of the
/// f32 oracle's.
fn check_bf16_logits<B: RewardStepBackend>(device: &B::Device, name: &str)
where
    Autodiff<B>: RewardStepBackend,
{
    let mut rng = StdRng::seed_from_u64(fresh_seed());
    let to_bf16 = |case: &mut Case| {
        for x in &mut case.logits {
            *x = half::bf16::from_f32(*x).to_f32();
        }
    };
    for (rows, vocab) in [(5, 32_000), (2, 151_936)] {
        let mut case = Case::random(rows, vocab, &mut rng);
        to_bf16(&mut case);
        let (logits, targets, mask) = case.tensors::<B>(device);
        let logits = logits.cast(FloatDType::BF16);
        assert_eq!(logits.dtype(), DType::BF16, "{name}: the backend kept bf16");
        let (lp, ent) = masked_token_logprob_entropy(logits, targets, mask, RowChunking::default());
        assert_eq!((lp.dtype(), ent.dtype()), (DType::F32, DType::F32));
        let (lp, ent) = (to_vec(lp), to_vec(ent));
        for (r, (host_lp, host_ent)) in case.host_forward().into_iter().enumerate() {
            let tol = |v: f64| 1e-5 * v.abs().max(1.0);
            assert!(
                (lp[r] as f64 - host_lp).abs() <= tol(host_lp)
                    && (ent[r] as f64 - host_ent).abs() <= tol(host_ent),
                "{name} bf16 {rows}x{vocab}: row {r}: ({}, {}) vs ({host_lp}, {host_ent})",
                lp[r],
                ent[r]
            );
        }
    }
    let mut case = Case::random(9, 1000, &mut rng);
    to_bf16(&mut case);
    let (w_lp, w_ent) = weights(case.rows, &mut rng);
    let found = kernel_gradient::<B>(&case, &w_lp, &w_ent, FloatDType::BF16, device);
    let oracle = autodiff_reference_gradient(&case, &w_lp, &w_ent);
    for (i, (f, e)) in found.iter().zip(&oracle).enumerate() {
        // bf16 keeps 8 significant bits: a relative rounding error of at most 2^-9.
        assert!(
            (f - e).abs() <= e.abs() / 256.0 + 1e-6,
            "{name} bf16 gradient element {i}: {f} vs {e}"
        );
    }
}

#[test]
fn bf16_logits_on_the_cpu() {
    // ndarray has no bf16; burn-flex has.
    check_bf16_logits::<burn::backend::Flex>(&Default::default(), "flex");
}

/// A NaN logit anywhere in a row makes that row's outputs NaN (a broken forward pass
/// must reach the trainer's non-finite guard), and leaves the other rows alone.
fn check_nan_propagates<B: RewardStepBackend>(device: &B::Device, name: &str) {
    let mut rng = StdRng::seed_from_u64(fresh_seed());
    let mut case = Case::random(3, 50, &mut rng);
    case.mask = vec![1.0; 3];
    let target = case.targets[1] as usize;
    case.logits[50 + (target + 1) % 50] = f32::NAN;
    let (logits, targets, mask) = case.tensors::<B>(device);
    let (lp, ent) = masked_token_logprob_entropy(logits, targets, mask, RowChunking::default());
    let (lp, ent) = (to_vec(lp), to_vec(ent));
    assert!(
        lp[1].is_nan() && ent[1].is_nan(),
        "{name}: row with NaN: {} {}",
        lp[1],
        ent[1]
    );
    for r in [0, 2] {
        assert!(lp[r].is_finite() && ent[r].is_finite(), "{name}: row {r}");
    }
}

#[test]
fn host_path_on_the_cpu() {
    check_backend::<Cpu>(&Default::default(), "ndarray");
    check_backend::<burn::backend::Flex>(&Default::default(), "flex");
    check_nan_propagates::<Cpu>(&Default::default(), "ndarray");
    check_nan_propagates::<burn::backend::Flex>(&Default::default(), "flex");
}

/// Whether `B` can allocate on `device` (a missing adapter panics inside burn).
fn device_works<B: Backend>(device: &B::Device) -> bool {
    let device = device.clone();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        Tensor::<B, 1>::random([4], Distribution::Default, &device).into_data()
    }))
    .is_ok()
}

#[cfg(feature = "cube")]
#[test]
fn cubecl_kernels_on_wgpu() {
    use burn::backend::wgpu::{CubeBackend, WgpuDevice, WgpuRuntime};
    type Wgpu = CubeBackend<WgpuRuntime, f32, i32, u32>;
    let device = WgpuDevice::default();
    if !device_works::<Wgpu>(&device) {
        eprintln!("SKIPPED: no WGPU adapter (install mesa-vulkan-drivers libvulkan1 for a software Vulkan device)");
        return;
    }
    // CubeCL enables no plane operations on CPU adapters such as Mesa's software Vulkan
    // driver: there the shared-memory merge is what runs.
    eprintln!("wgpu: {}", Wgpu::reward_step_form(&device));
    check_backend::<Wgpu>(&device, "wgpu");
}

#[cfg(feature = "cuda")]
#[test]
fn cubecl_kernels_on_cuda() {
    use burn::backend::cuda::CudaDevice;
    // Without burn's fusion wrapper, as the trainer runs it (see src/backend.rs).
    type Cuda = burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, f32, i32, u8>;
    let device = CudaDevice::default();
    if !device_works::<Cuda>(&device) {
        eprintln!("SKIPPED: no CUDA device");
        return;
    }
    let form = Cuda::reward_step_form(&device);
    eprintln!("cuda: {form}");
    assert!(
        form.contains("plane merge"),
        "CUDA should run the plane merge: {form}"
    );
    check_backend::<Cuda>(&device, "cuda");
    check_bf16_logits::<Cuda>(&device, "cuda");
}
