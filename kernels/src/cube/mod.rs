//! `RewardStepBackend` for burn's CubeCL backends (WGPU, CUDA): launch code for the
//! kernels of this folder.

mod advantages;
mod logprob_entropy;

use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{DType, Shape, TensorMetadata};
use burn_cubecl::element::BoolElement;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{CubeBackend, CubeRuntime, FloatElement, IntElement};
use cubecl::prelude::*;

use crate::backend_ext::{FusedLayerBackend, RewardStepBackend};

/// Units per cube for the row kernels: 256 is within every device's limit (WebGPU
/// guarantees 256) and enough to keep a row's reads coalesced.
const ROW_BLOCK: u32 = 256;
/// Units per cube for the per-group kernels.
const GROUP_BLOCK: u32 = 64;
/// Largest cube count per grid dimension that every backend accepts.
const MAX_GRID_X: usize = 65_535;

/// One cube per row, rows beyond 65,535 spilling into the grid's y dimension.
fn row_grid(rows: usize) -> CubeCount {
    let x = rows.clamp(1, MAX_GRID_X);
    let y = rows.div_ceil(MAX_GRID_X).max(1);
    CubeCount::Static(x as u32, y as u32, 1)
}

/// Units per cube for the row kernels on this device.
fn row_block<R: CubeRuntime>(client: &ComputeClient<R>) -> u32 {
    let hardware_max = client.properties().hardware.max_cube_dim.0;
    // A power of two, for the tree merge.
    let mut block = ROW_BLOCK.min(hardware_max);
    while !block.is_power_of_two() {
        block -= 1;
    }
    block
}

/// The widest vector of logits one load can move that divides the row (1 for a
/// vocabulary of odd size). `logits` is contiguous.
fn row_vector_width<R: CubeRuntime>(logits: &CubeTensor<R>) -> usize {
    cubecl::tensor_vector_size_parallel(
        logits.client.io_optimized_vector_sizes(logits.dtype.size()),
        logits.meta.shape(),
        logits.meta.strides(),
        1,
    )
}

/// Whether the forward kernel may merge its units' partial sums with plane
/// operations: the runtime has them, and whole planes fit in the cube (plane sizes and
/// the cube size are powers of two, so the cube then holds a whole number of planes).
fn plane_merge<R: CubeRuntime>(client: &ComputeClient<R>, block: u32) -> bool {
    let properties = client.properties();
    properties
        .features
        .plane
        .contains(cubecl::features::Plane::Ops)
        && properties.hardware.plane_size_max <= block
}

fn empty<R: CubeRuntime>(like: &CubeTensor<R>, shape: Shape, dtype: DType) -> CubeTensor<R> {
    empty_device_dtype::<R>(like.client.clone(), like.device.clone(), shape, dtype)
}

/// `tensor` as f32 (a no-op when it already is).
fn f32_tensor<R: CubeRuntime>(tensor: CubeTensor<R>) -> CubeTensor<R> {
    if tensor.dtype == DType::F32 {
        tensor
    } else {
        into_contiguous(burn_cubecl::kernel::cast(tensor, DType::F32))
    }
}

/// The decoder's fused layers take burn's operations here (the trait's defaults).
impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> FusedLayerBackend
    for CubeBackend<R, F, I, BT>
{
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> RewardStepBackend
    for CubeBackend<R, F, I, BT>
{
    fn reserved_memory_bytes(device: &Self::Device) -> Option<u64> {
        R::client(device)
            .memory_usage()
            .ok()
            .map(|usage| usage.bytes_reserved)
    }

    fn reward_step_form(device: &Self::Device) -> &'static str {
        let client = R::client(device);
        if plane_merge(&client, row_block(&client)) {
            "CubeCL kernels, vector loads where the vocabulary allows, plane merge"
        } else {
            "CubeCL kernels, vector loads where the vocabulary allows, shared-memory merge"
        }
    }

    fn logprob_entropy_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        mask: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let logits = into_contiguous(logits);
        let targets = into_contiguous(targets);
        let mask = into_contiguous(mask);
        let [rows, _] = logits.shape().dims::<2>();
        // Outputs and statistics are f32 whatever the logits' type (see the kernel).
        let mask = f32_tensor(mask);
        let out = empty(&logits, Shape::new([rows, 2]), DType::F32);
        let stats = empty(&logits, Shape::new([rows, 2]), DType::F32);
        let block = row_block(&logits.client);
        let width = row_vector_width(&logits);
        let plane = plane_merge(&logits.client, block);
        let dtypes = [logits.dtype.into(), DType::F32.into(), targets.dtype.into()];
        logprob_entropy::logprob_entropy_forward_kernel::launch::<R>(
            &logits.client.clone(),
            row_grid(rows),
            CubeDim::new_1d(block),
            width,
            logits.into_tensor_arg(),
            targets.into_tensor_arg(),
            mask.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            stats.clone().into_tensor_arg(),
            block,
            plane,
            dtypes,
        );
        (out, stats)
    }

    fn logprob_entropy_backward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        mask: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        out: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let logits = into_contiguous(logits);
        let targets = into_contiguous(targets);
        let mask = into_contiguous(mask);
        let stats = into_contiguous(stats);
        let out = into_contiguous(out);
        let grad_out = into_contiguous(grad_out);
        let (mask, stats, out, grad_out) = (
            f32_tensor(mask),
            f32_tensor(stats),
            f32_tensor(out),
            f32_tensor(grad_out),
        );
        let shape = logits.shape();
        let [rows, _] = shape.dims::<2>();
        let grad_logits = empty(&logits, shape, logits.dtype);
        let block = row_block(&logits.client);
        let width = row_vector_width(&logits);
        let dtypes = [logits.dtype.into(), DType::F32.into(), targets.dtype.into()];
        logprob_entropy::logprob_entropy_backward_kernel::launch::<R>(
            &logits.client.clone(),
            row_grid(rows),
            CubeDim::new_1d(block),
            width,
            logits.into_tensor_arg(),
            targets.into_tensor_arg(),
            mask.into_tensor_arg(),
            stats.into_tensor_arg(),
            out.into_tensor_arg(),
            grad_out.into_tensor_arg(),
            grad_logits.clone().into_tensor_arg(),
            block,
            dtypes,
        );
        grad_logits
    }

    fn group_advantages(
        rewards: FloatTensor<Self>,
        group_size: usize,
        scale: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let rewards = into_contiguous(rewards);
        let shape = rewards.shape();
        let groups = shape.num_elements() / group_size;
        let advantages = empty(&rewards, shape.clone(), rewards.dtype);
        let keep = empty(&rewards, shape, rewards.dtype);
        let dtype = rewards.dtype.into();
        advantages::group_advantages_kernel::launch::<R>(
            &rewards.client.clone(),
            CubeCount::Static(groups.div_ceil(GROUP_BLOCK as usize).max(1) as u32, 1, 1),
            CubeDim::new_1d(GROUP_BLOCK),
            rewards.into_tensor_arg(),
            advantages.clone().into_tensor_arg(),
            keep.clone().into_tensor_arg(),
            group_size as u32,
            scale as u32,
            dtype,
        );
        (advantages, keep)
    }

    fn generator_rewards(
        predictor_rewards: FloatTensor<Self>,
        answers_per_mask: usize,
    ) -> FloatTensor<Self> {
        let predictor_rewards = into_contiguous(predictor_rewards);
        let tasks = predictor_rewards.shape().num_elements() / answers_per_mask;
        let rewards = empty(
            &predictor_rewards,
            Shape::new([tasks]),
            predictor_rewards.dtype,
        );
        let dtype = predictor_rewards.dtype.into();
        advantages::generator_rewards_kernel::launch::<R>(
            &predictor_rewards.client.clone(),
            CubeCount::Static(tasks.div_ceil(GROUP_BLOCK as usize).max(1) as u32, 1, 1),
            CubeDim::new_1d(GROUP_BLOCK),
            predictor_rewards.into_tensor_arg(),
            rewards.clone().into_tensor_arg(),
            answers_per_mask as u32,
            dtype,
        );
        rewards
    }
}
