//! Attention as one operation (`attention.rs`) against independent oracles: outputs
//! and gradients against an f64 host computation of masked softmax attention, with
//! burn's autodiff of burn's own attention on ndarray (keys and values repeated per
//! query head) as a cross-check of the f64 gradient formula. Cases: grouped-query heads (two
//! query heads per key/value head) and one query head per key/value head, a transposed
//! (strided) key tensor, a value width other than the key width, more keys than
//! queries, a mask broadcast over heads, a per-head mask stored transposed, and a
//! query row that sees no key. On ndarray
//! `attention` is burn's attention (with the heads of a group stacked), so the f64
//! check also pins down that both backends agree on the semantics.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::prelude::*;
use pretrainzero_kernels::{attention, FusedLayerBackend};

mod common;
use common::{close, host_values, primitive_values};

const TOLERANCE: f32 = 1e-5;
/// burn's autodiff of its composed attention (exp, division, subtraction of the max,
/// each with its own backward in f32) lands up to about 5e-4 from the f64 gradients on
/// these inputs (how far depends on the machine's f32 kernels: under 2e-4 on one x86
/// machine, 5.2e-4 on an AVX2 AMD EPYC); it is a cross-check of the f64 oracle's
/// formula, not the precise reference.
const BURN_GRADIENT_TOLERANCE: f32 = 2e-3;
const BATCH: usize = 2;
const HEADS: usize = 4;
const QUERIES: usize = 5;
const KEYS: usize = 7;
const WIDTH: usize = 4;
const VALUE_WIDTH: usize = 6;
/// `(kv_heads, per_head_mask)` cases: two query heads per key/value head and one,
/// with a mask broadcast over heads; and two per key/value head with a mask of its own
/// per head, stored transposed (a mask whose key axis has a stride other than 1).
const CASES: [(usize, bool); 3] = [(2, false), (HEADS, false), (2, true)];
/// `(mask, causal)` combinations.
const MASKINGS: [(bool, bool); 4] = [(true, false), (false, true), (true, true), (false, false)];

/// Host values of one test case: q, k, v in logical order and the mask (true = hidden).
struct Case {
    /// Query head `h` reads key/value head `h / (HEADS / kv_heads)`.
    kv_heads: usize,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// `[batch, heads, queries, keys]`.
    mask: Vec<bool>,
    /// Whether the mask differs between heads (else it is passed as `[batch, 1, ..]`).
    per_head_mask: bool,
}

fn case(kv_heads: usize, per_head_mask: bool) -> Case {
    let normal = |shape: [usize; 4], salt: usize| pseudo_normal(shape.iter().product(), salt);
    let mut mask = Vec::with_capacity(BATCH * HEADS * QUERIES * KEYS);
    for b in 0..BATCH {
        for h in 0..HEADS {
            for row in 0..QUERIES {
                for col in 0..KEYS {
                    let i = (b * QUERIES + row) * KEYS + col;
                    // Batch 1's first query sees no key; elsewhere a fixed scatter of
                    // holes, with more of them per head in the per-head case.
                    let own = per_head_mask && (h * 5 + row * 3 + col) % 4 == 0;
                    mask.push((b == 1 && row == 0) || (i * 7 + 3) % 5 == 0 || own);
                }
            }
        }
    }
    Case {
        kv_heads,
        q: normal([BATCH, HEADS, QUERIES, WIDTH], 1),
        k: normal([BATCH, kv_heads, KEYS, WIDTH], 2),
        v: normal([BATCH, kv_heads, KEYS, VALUE_WIDTH], 3),
        mask,
        per_head_mask,
    }
}

/// The case's tensors on backend `B`: `q` as a view of `[batch, queries, heads,
/// width]` (the decoder's layout), `k` of `[batch, keys, kv_heads, width]`, the mask
/// `[batch, 1, queries, keys]`.
fn tensors<B: Backend>(
    case: &Case,
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4, Bool>) {
    let kv_heads = case.kv_heads;
    // `[b, heads, rows, width]` values stored `[b, rows, heads, width]`, viewed back.
    let swapped = |values: &[f32], heads: usize, rows: usize, width: usize| {
        let mut stored = Vec::with_capacity(values.len());
        for b in 0..BATCH {
            for r in 0..rows {
                for h in 0..heads {
                    let at = ((b * heads + h) * rows + r) * width;
                    stored.extend_from_slice(&values[at..at + width]);
                }
            }
        }
        Tensor::<B, 4>::from_data(TensorData::new(stored, [BATCH, rows, heads, width]), device)
            .swap_dims(1, 2)
    };
    let q = swapped(&case.q, HEADS, QUERIES, WIDTH);
    let k = swapped(&case.k, kv_heads, KEYS, WIDTH);
    let v = Tensor::from_data(
        TensorData::new(case.v.clone(), [BATCH, kv_heads, KEYS, VALUE_WIDTH]),
        device,
    );
    let mask = if case.per_head_mask {
        // Stored `[batch, heads, keys, queries]` and viewed back.
        let mut transposed = Vec::with_capacity(case.mask.len());
        for pair in 0..BATCH * HEADS {
            for col in 0..KEYS {
                transposed
                    .extend((0..QUERIES).map(|row| case.mask[(pair * QUERIES + row) * KEYS + col]));
            }
        }
        let shape = [BATCH, HEADS, KEYS, QUERIES];
        Tensor::<B, 4, Bool>::from_data(TensorData::new(transposed, shape), device).swap_dims(2, 3)
    } else {
        // Head 0's mask, which every head shares.
        let shared: Vec<bool> = (0..BATCH)
            .flat_map(|b| {
                let first = b * HEADS * QUERIES * KEYS;
                case.mask[first..first + QUERIES * KEYS].to_vec()
            })
            .collect();
        Tensor::<B, 4, Bool>::from_data(TensorData::new(shared, [BATCH, 1, QUERIES, KEYS]), device)
    };
    (q, k, v, mask)
}

/// Masked softmax attention in f64, scaled by 1/√width.
fn oracle(case: &Case, use_mask: bool, is_causal: bool) -> Vec<f32> {
    let scale = 1.0 / (WIDTH as f64).sqrt();
    let mut out = vec![0.0f32; BATCH * HEADS * QUERIES * VALUE_WIDTH];
    for b in 0..BATCH {
        for h in 0..HEADS {
            let pair = b * HEADS + h;
            let kv_pair = b * case.kv_heads + h / (HEADS / case.kv_heads);
            for i in 0..QUERIES {
                let visible: Vec<usize> = (0..KEYS)
                    .filter(|&j| !(use_mask && case.mask[(pair * QUERIES + i) * KEYS + j]))
                    .filter(|&j| !(is_causal && j > i + (KEYS - QUERIES)))
                    .collect();
                let scores: Vec<f64> = visible
                    .iter()
                    .map(|&j| {
                        (0..WIDTH)
                            .map(|c| {
                                case.q[(pair * QUERIES + i) * WIDTH + c] as f64
                                    * case.k[(kv_pair * KEYS + j) * WIDTH + c] as f64
                            })
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = weights.iter().sum();
                for c in 0..VALUE_WIDTH {
                    let value: f64 = visible
                        .iter()
                        .zip(&weights)
                        .map(|(&j, w)| {
                            w / total * case.v[(kv_pair * KEYS + j) * VALUE_WIDTH + c] as f64
                        })
                        .sum();
                    out[(pair * QUERIES + i) * VALUE_WIDTH + c] = value as f32;
                }
            }
        }
    }
    out
}

/// `(∂q, ∂k, ∂v)` of `Σ out · weights` in f64: `∂v = pᵀ·w`, `∂p = w·vᵀ`,
/// `∂s = p ⊙ (∂p − Σ p ⊙ ∂p)`, `∂q = ∂s·k / √d`, `∂k = ∂sᵀ·q / √d`, with `∂k`, `∂v`
/// summed over the query heads of a group.
fn gradient_oracle(case: &Case, weights: &[f32], use_mask: bool, is_causal: bool) -> [Vec<f32>; 3] {
    let scale = 1.0 / (WIDTH as f64).sqrt();
    let kv_heads = case.kv_heads;
    let mut dq = vec![0.0f64; case.q.len()];
    let mut dk = vec![0.0f64; case.k.len()];
    let mut dv = vec![0.0f64; case.v.len()];
    for b in 0..BATCH {
        for h in 0..HEADS {
            let pair = b * HEADS + h;
            let kv_pair = b * kv_heads + h / (HEADS / kv_heads);
            let q = |i: usize, c: usize| case.q[(pair * QUERIES + i) * WIDTH + c] as f64;
            let k = |j: usize, c: usize| case.k[(kv_pair * KEYS + j) * WIDTH + c] as f64;
            let v = |j: usize, c: usize| case.v[(kv_pair * KEYS + j) * VALUE_WIDTH + c] as f64;
            let w = |i: usize, c: usize| weights[(pair * QUERIES + i) * VALUE_WIDTH + c] as f64;
            for i in 0..QUERIES {
                let hidden = |j: usize| {
                    (use_mask && case.mask[(pair * QUERIES + i) * KEYS + j])
                        || (is_causal && j > i + (KEYS - QUERIES))
                };
                let scores: Vec<f64> = (0..KEYS)
                    .map(|j| (0..WIDTH).map(|c| q(i, c) * k(j, c)).sum::<f64>() * scale)
                    .collect();
                let max = (0..KEYS)
                    .filter(|&j| !hidden(j))
                    .map(|j| scores[j])
                    .fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = (0..KEYS)
                    .map(|j| {
                        if hidden(j) {
                            0.0
                        } else {
                            (scores[j] - max).exp()
                        }
                    })
                    .collect();
                let total: f64 = e.iter().sum();
                if total == 0.0 {
                    // A query that sees no key: zero output, zero gradients.
                    continue;
                }
                let p: Vec<f64> = e.iter().map(|e| e / total).collect();
                let dp: Vec<f64> = (0..KEYS)
                    .map(|j| (0..VALUE_WIDTH).map(|c| w(i, c) * v(j, c)).sum())
                    .collect();
                let dot: f64 = p.iter().zip(&dp).map(|(p, d)| p * d).sum();
                for j in 0..KEYS {
                    let ds = p[j] * (dp[j] - dot);
                    for c in 0..VALUE_WIDTH {
                        dv[(kv_pair * KEYS + j) * VALUE_WIDTH + c] += p[j] * w(i, c);
                    }
                    for c in 0..WIDTH {
                        dq[(pair * QUERIES + i) * WIDTH + c] += ds * k(j, c) * scale;
                        dk[(kv_pair * KEYS + j) * WIDTH + c] += ds * q(i, c) * scale;
                    }
                }
            }
        }
    }
    [dq, dk, dv].map(|g| g.into_iter().map(|x| x as f32).collect())
}

fn check_forward<B: FusedLayerBackend>(name: &str) {
    let device = Default::default();
    for (kv_heads, per_head) in CASES {
        let case = case(kv_heads, per_head);
        for (use_mask, is_causal) in MASKINGS {
            let (q, k, v, mask) = tensors::<B>(&case, &device);
            let got = host_values(attention(q, k, v, use_mask.then_some(mask), is_causal));
            close(
                &got,
                &oracle(&case, use_mask, is_causal),
                TOLERANCE,
                &format!("{name} out ({kv_heads} kv heads, per-head mask {per_head}, mask {use_mask}, causal {is_causal})"),
            );
        }
    }
}

#[test]
fn forward_matches_f64_on_ndarray_and_flex() {
    check_forward::<NdArray<f32>>("ndarray");
    check_forward::<Flex>("flex");
}

/// burn's attention with keys and values repeated per query head and the mask
/// expanded over heads.
fn burn_attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
    is_causal: bool,
) -> Tensor<B, 4> {
    let repeat = |t: Tensor<B, 4>| {
        let [b, kv_heads, keys, width] = t.dims();
        t.reshape([b, kv_heads, 1, keys, width])
            .expand([b, kv_heads, HEADS / kv_heads, keys, width])
            .reshape([b, HEADS, keys, width])
    };
    let options = burn::tensor::ops::AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal,
    };
    let mask = mask.map(|mask| mask.expand([BATCH, HEADS, QUERIES, KEYS]));
    burn::tensor::module::attention(q, repeat(k), repeat(v), mask, None, options)
}

/// `(∂q, ∂k, ∂v)` of `Σ attention · weights` on `Autodiff<B>`, through our operation
/// (`fused`) or burn's attention.
fn gradients<B: FusedLayerBackend>(
    case: &Case,
    weights: &[f32],
    (use_mask, is_causal): (bool, bool),
    fused: bool,
) -> [Vec<f32>; 3] {
    let device = Default::default();
    let (q, k, v, mask) = tensors::<Autodiff<B>>(case, &device);
    let (q, k, v) = (q.require_grad(), k.require_grad(), v.require_grad());
    let mask = use_mask.then_some(mask);
    let out = if fused {
        attention(q.clone(), k.clone(), v.clone(), mask, is_causal)
    } else {
        burn_attention(q.clone(), k.clone(), v.clone(), mask, is_causal)
    };
    let weights = Tensor::<Autodiff<B>, 4>::from_data(
        TensorData::new(weights.to_vec(), [BATCH, HEADS, QUERIES, VALUE_WIDTH]),
        &device,
    );
    let grads = (out * weights).sum().backward();
    [q, k, v].map(|t| host_values(t.grad(&grads).expect("input is tracked")))
}

fn output_weights() -> Vec<f32> {
    pseudo_normal(BATCH * HEADS * QUERIES * VALUE_WIDTH, 4)
}

/// Reproducible values of spread about 1.5 (a sum of uniforms from a hash), without
/// the backends' global random generator, which tests running in parallel share.
fn pseudo_normal(len: usize, salt: usize) -> Vec<f32> {
    let uniform = |i: usize| {
        let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (salt as u64) << 32;
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 29;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..len)
        .map(|i| ((0..4).map(|j| uniform(4 * i + j)).sum::<f64>() - 2.0) as f32 * 2.6)
        .collect()
}

#[test]
fn gradients_match_f64_and_burns_autodiff() {
    let weights = output_weights();
    for (kv_heads, per_head) in CASES {
        let case = case(kv_heads, per_head);
        for masking in MASKINGS {
            let exact = gradient_oracle(&case, &weights, masking.0, masking.1);
            let what = |who: &str, name: &str| {
                format!("{who} {name} ({kv_heads} kv heads, per-head mask {per_head}, mask/causal {masking:?})")
            };
            let burn = gradients::<NdArray<f32>>(&case, &weights, masking, false);
            for ((name, burn), exact) in ["dq", "dk", "dv"].into_iter().zip(&burn).zip(&exact) {
                close(burn, exact, BURN_GRADIENT_TOLERANCE, &what("burn", name));
            }
            for (backend, ours) in [
                ("flex", gradients::<Flex>(&case, &weights, masking, true)),
                (
                    "ndarray",
                    gradients::<NdArray<f32>>(&case, &weights, masking, true),
                ),
            ] {
                for (((name, ours), exact), burn) in ["dq", "dk", "dv"]
                    .into_iter()
                    .zip(&ours)
                    .zip(&exact)
                    .zip(&burn)
                {
                    if backend == "flex" {
                        close(ours, exact, TOLERANCE, &what(backend, name));
                    } else {
                        // ndarray's `attention` is burn's own, so its gradients are
                        // burn's: as far from f64 as those, and as close to them as
                        // stacking the heads of a group allows.
                        close(ours, exact, BURN_GRADIENT_TOLERANCE, &what(backend, name));
                        close(ours, burn, TOLERANCE, &what("ndarray against burn", name));
                    }
                }
            }
        }
    }
}

#[test]
fn reference_matches_f64() {
    // The trait's default forward with probabilities and backward (burn's operations,
    // the formula of our backward), against the f64 oracles.
    type B = NdArray<f32>;
    let device = Default::default();
    let weights = output_weights();
    for (kv_heads, per_head) in CASES {
        let case = case(kv_heads, per_head);
        let exact = gradient_oracle(&case, &weights, true, true);
        let (q, k, v, mask) = tensors::<B>(&case, &device);
        let prim = |t: Tensor<B, 4>| t.into_primitive().tensor();
        let (out, probabilities) =
            pretrainzero_kernels::attention::reference::forward_with_probabilities::<B>(
                prim(q.clone()),
                prim(k.clone()),
                prim(v.clone()),
                Some(mask.into_primitive()),
                true,
            );
        close(
            &primitive_values::<B, 4>(out),
            &oracle(&case, true, true),
            TOLERANCE,
            &format!("reference out ({kv_heads} kv heads, per-head mask {per_head})"),
        );
        let grad = Tensor::<B, 4>::from_data(
            TensorData::new(weights.clone(), [BATCH, HEADS, QUERIES, VALUE_WIDTH]),
            &device,
        );
        let (dq, dk, dv) = pretrainzero_kernels::attention::reference::backward::<B>(
            prim(q),
            prim(k),
            prim(v),
            probabilities,
            prim(grad),
        );
        for ((name, ours), exact) in ["dq", "dk", "dv"].into_iter().zip([dq, dk, dv]).zip(&exact) {
            close(
                &primitive_values::<B, 4>(ours),
                exact,
                TOLERANCE,
                &format!("reference {name} ({kv_heads} kv heads, per-head mask {per_head})"),
            );
        }
    }
}
