//! burn-flex tensors read as host slices without a copy: the host loops of the fused
//! operations run straight over the tensors' buffers (the autodiff graph still holds
//! the inputs, so taking them over is not an option).

use burn::backend::flex::{FlexTensor, Layout};
use burn::tensor::{DType, Shape, TensorData};

/// `t` itself when its f32 values are one contiguous run, else a contiguous copy;
/// read it with [`values`].
pub(crate) fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

/// The f32 values of a tensor returned by [`contiguous`].
pub(crate) fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .unwrap_or_else(|| panic!("not contiguous f32: {:?} {:?}", t.layout(), t.dtype()))
}

/// A burn-flex tensor of `shape` owning `values`.
pub(crate) fn flex_tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// A burn-flex tensor of `shape` over `values` read with `strides` (in elements, from
/// the first value): a permuted view of a buffer written in another order.
pub(crate) fn strided_flex_tensor(
    values: Vec<f32>,
    shape: Shape,
    strides: Vec<isize>,
) -> FlexTensor {
    let bytes = TensorData::new(values, [shape.num_elements()]).bytes;
    FlexTensor::new(bytes, Layout::new(shape, strides, 0), DType::F32)
}
