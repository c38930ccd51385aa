//! `Autodiff<B>`: the forward runs `B`'s implementation (kernel, CPU host loop or
//! reference) and registers a backward that calls `B`'s backward: one pass over the
//! logits for the reward step (no softmax is stored between the passes), one over
//! the gate and up projections for SwiGLU, two over each row for RMSNorm, two matrix
//! products for a linear layer, and for attention (on backends with loops of their
//! own) four products and one pass over the probabilities.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::{BoolTensor, FloatTensor, IntTensor};

use crate::backend_ext::{FusedLayerBackend, RewardStepBackend};

/// What the backward needs: the logits and row statistics (the output of the forward
/// holds the entropy). Holding `logits` keeps the LM head's output alive until the
/// backward, which the matmul's own backward does not need; the reference path held
/// two `[N, V]` tensors instead.
#[derive(Debug, Clone)]
struct LogprobEntropyState<B: RewardStepBackend> {
    logits: FloatTensor<B>,
    targets: IntTensor<B>,
    mask: FloatTensor<B>,
    stats: FloatTensor<B>,
    out: FloatTensor<B>,
}

#[derive(Debug)]
struct LogprobEntropyBackward;

impl<B: RewardStepBackend> Backward<B, 1> for LogprobEntropyBackward {
    type State = LogprobEntropyState<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [logits_node] = ops.parents;
        let grad_out = grads.consume::<B>(&ops.node);
        let state = ops.state;
        if let Some(node) = logits_node {
            let grad = B::logprob_entropy_backward(
                state.logits,
                state.targets,
                state.mask,
                state.stats,
                state.out,
                grad_out,
            );
            grads.register::<B>(node.id, grad);
        }
    }
}

impl<B: RewardStepBackend, C: CheckpointStrategy> RewardStepBackend for Autodiff<B, C> {
    const CPU_THREAD_POOL: bool = B::CPU_THREAD_POOL;

    fn logprob_entropy_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        mask: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (out, stats) = B::logprob_entropy_forward(
            logits.primitive.clone(),
            targets.clone(),
            mask.primitive.clone(),
        );
        let stats_out = Self::from_inner(stats.clone());
        let out = match LogprobEntropyBackward
            .prepare::<C>([logits.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = LogprobEntropyState {
                    logits: logits.primitive,
                    targets,
                    mask: mask.primitive,
                    stats,
                    out: out.clone(),
                };
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        (out, stats_out)
    }

    fn reserved_memory_bytes(device: &Self::Device) -> Option<u64> {
        B::reserved_memory_bytes(device)
    }

    fn reward_step_form(device: &Self::Device) -> &'static str {
        B::reward_step_form(device)
    }

    fn group_advantages(
        rewards: FloatTensor<Self>,
        group_size: usize,
        scale: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (advantages, keep) = B::group_advantages(rewards.primitive, group_size, scale);
        (Self::from_inner(advantages), Self::from_inner(keep))
    }

    fn generator_rewards(
        predictor_rewards: FloatTensor<Self>,
        answers_per_mask: usize,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::generator_rewards(
            predictor_rewards.primitive,
            answers_per_mask,
        ))
    }
}

/// SwiGLU's backward; its state is the two inputs (which burn's own `silu · up` held
/// for its backward too).
#[derive(Debug)]
struct SwigluBackward;

impl<B: FusedLayerBackend> Backward<B, 2> for SwigluBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [gate_node, up_node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (gate, up) = ops.state;
        let (grad_gate, grad_up) = B::swiglu_backward(gate, up, grad);
        if let Some(node) = gate_node {
            grads.register::<B>(node.id, grad_gate);
        }
        if let Some(node) = up_node {
            grads.register::<B>(node.id, grad_up);
        }
    }
}

/// The backward of a linear layer's product `x · W`: `∂x = ∂out · Wᵀ`,
/// `∂W = xᵀ · ∂out`, the transposes as views; its state is the two operands (which
/// burn's own linear held too).
#[derive(Debug)]
struct LinearBackward;

impl<B: FusedLayerBackend> Backward<B, 2> for LinearBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, weight_node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight) = ops.state;
        if let Some(node) = x_node {
            let grad_x = B::linear_product(grad.clone(), B::float_transpose(weight));
            grads.register::<B>(node.id, grad_x);
        }
        if let Some(node) = weight_node {
            grads.register::<B>(node.id, B::linear_product(B::float_transpose(x), grad));
        }
    }
}

/// Attention's backward; its state is `q`, `k`, `v` and the probabilities.
#[derive(Debug)]
struct AttentionBackward;

impl<B: FusedLayerBackend> Backward<B, 3> for AttentionBackward {
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [q_node, k_node, v_node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (q, k, v, probabilities) = ops.state;
        let (grad_q, grad_k, grad_v) = B::scaled_attention_backward(q, k, v, probabilities, grad);
        for (node, grad) in [(q_node, grad_q), (k_node, grad_k), (v_node, grad_v)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// RMSNorm's backward; its state is the input, the scale and ε.
#[derive(Debug)]
struct RmsNormBackward;

impl<B: FusedLayerBackend> Backward<B, 2> for RmsNormBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, f64);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, gamma_node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma, epsilon) = ops.state;
        let (grad_x, grad_gamma) = B::rms_norm_backward(x, gamma, epsilon, grad);
        if let Some(node) = x_node {
            grads.register::<B>(node.id, grad_x);
        }
        if let Some(node) = gamma_node {
            grads.register::<B>(node.id, grad_gamma);
        }
    }
}

impl<B: FusedLayerBackend, C: CheckpointStrategy> FusedLayerBackend for Autodiff<B, C> {
    fn rms_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self> {
        let out = B::rms_norm(x.primitive.clone(), gamma.primitive.clone(), epsilon);
        match RmsNormBackward
            .prepare::<C>([x.node.clone(), gamma.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x.primitive, gamma.primitive, epsilon), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn linear_product(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = B::linear_product(x.primitive.clone(), weight.primitive.clone());
        match LinearBackward
            .prepare::<C>([x.node.clone(), weight.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x.primitive, weight.primitive), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn scaled_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        mask: Option<BoolTensor<Self>>,
        is_causal: bool,
    ) -> FloatTensor<Self> {
        if !B::OWN_ATTENTION_BACKWARD {
            return crate::attention::reference::forward::<Self>(q, k, v, mask, is_causal);
        }
        match AttentionBackward
            .prepare::<C>([q.node.clone(), k.node.clone(), v.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (out, probabilities) = B::scaled_attention_with_probabilities(
                    q.primitive.clone(),
                    k.primitive.clone(),
                    v.primitive.clone(),
                    mask,
                    is_causal,
                );
                prep.finish((q.primitive, k.primitive, v.primitive, probabilities), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::scaled_attention(
                q.primitive,
                k.primitive,
                v.primitive,
                mask,
                is_causal,
            )),
        }
    }

    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = B::swiglu(gate.primitive.clone(), up.primitive.clone());
        match SwigluBackward
            .prepare::<C>([gate.node.clone(), up.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((gate.primitive, up.primitive), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}
