//! A linear layer's product (`linear.rs`) against independent oracles: the product
//! against an f64 host computation, with the weight contiguous and as a transposed
//! view (the tied LM head's layout), and the gradients of input, weight and bias
//! against burn's autodiff of `matmul + bias` on ndarray.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::prelude::*;
use burn::tensor::Distribution;
use pretrainzero_kernels::{linear, FusedLayerBackend};

mod common;
use common::{close, host_values};

const TOLERANCE: f32 = 1e-5;
const ROWS: usize = 37;
const IN: usize = 29;
const OUT: usize = 41;

struct Case {
    x: Vec<f32>,
    /// `[in, out]`.
    weight: Vec<f32>,
    bias: Vec<f32>,
}

fn case() -> Case {
    let device = Default::default();
    NdArray::<f32>::seed(&device, 5);
    let normal = |n: usize| {
        host_values(Tensor::<NdArray<f32>, 1>::random(
            [n],
            Distribution::Normal(0.0, 1.0),
            &device,
        ))
    };
    Case {
        x: normal(ROWS * IN),
        weight: normal(IN * OUT),
        bias: normal(OUT),
    }
}

/// The weight as `[in, out]`, either stored so or stored `[out, in]` and transposed.
fn weight<B: Backend>(case: &Case, transposed: bool, device: &B::Device) -> Tensor<B, 2> {
    if !transposed {
        return Tensor::from_data(TensorData::new(case.weight.clone(), [IN, OUT]), device);
    }
    let stored: Vec<f32> = (0..OUT)
        .flat_map(|o| (0..IN).map(move |i| case.weight[i * OUT + o]))
        .collect();
    Tensor::<B, 2>::from_data(TensorData::new(stored, [OUT, IN]), device).transpose()
}

fn check_forward<B: FusedLayerBackend>(name: &str) {
    let (case, device) = (case(), Default::default());
    let mut expected = vec![0.0f32; ROWS * OUT];
    for r in 0..ROWS {
        for o in 0..OUT {
            let dot: f64 = (0..IN)
                .map(|i| case.x[r * IN + i] as f64 * case.weight[i * OUT + o] as f64)
                .sum();
            expected[r * OUT + o] = (dot + case.bias[o] as f64) as f32;
        }
    }
    for transposed in [false, true] {
        let x = Tensor::<B, 2>::from_data(TensorData::new(case.x.clone(), [ROWS, IN]), &device);
        let bias = Tensor::<B, 1>::from_data(TensorData::new(case.bias.clone(), [OUT]), &device);
        let got = host_values(linear(
            x,
            weight::<B>(&case, transposed, &device),
            Some(bias),
        ));
        close(
            &got,
            &expected,
            TOLERANCE,
            &format!("{name} out (transposed {transposed})"),
        );
    }
}

#[test]
fn product_matches_f64_on_ndarray_and_flex() {
    check_forward::<NdArray<f32>>("ndarray");
    check_forward::<Flex>("flex");
}

/// Gradients of `Σ linear(x) · weights` on `Autodiff<B>`, through `linear` or burn's
/// `matmul` plus bias.
fn gradients<B: FusedLayerBackend>(case: &Case, transposed: bool, fused: bool) -> [Vec<f32>; 3] {
    let device = Default::default();
    type A<B> = Autodiff<B>;
    let x = Tensor::<A<B>, 2>::from_data(TensorData::new(case.x.clone(), [ROWS, IN]), &device)
        .require_grad();
    let w = weight::<A<B>>(case, transposed, &device).require_grad();
    let bias = Tensor::<A<B>, 1>::from_data(TensorData::new(case.bias.clone(), [OUT]), &device)
        .require_grad();
    let out = if fused {
        linear(x.clone(), w.clone(), Some(bias.clone()))
    } else {
        x.clone().matmul(w.clone()) + bias.clone().unsqueeze()
    };
    let weights: Vec<f32> = (0..ROWS * OUT)
        .map(|i| ((i * 13) % 7) as f32 - 3.0)
        .collect();
    let weights = Tensor::<A<B>, 2>::from_data(TensorData::new(weights, [ROWS, OUT]), &device);
    let grads = (out * weights).sum().backward();
    [
        host_values(x.grad(&grads).expect("tracked")),
        host_values(w.grad(&grads).expect("tracked")),
        host_values(bias.grad(&grads).expect("tracked")),
    ]
}

#[test]
fn gradients_match_burns_autodiff() {
    let case = case();
    for transposed in [false, true] {
        let burn = gradients::<NdArray<f32>>(&case, transposed, false);
        for (backend, ours) in [
            (
                "ndarray",
                gradients::<NdArray<f32>>(&case, transposed, true),
            ),
            ("flex", gradients::<Flex>(&case, transposed, true)),
        ] {
            for (name, ours, burn) in [
                ("dx", &ours[0], &burn[0]),
                ("dW", &ours[1], &burn[1]),
                ("dbias", &ours[2], &burn[2]),
            ] {
                close(
                    ours,
                    burn,
                    TOLERANCE,
                    &format!("{backend} {name} (transposed {transposed})"),
                );
            }
        }
    }
}

#[test]
fn product_large_enough_for_the_thread_pool_matches_f64() {
    // 192 · 200 · 190 multiply-adds: above the size from which the product runs on
    // rayon's pool.
    let (rows, width, out) = (192, 200, 190);
    let value =
        |i: usize, salt: usize| (((i * 7919 + salt * 104_729) % 2003) as f32 - 1001.0) / 577.0;
    let x: Vec<f32> = (0..rows * width).map(|i| value(i, 1)).collect();
    let w: Vec<f32> = (0..width * out).map(|i| value(i, 2)).collect();
    let mut expected = vec![0.0f32; rows * out];
    for r in 0..rows {
        for o in 0..out {
            let dot: f64 = (0..width)
                .map(|i| x[r * width + i] as f64 * w[i * out + o] as f64)
                .sum();
            expected[r * out + o] = dot as f32;
        }
    }
    let device = Default::default();
    let x = Tensor::<Flex, 2>::from_data(TensorData::new(x, [rows, width]), &device);
    let w = Tensor::<Flex, 2>::from_data(TensorData::new(w, [width, out]), &device);
    let got = host_values(linear(x, w, None));
    close(&got, &expected, TOLERANCE, "flex out, thread pool");
}
