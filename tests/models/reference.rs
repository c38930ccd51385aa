//! The transformers reference outputs stored beside each fixture model (read by the
//! library's parity check, which the CUDA device check runs too).

pub use pretrainzero::eval::fixture_parity::ReferenceOutputs as Reference;

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
