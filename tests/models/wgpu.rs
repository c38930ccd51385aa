//! The parity test on WGPU. In CI this runs on Mesa's software Vulkan driver
//! (lavapipe); without any adapter it is skipped with a message.

#[cfg(feature = "wgpu")]
#[test]
fn fixtures_match_transformers_on_wgpu() {
    use burn::backend::wgpu::WgpuDevice;
    use pretrainzero::backend::WgpuBackend as Wgpu;

    crate::require_shared!("models");
    let device = WgpuDevice::default();
    // Creating the first tensor initialises the adapter; with no adapter at all,
    // burn panics there, and we report a skip instead of a failure.
    let probe = std::panic::catch_unwind(|| {
        burn::tensor::Tensor::<Wgpu, 1>::from_floats([1.0, 2.0], &device).into_data()
    });
    if probe.is_err() {
        eprintln!("SKIPPED: no WGPU adapter (install mesa-vulkan-drivers libvulkan1 for a software Vulkan device)");
        return;
    }
    for name in crate::FIXTURE_MODELS {
        if let Some(diff) = crate::parity::check_fixture::<Wgpu>(name, &device) {
            println!("{name}: max |Δ| = {diff:.2e} (wgpu)");
        }
    }
}

/// burn 0.21's own row reductions are wrong on WGPU for rows of ≥ 65,536 elements
/// (see `models/src/row_ops.rs`); the chunked versions must match the host on
/// Qwen3-sized rows.
#[cfg(feature = "wgpu")]
#[test]
fn chunked_row_ops_are_right_on_vocabulary_sized_rows() {
    use burn::backend::wgpu::WgpuDevice;
    use burn::prelude::*;
    use pretrainzero::backend::WgpuBackend as W;
    use pretrainzero::models::row_ops::{row_argmax, row_cumsum, row_logsumexp, row_max, row_sum};

    crate::require_shared!("models");
    let device = WgpuDevice::default();
    if std::panic::catch_unwind(|| Tensor::<W, 1>::from_floats([1.0], &device).into_data()).is_err()
    {
        eprintln!("SKIPPED: no WGPU adapter");
        return;
    }
    let (rows, width) = (8usize, 151_936usize);
    let mut data: Vec<f32> = (0..rows * width)
        .map(|i| ((i * 7919) % 1000) as f32 / 100.0)
        .collect();
    for r in 0..rows {
        data[r * width + (r * 37_003) % width] = 20.0 + r as f32;
    }
    let x = Tensor::<W, 1>::from_floats(data.as_slice(), &device).reshape([rows, width]);
    let to_f32 =
        |t: Tensor<W, 2>| -> Vec<f32> { t.into_data().convert::<f32>().into_vec().unwrap() };
    let max = to_f32(row_max(x.clone()));
    let sum = to_f32(row_sum(x.clone()));
    let lse = to_f32(row_logsumexp(x.clone()));
    let cumsum = to_f32(row_cumsum(x.clone()));
    let argmax: Vec<i64> = row_argmax(x)
        .into_data()
        .convert::<i64>()
        .into_vec()
        .unwrap();
    for r in 0..rows {
        let row = &data[r * width..(r + 1) * width];
        let host_max = 20.0 + r as f32;
        let host_sum: f64 = row.iter().map(|&v| v as f64).sum();
        let host_lse = host_max as f64
            + row
                .iter()
                .map(|&v| ((v - host_max) as f64).exp())
                .sum::<f64>()
                .ln();
        assert_eq!(max[r], host_max, "row {r} max");
        assert_eq!(argmax[r] as usize, (r * 37_003) % width, "row {r} argmax");
        assert!(
            ((sum[r] as f64 - host_sum) / host_sum).abs() < 1e-5,
            "row {r} sum {} vs {host_sum}",
            sum[r]
        );
        assert!((lse[r] as f64 - host_lse).abs() < 1e-4, "row {r} logsumexp");
        let last = cumsum[r * width + width - 1] as f64;
        assert!(
            ((last - host_sum) / host_sum).abs() < 1e-4,
            "row {r} cumsum {last} vs {host_sum}"
        );
    }
}
