//! Gradients of one micro-batch computed as several shards at the same time.
//!
//! A micro-batch's loss is a sum over its sequences, so its gradient is the sum of its
//! shards' gradients. On the CPU backends only matrix products and reductions are
//! multi-threaded; the elementwise and copy work around them (about half of a training
//! step) runs on one thread. Running the shards' forward and backward passes
//! concurrently, one per core, keeps every core busy in those stretches too. The
//! shards' gradients are summed in shard order, so the result does not depend on which
//! shard finished first. Pretraining splits each micro-batch (two shards per
//! thread), so its peak memory is that of the unsplit micro-batch; the GRPO update
//! runs whole micro-batches concurrently where it can (one per thread; see
//! `update::policy_update`).
//!
//! On a GPU one stream already keeps the device busy, so there it is one shard.

use crate::kernels::RewardStepBackend;
use burn::module::{AutodiffModule, ModuleMapper, Param};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

/// How many shards each micro-batch is split into, each with its own forward and
/// backward pass running concurrently (1: the micro-batch in one pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackwardShards(usize);

impl BackwardShards {
    pub fn new(shards: usize) -> Self {
        Self(shards.max(1))
    }

    /// One shard per thread of rayon's pool on the CPU backends, one on the GPU ones.
    pub fn for_backend<B: RewardStepBackend>() -> Self {
        Self::new(B::concurrent_pieces())
    }

    /// Pretraining: two shards per thread on the CPU backends, one on the GPU ones.
    /// More shards than threads overlap one shard's single-threaded elementwise work
    /// with another's matrix products on the pool (`bench train --preset small`,
    /// alternating runs: pretraining step 771–781 tokens/s with 2 shards on 2
    /// threads, 814–828 with 4, 798–809 with 8). The GRPO update keeps one per
    /// thread: its pieces each run a group's shared prompt, so more of them repeat it.
    /// With one thread (as in deterministic mode) it stays one shard.
    pub fn for_pretraining<B: RewardStepBackend>() -> Self {
        let per_thread = Self::for_backend::<B>();
        if B::CPU_THREAD_POOL && per_thread.0 > 1 {
            Self::new(2 * per_thread.0)
        } else {
            per_thread
        }
    }

    /// How many pieces run at the same time.
    pub fn count(self) -> usize {
        self.0
    }

    /// Splits `items` into at most `count()` contiguous, near-equal, non-empty shards.
    pub fn split<T>(self, items: &[T]) -> Vec<&[T]> {
        if items.is_empty() {
            return Vec::new();
        }
        let size = items.len().div_ceil(self.0.min(items.len()));
        items.chunks(size).collect()
    }
}

/// Adds to `accumulator` the gradient of `loss_of(model, shard)` for every shard, in
/// shard order, and returns whatever else `loss_of` returns per shard. With one shard
/// everything runs on the calling thread.
pub fn accumulate_sharded_gradients<B, M, S, T, F>(
    model: &M,
    shards: Vec<S>,
    loss_of: F,
    accumulator: &mut GradientsAccumulator<M>,
) -> Vec<T>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    S: Send,
    T: Send,
    F: Fn(&M, S) -> (Tensor<B, 1>, T) + Sync,
{
    let shard_gradients = |(model, shard): (M, S)| {
        let (loss, extra) = loss_of(&model, shard);
        (GradientsParams::from_grads(loss.backward(), &model), extra)
    };
    let jobs: Vec<(M, S)> = if shards.len() == 1 {
        shards.into_iter().map(|s| (model.clone(), s)).collect()
    } else {
        // Each shard gets its own leaves over the same parameter data: burn's autodiff
        // merges graphs that share a node, and concurrent backward passes over one
        // merged graph deadlock on its locks (seen here). The gradients still land on
        // the same parameter ids.
        shards
            .into_iter()
            .map(|s| (model.clone().map(&mut FreshLeaves), s))
            .collect()
    };
    let results: Vec<(GradientsParams, T)> = run_concurrently(jobs, shard_gradients);

    results
        .into_iter()
        .map(|(grads, extra)| {
            accumulator.accumulate(model, grads);
            extra
        })
        .collect()
}

/// `f` of every job, in job order, each job on a thread of its own (a single job runs on
/// the calling thread). Threads of their own rather than tasks of rayon's pool: the
/// backend ops inside each job hand work to that pool and wait for it.
pub fn run_concurrently<J, T, F>(jobs: Vec<J>, f: F) -> Vec<T>
where
    J: Send,
    T: Send,
    F: Fn(J) -> T + Sync,
{
    if jobs.len() <= 1 {
        return jobs.into_iter().map(f).collect();
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs.into_iter().map(|job| scope.spawn(|| f(job))).collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Replaces every trainable parameter by a new autodiff leaf over the same data, with
/// the same parameter id.
struct FreshLeaves;

impl<B: AutodiffBackend> ModuleMapper<B> for FreshLeaves {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let tensor = if tensor.is_require_grad() {
            tensor.detach().require_grad()
        } else {
            tensor
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}
