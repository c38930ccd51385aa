//! The masked-token reward step as two CubeCL kernels, one cube (workgroup) per row.
//!
//! Forward: every unit walks its strided share of the row once, keeping an online
//! `(max, Σ e^(x−max), Σ e^(x−max)·(x−max))`; the cube then merges the units' triples.
//! From them, `log p(t) = (x_t − max) − ln s` and `H = ln s − u / s`. Only `N × 2`
//! outputs and `N × 2` row statistics are written.
//!
//! Backward: one more pass over the row writes
//! `g_lp · (1[v = t] − p_v) − g_ent · p_v · (log p_v + H)`, with `p_v` recomputed from
//! the statistics instead of stored.
//!
//! Both passes read (and the backward writes) the row in vectors of `width` logits, the
//! widest load the device offers that divides the vocabulary (4 f32 or 8 bf16 on 128-bit
//! loads; 1 for a vocabulary of odd size), so that a row takes a quarter or an eighth
//! of the load instructions.
//!
//! The merge of the units' triples has two forms, chosen at launch: where the runtime
//! has plane (warp/subgroup) operations, `plane_max`/`plane_sum` merge each plane in
//! registers and one unit then merges the few per-plane triples; elsewhere (CubeCL
//! enables no plane operations on CPU adapters such as Mesa's software Vulkan driver)
//! a tree in shared memory merges them.
//!
//! Accumulation is in f32 whatever the logits' type `F` (f32, or bf16 on CUDA); the
//! mask, the outputs, the statistics and the incoming gradient are f32 (`A`), and the
//! gradient of the logits is written in `F`. Masked-out rows return at once in the
//! forward (one read of the mask) and write zeros in the backward.

use cubecl::prelude::*;

// −3e38 is the finite stand-in for −∞ below (WGSL cannot spell an infinite literal):
// logits at or below it, real −∞ included, contribute nothing.

/// Row of the current cube; rows beyond 65,535 spill into `CUBE_POS_Y`.
#[cube]
fn cube_row() -> usize {
    (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize
}

/// Merges the triple in slot `from` into slot `into`, both re-expressed relative to the
/// larger maximum (a slot with `s == 0` saw no finite logit and adds nothing).
#[cube]
fn merge_slots(
    shared_m: &mut SharedMemory<f32>,
    shared_s: &mut SharedMemory<f32>,
    shared_u: &mut SharedMemory<f32>,
    into: usize,
    from: usize,
) {
    let m1 = shared_m[into];
    let s1 = shared_s[into];
    let u1 = shared_u[into];
    let m2 = shared_m[from];
    let s2 = shared_s[from];
    let u2 = shared_u[from];
    let mm = m1.max(m2);
    let mut ss = 0.0f32;
    let mut uu = 0.0f32;
    if s1 > 0.0 {
        let a = (m1 - mm).exp();
        ss += a * s1;
        uu += a * (u1 + s1 * (m1 - mm));
    }
    if s2 > 0.0 {
        let a = (m2 - mm).exp();
        ss += a * s2;
        uu += a * (u2 + s2 * (m2 - mm));
    }
    shared_m[into] = mm;
    shared_s[into] = ss;
    shared_u[into] = uu;
}

#[cube(launch)]
pub fn logprob_entropy_forward_kernel<F: Float, A: Float, I: Numeric, W: Size>(
    logits: &Tensor<Vector<F, W>>, // [N, V], contiguous, V a multiple of the width
    targets: &Tensor<I>,           // [N]
    mask: &Tensor<A>,              // [N]
    out: &mut Tensor<A>,           // [N, 2]: (log p(target), entropy)
    stats: &mut Tensor<A>,         // [N, 2]: (max, ln s)
    #[comptime] block: u32,
    #[comptime] plane: bool,
    #[define(F, A, I)] _dtypes: [StorageType; 3],
) {
    let row = cube_row();
    if row >= logits.shape(0) {
        terminate!();
    }
    let unit = UNIT_POS_X as usize;
    if f32::cast_from(mask[row]) == 0.0 {
        if unit == 0 {
            out[row * 2] = A::new(0.0);
            out[row * 2 + 1] = A::new(0.0);
            stats[row * 2] = A::new(0.0);
            stats[row * 2 + 1] = A::new(0.0);
        }
        terminate!();
    }
    let width = logits.vector_size();
    let vectors = logits.shape(1) / width;
    let base = row * vectors;
    // 1. This unit's share of the row, online.
    let mut m = f32::new(-3.0e38);
    let mut s = 0.0f32;
    let mut u = 0.0f32;
    let mut v = unit;
    while v < vectors {
        let xs = logits[base + v];
        #[unroll]
        for lane in 0..width {
            let x = f32::cast_from(xs[lane]);
            if x > -3.0e38f32 {
                if x > m {
                    // Rescale what was summed so far to the new maximum.
                    let a = (m - x).exp();
                    u = a * (u + s * (m - x));
                    s = a * s + 1.0;
                    m = x;
                } else {
                    let d = x - m;
                    let e = (d).exp();
                    s += e;
                    u += e * d;
                }
            }
        }
        v += block as usize;
    }

    // 2. Merge the units' triples into slot 0.
    let mut shared_m = SharedMemory::<f32>::new(block as usize);
    let mut shared_s = SharedMemory::<f32>::new(block as usize);
    let mut shared_u = SharedMemory::<f32>::new(block as usize);
    if plane {
        // Each plane in registers: everything relative to the plane's maximum, summed.
        let plane_m = plane_max(m);
        let mut s_rel = 0.0f32;
        let mut u_rel = 0.0f32;
        if s > 0.0 {
            let a = (m - plane_m).exp();
            s_rel = a * s;
            u_rel = a * (u + s * (m - plane_m));
        }
        let plane_s = plane_sum(s_rel);
        let plane_u = plane_sum(u_rel);
        if UNIT_POS_PLANE == 0 {
            let slot = PLANE_POS as usize;
            shared_m[slot] = plane_m;
            shared_s[slot] = plane_s;
            shared_u[slot] = plane_u;
        }
        sync_cube();
        // A handful of planes (8 planes of 32 units on CUDA): one unit merges them in turn.
        if unit == 0 {
            let planes = (CUBE_DIM_X / PLANE_DIM) as usize;
            let mut slot = 1usize;
            while slot < planes {
                merge_slots(&mut shared_m, &mut shared_s, &mut shared_u, 0, slot);
                slot += 1;
            }
        }
    } else {
        shared_m[unit] = m;
        shared_s[unit] = s;
        shared_u[unit] = u;
        sync_cube();
        // A runtime value (CUBE_DIM_X == block): a comptime one cannot be halved in a loop.
        let mut stride = (CUBE_DIM_X / 2) as usize;
        while stride > 0 {
            if unit < stride {
                merge_slots(
                    &mut shared_m,
                    &mut shared_s,
                    &mut shared_u,
                    unit,
                    unit + stride,
                );
            }
            sync_cube();
            stride /= 2;
        }
    }

    // 3. Row results.
    if unit == 0 {
        let max = shared_m[0];
        let sum = shared_s[0];
        let log_sum = (sum).ln();
        // The target's logit: its vector, then its lane (lanes are only indexed by
        // compile-time constants).
        let target = u32::cast_from(targets[row]) as usize;
        let xs = logits[base + target / width];
        let mut x_t = 0.0f32;
        #[unroll]
        for lane in 0..width {
            if lane == target % width {
                x_t = f32::cast_from(xs[lane]);
            }
        }
        out[row * 2] = A::cast_from((x_t - max) - log_sum);
        out[row * 2 + 1] = A::cast_from(log_sum - shared_u[0] / sum);
        stats[row * 2] = A::cast_from(max);
        stats[row * 2 + 1] = A::cast_from(log_sum);
    }
}

#[cube(launch)]
pub fn logprob_entropy_backward_kernel<F: Float, A: Float, I: Numeric, W: Size>(
    logits: &Tensor<Vector<F, W>>, // [N, V], contiguous, V a multiple of the width
    targets: &Tensor<I>,           // [N]
    mask: &Tensor<A>,              // [N]
    stats: &Tensor<A>,             // [N, 2]
    out: &Tensor<A>,               // [N, 2]
    grad_out: &Tensor<A>,          // [N, 2], contiguous
    grad_logits: &mut Tensor<Vector<F, W>>, // [N, V]
    #[comptime] block: u32,
    #[define(F, A, I)] _dtypes: [StorageType; 3],
) {
    let row = cube_row();
    if row >= logits.shape(0) {
        terminate!();
    }
    let unit = UNIT_POS_X as usize;
    let width = logits.vector_size();
    let vectors = logits.shape(1) / width;
    let base = row * vectors;
    let keep = f32::cast_from(mask[row]);
    let g_lp = keep * f32::cast_from(grad_out[row * 2]);
    let g_ent = keep * f32::cast_from(grad_out[row * 2 + 1]);
    let max = f32::cast_from(stats[row * 2]);
    let log_sum = f32::cast_from(stats[row * 2 + 1]);
    let entropy = f32::cast_from(out[row * 2 + 1]);
    let target = u32::cast_from(targets[row]) as usize;

    let mut v = unit;
    while v < vectors {
        let xs = logits[base + v];
        let mut grads = Vector::<F, W>::empty();
        #[unroll]
        for lane in 0..width {
            let mut grad = 0.0f32;
            if keep != 0.0 {
                let x = f32::cast_from(xs[lane]);
                if x > -3.0e38f32 {
                    let logp = (x - max) - log_sum;
                    let p = (logp).exp();
                    grad = -g_lp * p - g_ent * p * (logp + entropy);
                }
                if v * width + lane == target {
                    grad += g_lp;
                }
            }
            grads[lane] = F::cast_from(grad);
        }
        grad_logits[base + v] = grads;
        v += block as usize;
    }
}
