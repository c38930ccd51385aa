//! Helpers shared by the fused-operation tests.
// Each test file compiles its own copy of this module and uses only some helpers.
#![allow(dead_code)]

use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::TensorPrimitive;

/// A tensor's values as f32 on the host.
pub fn host_values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec()
        .expect("converted to f32")
}

/// A float primitive's values, read as a rank-`D` tensor.
pub fn primitive_values<B: Backend, const D: usize>(t: FloatTensor<B>) -> Vec<f32> {
    host_values(Tensor::<B, D>::from_primitive(TensorPrimitive::Float(t)))
}

/// Asserts `|a − b| ≤ tolerance · (1 + |b|)` elementwise and prints the worst scaled
/// error.
pub fn close(a: &[f32], b: &[f32], tolerance: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let mut worst = 0.0f32;
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let error = (x - y).abs() / (1.0 + y.abs());
        worst = worst.max(error);
        assert!(error <= tolerance, "{what}[{i}]: {x} vs {y}");
    }
    eprintln!("{what}: worst scaled error {worst:e}");
}
