//! Run-time choice among the backends compiled into this binary.
//!
//! Model and training code is generic over `B: Backend`; a command implements
//! [`BackendTask`] once and [`run_on`] instantiates it for the backend picked by
//! `--device`.

use crate::kernels::RewardStepBackend;
use crate::parallel::DeviceList;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceKind {
    /// CPU through ndarray (always the CI backend).
    Ndarray,
    /// CPU through burn-flex (burn's SIMD CPU backend).
    Flex,
    /// Vulkan / Metal / DX12 through wgpu (laptops).
    Wgpu,
    /// NVIDIA GPUs (build with `--features cuda`).
    Cuda,
}

impl DeviceKind {
    /// CUDA when compiled in, otherwise the fastest CPU backend compiled in (flex
    /// measured faster than ndarray here; see docs/PERFORMANCE.md).
    pub fn default_for_build() -> Self {
        if cfg!(feature = "cuda") {
            Self::Cuda
        } else if cfg!(feature = "flex") {
            Self::Flex
        } else {
            Self::Ndarray
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Ndarray => "ndarray",
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }
}

/// A computation written once for every backend.
pub trait BackendTask {
    type Output;
    fn run<B: RewardStepBackend>(self, device: &B::Device) -> Self::Output;
}

/// A computation over several devices of one backend (data parallel).
pub trait MultiDeviceTask {
    type Output;
    fn run<B: RewardStepBackend>(self, devices: &[B::Device]) -> Self::Output;
}

#[cfg(feature = "ndarray")]
pub type CpuBackend = burn::backend::NdArray<f32>;
#[cfg(feature = "flex")]
pub type FlexBackend = burn::backend::Flex;
/// The GPU backends run burn's `CubeBackend` directly, without its operation-fusion
/// wrapper: the reward-step kernels (kernels crate) are implemented for `CubeBackend`,
/// and fusion would hide them behind `Fusion<…>`. Autotune stays on (matmul selection).
///
/// WGPU without fusion is also a correctness choice. With fusion and autotune both on, burn 0.21
/// can pick a fused-reduce kernel that returns wrong values on Vulkan
/// (tracel-ai/burn#5257; on Mesa lavapipe the parity test then saw `inf` log-probs
/// whenever autotune happened to time the fallback reduce fastest).
#[cfg(feature = "wgpu")]
pub type WgpuBackend =
    burn::backend::wgpu::CubeBackend<burn::backend::wgpu::WgpuRuntime, f32, i32, u32>;
#[cfg(feature = "cuda")]
pub type CudaBackend = crate::kernels::CudaBackend;

pub fn run_on<T: BackendTask>(kind: DeviceKind, task: T) -> anyhow::Result<T::Output> {
    match kind {
        #[cfg(feature = "ndarray")]
        DeviceKind::Ndarray => Ok(task.run::<CpuBackend>(&Default::default())),
        #[cfg(feature = "flex")]
        DeviceKind::Flex => Ok(task.run::<FlexBackend>(&Default::default())),
        #[cfg(feature = "wgpu")]
        DeviceKind::Wgpu => {
            let device = Default::default();
            gpu_runtime_starts::<WgpuBackend>(kind, std::slice::from_ref(&device))?;
            Ok(task.run::<WgpuBackend>(&device))
        }
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => {
            let device = Default::default();
            gpu_runtime_starts::<CudaBackend>(kind, std::slice::from_ref(&device))?;
            Ok(task.run::<CudaBackend>(&device))
        }
        #[allow(unreachable_patterns)]
        other => anyhow::bail!(
            "this binary was built without the `{0}` backend; rebuild with `cargo build --release --features {0}`",
            other.name()
        ),
    }
}

/// Runs `task` on the devices of `kind` with these indices (`None`: the backend's
/// default device). The CPU backends have one device: several indices there are
/// replicas sharing the same cores (the data-parallel path, without a speed-up).
pub fn run_on_devices<T: MultiDeviceTask>(
    kind: DeviceKind,
    indices: Option<&DeviceList>,
    task: T,
) -> anyhow::Result<T::Output> {
    let count = indices.map_or(1, DeviceList::len);
    match kind {
        #[cfg(feature = "ndarray")]
        DeviceKind::Ndarray => Ok(task.run::<CpuBackend>(&vec![Default::default(); count])),
        #[cfg(feature = "flex")]
        DeviceKind::Flex => Ok(task.run::<FlexBackend>(&vec![Default::default(); count])),
        #[cfg(feature = "wgpu")]
        DeviceKind::Wgpu => {
            let devices: Vec<burn::backend::wgpu::WgpuDevice> = match indices {
                None => vec![Default::default()],
                Some(list) => list
                    .indices()
                    .iter()
                    .map(|&i| burn::backend::wgpu::WgpuDevice::DiscreteGpu(i))
                    .collect(),
            };
            gpu_runtime_starts::<WgpuBackend>(kind, &devices)?;
            Ok(task.run::<WgpuBackend>(&devices))
        }
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => {
            let devices: Vec<burn::backend::cuda::CudaDevice> = match indices {
                None => vec![Default::default()],
                Some(list) => list
                    .indices()
                    .iter()
                    .map(|&i| burn::backend::cuda::CudaDevice::new(i))
                    .collect(),
            };
            gpu_runtime_starts::<CudaBackend>(kind, &devices)?;
            Ok(task.run::<CudaBackend>(&devices))
        }
        #[allow(unreachable_patterns)]
        other => anyhow::bail!(
            "this binary was built without the `{0}` backend; rebuild with `cargo build --release --features {0}`",
            other.name()
        ),
    }
}

/// Starts the GPU runtime on each device with one tiny tensor read back. Without a
/// driver or a device, burn's runtime panics at the first operation (in its server
/// thread, then in ours); the probe turns that into an error that names the backend
/// and the way out, before a command has written anything.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn gpu_runtime_starts<B: burn::tensor::backend::Backend>(
    kind: DeviceKind,
    devices: &[B::Device],
) -> anyhow::Result<()> {
    for device in devices {
        let read_back = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            burn::tensor::Tensor::<B, 1>::zeros([1], device).try_into_data()
        }));
        let why = match read_back {
            Ok(Ok(_)) => continue,
            Ok(Err(error)) => format!("{error:?}"),
            Err(_) => "the panic message above says why".to_string(),
        };
        anyhow::bail!(
            "no usable {} device ({device:?}): its runtime did not start ({why}); choose a CPU backend with --device (see --help)",
            kind.name()
        );
    }
    Ok(())
}
