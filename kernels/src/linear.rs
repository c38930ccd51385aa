//! A linear layer's product, `x · W` with `x [rows, in]` and `W [in, out]` (burn's
//! weight layout), as one operation with a backward of its own:
//! `∂x = ∂out · Wᵀ`, `∂W = xᵀ · ∂out`.
//!
//! burn-flex creates every matrix product's output by zero-filling a byte vector and
//! then copying it into a freshly allocated 16-byte-aligned buffer, two passes over
//! memory before the product itself writes it (in a profile of a 29M-parameter
//! pretraining step, these passes in the linear layers' products were 6 % of the
//! samples).
//! On burn-flex the products here make the same `gemm` call into a buffer that only
//! the product writes, and the backward takes the transposes as strides, without
//! copies. Other backends run burn's `matmul`.

use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::TensorPrimitive;

use crate::backend_ext::FusedLayerBackend;

/// `x · weight (+ bias)` for `x [rows, in]`, `weight [in, out]`, `bias [out]`.
/// Differentiable on `Autodiff<B>` with respect to all three.
pub fn linear<B: FusedLayerBackend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, 2> {
    let [_, width] = x.dims();
    let [weight_in, _] = weight.dims();
    assert_eq!(
        width, weight_in,
        "linear: input width {width} but weight has {weight_in} input rows"
    );
    let out = B::linear_product(
        x.into_primitive().tensor(),
        weight.into_primitive().tensor(),
    );
    let out: Tensor<B, 2> = Tensor::from_primitive(TensorPrimitive::Float(out));
    match bias {
        Some(bias) => out + bias.unsqueeze(),
        None => out,
    }
}

/// The plain-tensor version: the trait's default and the tests' oracle.
pub mod reference {
    use super::*;

    pub fn product<B: Backend>(lhs: FloatTensor<B>, rhs: FloatTensor<B>) -> FloatTensor<B> {
        B::float_matmul(lhs, rhs)
    }
}

/// burn-flex: one `gemm` call per product, reading strided inputs in place and writing
/// a buffer that nothing initialises first.
#[cfg(feature = "flex")]
pub(crate) mod flex {
    use super::*;
    use crate::backend_ext::all_f32;
    use crate::flex_gemm::{self, Matrix, Unwritten};
    use crate::flex_slices::flex_tensor;
    use burn::backend::flex::FlexTensor;
    use burn::backend::Flex;
    use burn::tensor::TensorMetadata;
    use gemm::Parallelism;

    /// Products with at least this many multiply-adds use rayon's pool (burn-flex's own
    /// threshold, so that the split between threads is what its matmul would choose).
    const PARALLEL_MULTIPLY_ADDS: usize = 192 * 192 * 192;

    /// `lhs [m, k] · rhs [k, n]`, inputs in any 2-D layout (a transpose is a view).
    pub fn product(lhs: FlexTensor, rhs: FlexTensor) -> FlexTensor {
        let two_dimensional = lhs.shape().num_dims() == 2 && rhs.shape().num_dims() == 2;
        if !two_dimensional || !all_f32::<Flex>(&[&lhs, &rhs]) {
            return reference::product::<Flex>(lhs, rhs);
        }
        let (m, k, n) = (lhs.shape()[0], lhs.shape()[1], rhs.shape()[1]);
        assert_eq!(k, rhs.shape()[0], "product: inner dimensions differ");
        let out = if k == 0 || m * n == 0 {
            vec![0.0; m * n]
        } else {
            let multiply_adds = m.saturating_mul(n).saturating_mul(k);
            let parallelism = if multiply_adds >= PARALLEL_MULTIPLY_ADDS {
                Parallelism::Rayon(0)
            } else {
                Parallelism::None
            };
            let mut out = Unwritten::new(m * n);
            // SAFETY: the product writes all m·n values of `out` (row-major, nothing
            // read first); the operands' pointers and strides come from their layouts.
            unsafe {
                let destination = out.start().block(0, n);
                let (lhs, rhs) = (Matrix::of(&lhs, &[]), Matrix::of(&rhs, &[]));
                flex_gemm::product(destination, m, n, k, lhs, rhs, 1.0, false, parallelism);
                out.into_written()
            }
        };
        flex_tensor(out, Shape::new([m, n]))
    }
}
