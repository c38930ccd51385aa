//! Attention as one operation (`attention.rs`) against independent oracles: outputs
//! against an f64 host computation of masked softmax attention, gradients against
//! burn's autodiff of burn's own attention on ndarray (not against our backward
//! formula). Inputs include a transposed (strided) key tensor, a value width other than
//! the key width, more keys than queries, a broadcast mask and a query row that sees
//! no key. On ndarray `attention` is burn's attention, so the f64 check also pins
//! down that both backends agree on the semantics.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::prelude::*;
use burn::tensor::Distribution;
use pretrainzero_kernels::{attention, FusedLayerBackend};

mod common;
use common::{close, host_values, primitive_values};

const TOLERANCE: f32 = 1e-5;
const BATCH: usize = 2;
const HEADS: usize = 3;
const QUERIES: usize = 5;
const KEYS: usize = 7;
const WIDTH: usize = 4;
const VALUE_WIDTH: usize = 6;

/// Host values of one test case: q, k, v in logical order and the mask (true = hidden).
struct Case {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// `[batch, 1, queries, keys]`, broadcast over heads.
    mask: Vec<bool>,
}

fn case() -> Case {
    let device = Default::default();
    NdArray::<f32>::seed(&device, 11);
    let normal = |shape: [usize; 4]| {
        host_values(Tensor::<NdArray<f32>, 4>::random(
            shape,
            Distribution::Normal(0.0, 1.5),
            &device,
        ))
    };
    let mask = (0..BATCH * QUERIES * KEYS)
        .map(|i| {
            let (b, row) = (i / (QUERIES * KEYS), (i / KEYS) % QUERIES);
            // Batch 1's first query sees no key; elsewhere a fixed scatter of holes.
            (b == 1 && row == 0) || (i * 7 + 3) % 5 == 0
        })
        .collect();
    Case {
        q: normal([BATCH, HEADS, QUERIES, WIDTH]),
        k: normal([BATCH, HEADS, KEYS, WIDTH]),
        v: normal([BATCH, HEADS, KEYS, VALUE_WIDTH]),
        mask,
    }
}

/// The case's tensors on backend `B`; `k` is built as `[batch, keys, heads, width]` and
/// swapped, so the operation reads a strided view.
fn tensors<B: Backend>(
    case: &Case,
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4, Bool>) {
    let q = Tensor::from_data(
        TensorData::new(case.q.clone(), [BATCH, HEADS, QUERIES, WIDTH]),
        device,
    );
    // k in `[batch, keys, heads, width]` memory order, then viewed as `[.., heads, keys, ..]`.
    let mut keys_first = Vec::with_capacity(case.k.len());
    for b in 0..BATCH {
        for j in 0..KEYS {
            for h in 0..HEADS {
                let row = ((b * HEADS + h) * KEYS + j) * WIDTH;
                keys_first.extend_from_slice(&case.k[row..row + WIDTH]);
            }
        }
    }
    let k = Tensor::<B, 4>::from_data(
        TensorData::new(keys_first, [BATCH, KEYS, HEADS, WIDTH]),
        device,
    )
    .swap_dims(1, 2);
    let v = Tensor::from_data(
        TensorData::new(case.v.clone(), [BATCH, HEADS, KEYS, VALUE_WIDTH]),
        device,
    );
    let mask = Tensor::<B, 4, Bool>::from_data(
        TensorData::new(case.mask.clone(), [BATCH, 1, QUERIES, KEYS]),
        device,
    )
    .expand([BATCH, HEADS, QUERIES, KEYS]);
    (q, k, v, mask)
}

/// Masked softmax attention in f64, scaled by 1/√width.
fn oracle(case: &Case, use_mask: bool, is_causal: bool) -> Vec<f32> {
    let scale = 1.0 / (WIDTH as f64).sqrt();
    let mut out = vec![0.0f32; BATCH * HEADS * QUERIES * VALUE_WIDTH];
    for b in 0..BATCH {
        for h in 0..HEADS {
            let pair = b * HEADS + h;
            for i in 0..QUERIES {
                let visible: Vec<usize> = (0..KEYS)
                    .filter(|&j| !(use_mask && case.mask[(b * QUERIES + i) * KEYS + j]))
                    .filter(|&j| !(is_causal && j > i + (KEYS - QUERIES)))
                    .collect();
                let scores: Vec<f64> = visible
                    .iter()
                    .map(|&j| {
                        (0..WIDTH)
                            .map(|c| {
                                case.q[(pair * QUERIES + i) * WIDTH + c] as f64
                                    * case.k[(pair * KEYS + j) * WIDTH + c] as f64
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
                            w / total * case.v[(pair * KEYS + j) * VALUE_WIDTH + c] as f64
                        })
                        .sum();
                    out[(pair * QUERIES + i) * VALUE_WIDTH + c] = value as f32;
                }
            }
        }
    }
    out
}

fn check_forward<B: FusedLayerBackend>(name: &str) {
    let (case, device) = (case(), Default::default());
    for (use_mask, is_causal) in [(true, false), (false, true), (true, true), (false, false)] {
        let (q, k, v, mask) = tensors::<B>(&case, &device);
        let got = host_values(attention(q, k, v, use_mask.then_some(mask), is_causal));
        close(
            &got,
            &oracle(&case, use_mask, is_causal),
            TOLERANCE,
            &format!("{name} out (mask {use_mask}, causal {is_causal})"),
        );
    }
}

#[test]
fn forward_matches_f64_on_ndarray_and_flex() {
    check_forward::<NdArray<f32>>("ndarray");
    check_forward::<Flex>("flex");
}

/// `(∂q, ∂k, ∂v)` of `Σ attention · weights` on `Autodiff<B>`, through our operation
/// (`fused`) or burn's attention.
fn gradients<B: FusedLayerBackend>(
    case: &Case,
    weights: &[f32],
    use_mask: bool,
    is_causal: bool,
    fused: bool,
) -> [Vec<f32>; 3] {
    let device = Default::default();
    let (q, k, v, mask) = tensors::<Autodiff<B>>(case, &device);
    let (q, k, v) = (q.require_grad(), k.require_grad(), v.require_grad());
    let mask = use_mask.then_some(mask);
    let out = if fused {
        attention(q.clone(), k.clone(), v.clone(), mask, is_causal)
    } else {
        let options = burn::tensor::ops::AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal,
        };
        burn::tensor::module::attention(q.clone(), k.clone(), v.clone(), mask, None, options)
    };
    let weights = Tensor::<Autodiff<B>, 4>::from_data(
        TensorData::new(weights.to_vec(), [BATCH, HEADS, QUERIES, VALUE_WIDTH]),
        &device,
    );
    let grads = (out * weights).sum().backward();
    [q, k, v].map(|t| host_values(t.grad(&grads).expect("input is tracked")))
}

#[test]
fn gradients_match_burns_autodiff() {
    let case = case();
    let device = Default::default();
    let weights = host_values(Tensor::<NdArray<f32>, 4>::random(
        [BATCH, HEADS, QUERIES, VALUE_WIDTH],
        Distribution::Normal(0.0, 1.0),
        &device,
    ));
    for (use_mask, is_causal) in [(true, false), (false, true), (true, true)] {
        let burn = gradients::<NdArray<f32>>(&case, &weights, use_mask, is_causal, false);
        let flex = gradients::<Flex>(&case, &weights, use_mask, is_causal, true);
        for (name, flex, burn) in [
            ("dq", &flex[0], &burn[0]),
            ("dk", &flex[1], &burn[1]),
            ("dv", &flex[2], &burn[2]),
        ] {
            close(
                flex,
                burn,
                TOLERANCE,
                &format!("flex {name} (mask {use_mask}, causal {is_causal})"),
            );
        }
    }
}

#[test]
fn reference_backward_matches_burns_autodiff() {
    // The trait's default forward and backward (burn's operations), against burn's
    // autodiff of burn's attention.
    type B = NdArray<f32>;
    let (case, device) = (case(), Default::default());
    let weights = host_values(Tensor::<B, 4>::random(
        [BATCH, HEADS, QUERIES, VALUE_WIDTH],
        Distribution::Normal(0.0, 1.0),
        &device,
    ));
    let burn = gradients::<B>(&case, &weights, true, true, false);
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
        "reference out",
    );
    let grad = Tensor::<B, 4>::from_data(
        TensorData::new(weights, [BATCH, HEADS, QUERIES, VALUE_WIDTH]),
        &device,
    );
    let (dq, dk, dv) = pretrainzero_kernels::attention::reference::backward::<B>(
        prim(q),
        prim(k),
        prim(v),
        probabilities,
        prim(grad),
    );
    for (name, ours, burn) in [
        ("dq", dq, &burn[0]),
        ("dk", dk, &burn[1]),
        ("dv", dv, &burn[2]),
    ] {
        close(
            &primitive_values::<B, 4>(ours),
            burn,
            TOLERANCE,
            &format!("reference {name}"),
        );
    }
}
