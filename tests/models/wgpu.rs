//! The parity test on WGPU. In CI this runs on Mesa's software Vulkan driver
//! (lavapipe); without any adapter it is skipped with a message.

#[cfg(feature = "wgpu")]
#[test]
fn fixtures_match_transformers_on_wgpu() {
    use burn::backend::wgpu::{Wgpu, WgpuDevice};

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
