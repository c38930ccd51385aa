//! Reductions along the rows of `[rows, width]` tensors (usually `[tokens, vocab]`
//! logits), computed in column chunks of at most [`ROW_CHUNK`] elements.
//!
//! Why chunks: burn 0.21's `max_dim`, `sum_dim`, `argmax` and `cumsum` return wrong
//! values on WGPU when a row holds 65,536 elements or more and there are several rows
//! (measured on Mesa lavapipe: with 8 rows of 151,936 — Qwen3's vocabulary — half of
//! the row maxima came back as 0; rows of 32,000 were always right). Every vocabulary
//! reduction of the model code goes through this file, so one mechanism covers
//! scoring, sampling, the RL update and pretraining. Rows no wider than a chunk take
//! the plain single-op path, so small vocabularies pay nothing.

use burn::prelude::*;

/// Widest column range reduced by one burn op (a safe margin under 65,536).
pub const ROW_CHUNK: usize = 16_384;

fn chunks(width: usize) -> Vec<std::ops::Range<usize>> {
    (0..width)
        .step_by(ROW_CHUNK)
        .map(|start| start..(start + ROW_CHUNK).min(width))
        .collect()
}

/// Applies `reduce` (a `[rows, w] → [rows, 1]` op) per chunk, then once more over the
/// `[rows, chunks]` partial results.
fn reduce_rows<B: Backend>(
    x: Tensor<B, 2>,
    reduce: impl Fn(Tensor<B, 2>) -> Tensor<B, 2>,
) -> Tensor<B, 2> {
    let [rows, width] = x.dims();
    if width <= ROW_CHUNK {
        return reduce(x);
    }
    let partial: Vec<Tensor<B, 2>> = chunks(width)
        .into_iter()
        .map(|range| reduce(x.clone().slice([0..rows, range])))
        .collect();
    reduce(Tensor::cat(partial, 1))
}

/// `[rows, width] → [rows, 1]`.
pub fn row_max<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    reduce_rows(x, |t| t.max_dim(1))
}

/// `[rows, width] → [rows, 1]`.
pub fn row_sum<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    reduce_rows(x, |t| t.sum_dim(1))
}

/// `[rows, width] → [rows, 1]`: `log Σ exp`, stabilised by the row maximum.
pub fn row_logsumexp<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let max = row_max(x.clone()).detach();
    row_sum((x - max.clone()).exp()).log() + max
}

/// Log-softmax along the rows.
pub fn log_softmax_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    x.clone() - row_logsumexp(x)
}

/// `[rows, width] → [rows, 1]` column index of each row's maximum (the first chunk
/// wins ties, and within a chunk burn's own rule applies).
pub fn row_argmax<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2, Int> {
    let [rows, width] = x.dims();
    if width <= ROW_CHUNK {
        return x.argmax(1);
    }
    let mut maxima = Vec::new();
    let mut positions = Vec::new();
    for range in chunks(width) {
        let start = range.start as i64;
        let chunk = x.clone().slice([0..rows, range]);
        maxima.push(chunk.clone().max_dim(1));
        positions.push(chunk.argmax(1) + start);
    }
    let best_chunk = Tensor::cat(maxima, 1).argmax(1);
    Tensor::cat(positions, 1).gather(1, best_chunk)
}

/// Inclusive prefix sums along the rows.
pub fn row_cumsum<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let [rows, width] = x.dims();
    if width <= ROW_CHUNK {
        return x.cumsum(1);
    }
    let mut pieces = Vec::new();
    let mut carried: Option<Tensor<B, 2>> = None;
    for range in chunks(width) {
        let local = x.clone().slice([0..rows, range]).cumsum(1);
        let piece = match &carried {
            Some(offset) => local + offset.clone(),
            None => local,
        };
        let last = piece.dims()[1];
        carried = Some(piece.clone().slice([0..rows, last - 1..last]));
        pieces.push(piece);
    }
    Tensor::cat(pieces, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    /// Rows wider than a chunk, with the maximum placed in different chunks.
    fn wide(rows: usize) -> (Vec<f32>, usize) {
        let width = 2 * ROW_CHUNK + 123;
        let mut data: Vec<f32> = (0..rows * width)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect();
        for r in 0..rows {
            data[r * width + (r * 15_001) % width] = 5.0 + r as f32;
        }
        (data, width)
    }

    #[test]
    fn chunked_reductions_match_a_direct_host_computation() {
        let rows = 3;
        let (data, width) = wide(rows);
        let x = Tensor::<B, 1>::from_floats(data.as_slice(), &Default::default())
            .reshape([rows, width]);
        let max: Vec<f32> = row_max(x.clone()).into_data().into_vec().unwrap();
        let sum: Vec<f32> = row_sum(x.clone()).into_data().into_vec().unwrap();
        let lse: Vec<f32> = row_logsumexp(x.clone()).into_data().into_vec().unwrap();
        let argmax: Vec<i64> = row_argmax(x.clone())
            .into_data()
            .convert::<i64>()
            .into_vec()
            .unwrap();
        let cumsum: Vec<f32> = row_cumsum(x).into_data().into_vec().unwrap();
        for r in 0..rows {
            let row = &data[r * width..(r + 1) * width];
            let host_sum: f64 = row.iter().map(|&v| v as f64).sum();
            let host_max = 5.0 + r as f32;
            let host_lse = host_max as f64
                + row
                    .iter()
                    .map(|&v| ((v - host_max) as f64).exp())
                    .sum::<f64>()
                    .ln();
            assert_eq!(max[r], host_max);
            assert_eq!(argmax[r] as usize, (r * 15_001) % width);
            assert!(((sum[r] as f64 - host_sum) / host_sum).abs() < 1e-5);
            assert!((lse[r] as f64 - host_lse).abs() < 1e-4);
            let last = cumsum[r * width + width - 1] as f64;
            assert!(((last - host_sum) / host_sum).abs() < 1e-5);
            // The prefix just past the first chunk boundary.
            let host_prefix: f64 = row[..ROW_CHUNK + 1].iter().map(|&v| v as f64).sum();
            assert!(
                ((cumsum[r * width + ROW_CHUNK] as f64 - host_prefix) / host_prefix).abs() < 1e-5
            );
        }
    }
}
