//! The reward step on the CPU backends (ndarray, burn-flex): the kernels' algorithm
//! written over host slices, rows in parallel on rayon's pool.
//!
//! The plain-tensor reference materialises several `[N, V]` temporaries (shifted
//! logits, exp, log p, p · log p, a one-hot) one elementwise operation at a time; here
//! the forward reads each row twice (its max, then Σ e and Σ e·s in one sweep, with
//! `s = x − max` and `e = exp(s)`) and the backward writes the gradient in one sweep,
//! into the logits' own buffer when the backend hands it over unshared. (The forward
//! reads a host copy on ndarray, the tensor's own buffer on burn-flex: the autodiff
//! graph still holds the logits for the backward.) The exponentials are vectorised
//! (`fast_exp.rs`) and the sums f64, in lanes, so a 152k-entry row keeps f32 accuracy.
//!
//! Logits of another type than f32 (bf16 on burn-flex) take the reference.

use burn::prelude::*;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use crate::backend_ext::{float, int, primitive};
use crate::lanes::{self, LANES};
use crate::{fast_exp, reference};

/// Rows per rayon task: enough work per task to amortise the scheduling.
const ROWS_PER_TASK: usize = 8;

fn host_f32<B: Backend, const D: usize>(t: Tensor<B, D>) -> TensorData {
    t.into_data().convert::<f32>()
}

fn host_targets<B: Backend>(targets: IntTensor<B>) -> Vec<i64> {
    int::<B, 1>(targets)
        .into_data()
        .convert::<i64>()
        .into_vec()
        .expect("targets converted to i64")
}

/// Row statistics of the forward: `(max, ln Σ exp(x − max), entropy)`.
fn row_statistics(row: &[f32]) -> (f32, f64, f64) {
    // A NaN logit makes Σ e NaN (as it makes the reference's), so a broken forward
    // pass reaches the trainer's non-finite guard instead of being skipped (the max
    // alone would skip it).
    let max = lanes::max(row);
    let mut sum_e = [0.0f64; LANES];
    let mut sum_es = [0.0f64; LANES];
    // One chunk of LANES logits: e and e·s in f32 (a loop the compiler vectorises),
    // then added to the f64 lanes.
    let mut add = |chunk: &[f32; LANES]| {
        let (mut e, mut es) = ([0.0f32; LANES], [0.0f32; LANES]);
        for ((e, es), &x) in e.iter_mut().zip(es.iter_mut()).zip(chunk) {
            let s = x - max;
            // e = 0 for a −∞ logit (the vectorised exp clamps its input), whose s · e
            // would be −∞ · 0.
            *e = if s == f32::NEG_INFINITY {
                0.0
            } else {
                fast_exp::exp(s)
            };
            *es = if *e > 0.0 { *e * s } else { 0.0 };
        }
        for i in 0..LANES {
            sum_e[i] += e[i] as f64;
            sum_es[i] += es[i] as f64;
        }
    };
    let chunks = row.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        add(chunk.try_into().expect("chunks of LANES values"));
    }
    // The remainder, padded with −∞ logits, which add nothing.
    let mut padded = [f32::NEG_INFINITY; LANES];
    padded[..rest.len()].copy_from_slice(rest);
    add(&padded);
    let (sum_e, sum_es): (f64, f64) = (sum_e.iter().sum(), sum_es.iter().sum());
    let log_sum = sum_e.ln();
    // H = −Σ p (s − log_sum) = log_sum − Σ e·s / Σ e.
    (max, log_sum, log_sum - sum_es / sum_e)
}

/// See [`crate::RewardStepBackend::logprob_entropy_forward`].
pub fn logprob_entropy_forward<B: Backend>(
    logits: FloatTensor<B>,
    targets: IntTensor<B>,
    mask: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let logits = float::<B, 2>(logits);
    if logits.dtype() != DType::F32 {
        let (out, stats) =
            reference::logprob_entropy_forward::<B>(logits, int(targets), float(mask));
        return (primitive(out), primitive(stats));
    }
    let device = logits.device();
    let [_, vocab] = logits.dims();
    let logits = host_f32(logits);
    let logits = logits.as_slice::<f32>().expect("f32 logits");
    let targets = host_targets::<B>(targets);
    let mask = host_f32(float::<B, 1>(mask))
        .into_vec::<f32>()
        .expect("f32 mask");
    let (out, stats) = forward_rows(logits, vocab, &targets, &mask);
    let rows = mask.len();
    let tensor = |values| {
        primitive(Tensor::<B, 2>::from_data(
            TensorData::new(values, [rows, 2]),
            &device,
        ))
    };
    (tensor(out), tensor(stats))
}

/// The forward over host slices: `(out, stats)`, each `[rows, 2]` row-major.
fn forward_rows(
    logits: &[f32],
    vocab: usize,
    targets: &[i64],
    mask: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let rows = mask.len();
    assert_eq!(logits.len(), rows * vocab, "reward step: logits size");
    let mut out = vec![0.0f32; rows * 2];
    let mut stats = vec![0.0f32; rows * 2];
    out.par_chunks_mut(2 * ROWS_PER_TASK)
        .zip(stats.par_chunks_mut(2 * ROWS_PER_TASK))
        .enumerate()
        .for_each(|(task, (out, stats))| {
            for (i, (out, stats)) in out.chunks_mut(2).zip(stats.chunks_mut(2)).enumerate() {
                let r = task * ROWS_PER_TASK + i;
                let row = &logits[r * vocab..(r + 1) * vocab];
                let (max, log_sum, entropy) = row_statistics(row);
                stats[0] = max;
                stats[1] = log_sum as f32;
                if mask[r] != 0.0 {
                    let target = targets[r] as usize;
                    out[0] = ((row[target] - max) as f64 - log_sum) as f32;
                    out[1] = entropy as f32;
                }
            }
        });
    (out, stats)
}

/// burn-flex: the forward reads the logits straight from their buffer (no host copy;
/// the autodiff graph still holds them for the backward).
#[cfg(feature = "flex")]
pub(crate) mod flex {
    use super::*;
    use crate::flex_slices::{contiguous, flex_tensor, values};
    use burn::backend::flex::FlexTensor;
    use burn::backend::Flex;

    pub fn logprob_entropy_forward(
        logits: FlexTensor,
        targets: IntTensor<Flex>,
        mask: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        if logits.dtype() != DType::F32 {
            return super::logprob_entropy_forward::<Flex>(logits, targets, mask);
        }
        let logits = contiguous(logits);
        let vocab = logits.layout().shape()[1];
        let targets = host_targets::<Flex>(targets);
        let mask = host_f32(float::<Flex, 1>(mask))
            .into_vec::<f32>()
            .expect("f32 mask");
        let (out, stats) = forward_rows(values(&logits), vocab, &targets, &mask);
        let shape = Shape::new([mask.len(), 2]);
        (flex_tensor(out, shape.clone()), flex_tensor(stats, shape))
    }
}

/// See [`crate::RewardStepBackend::logprob_entropy_backward`]:
/// `g_lp · (1[v = t] − p_v) − g_ent · p_v · (log p_v + H)` on rows with `mask = 1`.
pub fn logprob_entropy_backward<B: Backend>(
    logits: FloatTensor<B>,
    targets: IntTensor<B>,
    mask: FloatTensor<B>,
    stats: FloatTensor<B>,
    out: FloatTensor<B>,
    grad_out: FloatTensor<B>,
) -> FloatTensor<B> {
    let logits = float::<B, 2>(logits);
    if logits.dtype() != DType::F32 {
        return primitive(reference::logprob_entropy_backward::<B>(
            logits,
            int(targets),
            float(mask),
            float(stats),
            float(out),
            float(grad_out),
        ));
    }
    let device = logits.device();
    let [_, vocab] = logits.dims();
    let host = |t: FloatTensor<B>| {
        host_f32(float::<B, 2>(t))
            .into_vec::<f32>()
            .expect("f32 values")
    };
    let (stats, out, grad_out) = (host(stats), host(out), host(grad_out));
    let mask = host_f32(float::<B, 1>(mask))
        .into_vec::<f32>()
        .expect("f32 mask");
    let targets = host_targets::<B>(targets);
    // The gradient overwrites the logits' buffer, row by row.
    let mut grad = host_f32(logits);
    grad.as_mut_slice::<f32>()
        .expect("f32 logits")
        .par_chunks_mut(vocab * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(task, block)| {
            for (i, row) in block.chunks_mut(vocab).enumerate() {
                let r = task * ROWS_PER_TASK + i;
                let g_lp = grad_out[2 * r] * mask[r];
                let g_ent = grad_out[2 * r + 1] * mask[r];
                if mask[r] == 0.0 || (g_lp == 0.0 && g_ent == 0.0) {
                    row.fill(0.0);
                    continue;
                }
                let (max, log_sum, entropy) = (stats[2 * r], stats[2 * r + 1], out[2 * r + 1]);
                // (x − max) − log_sum, as in the forward: logits of ±1e4 keep their
                // f32 accuracy, which x − (max + log_sum) would round away.
                // A −∞ logit has p = 0 (the vectorised exp clamps its input).
                let probability = |logp: f32| {
                    if logp == f32::NEG_INFINITY {
                        0.0
                    } else {
                        fast_exp::exp(logp)
                    }
                };
                if g_ent == 0.0 {
                    for x in row.iter_mut() {
                        *x = -g_lp * probability((*x - max) - log_sum);
                    }
                } else {
                    for x in row.iter_mut() {
                        let logp = (*x - max) - log_sum;
                        let p = probability(logp);
                        // p = 0 (a −∞ logit) contributes 0, not 0 · −∞; a NaN stays NaN.
                        *x = if p == 0.0 {
                            0.0
                        } else {
                            -g_lp * p - g_ent * p * (logp + entropy)
                        };
                    }
                }
                row[targets[r] as usize] += g_lp;
            }
        });
    primitive(Tensor::<B, 2>::from_data(grad, &device))
}
