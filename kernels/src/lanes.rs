//! Reductions over f32 slices in independent lanes, so that they vectorise: a plain
//! `fold` is one chain of dependent additions (floating-point addition is not
//! associative, so the compiler may not reorder it), which keeps every loop that
//! contains it scalar. Each lane sums every `LANES`-th element; the lanes are added
//! at the end. The result differs from a sequential sum only by rounding.

/// Lanes per reduction: one AVX-512 register of f32.
pub(crate) const LANES: usize = 16;

/// The largest value (−∞ for an empty slice; NaN is skipped, as `f32::max` skips it).
pub(crate) fn max(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(x);
        }
    }
    rest.iter()
        .chain(&lanes)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
}

/// The sum.
pub(crate) fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += x;
        }
    }
    lanes.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

/// `Σ a·b` over two slices of one length.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: lengths differ");
    let mut lanes = [0.0f32; LANES];
    let (chunks_a, chunks_b) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let rest: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (chunk_a, chunk_b) in chunks_a.zip(chunks_b) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(chunk_a).zip(chunk_b) {
            *lane += x * y;
        }
    }
    lanes.iter().sum::<f32>() + rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_sequential_reductions() {
        for len in [0, 1, 15, 16, 17, 100, 1000] {
            let values: Vec<f32> = (0..len).map(|i| ((i * 37) % 101) as f32 - 50.5).collect();
            let expected_max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(max(&values), expected_max, "max of {len}");
            // Integers and halves sum exactly in f32 at these sizes.
            let expected_sum: f32 = values.iter().sum();
            assert_eq!(sum(&values), expected_sum, "sum of {len}");
            let expected_dot: f32 = values.iter().map(|x| x * 2.0).sum();
            let twos = vec![2.0f32; len];
            assert_eq!(dot(&values, &twos), expected_dot, "dot of {len}");
        }
    }
}
