//! Global-norm gradient clipping (burn's `GradientClipping::Norm` clips each tensor
//! separately; LLM training clips the norm of all gradients together).

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    total: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let squares = grad.square().sum();
            self.total = Some(match self.total.take() {
                Some(total) => total + squares,
                None => squares,
            });
        }
    }
}

struct Scale<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    factor: f64,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register(param.id, grad * self.factor);
        }
    }
}

/// Scales all gradients so that their global L2 norm is at most `max_norm`;
/// returns the norm before clipping.
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    let mut norm = SquaredNorm::<B> { grads, total: None };
    model.visit(&mut norm);
    let norm = match norm.total {
        Some(total) => total.into_scalar().elem::<f64>().sqrt(),
        None => return 0.0,
    };
    if max_norm > 0.0 && norm > max_norm {
        let mut scale = Scale::<B> {
            grads,
            factor: max_norm / (norm + 1e-6),
            _backend: std::marker::PhantomData,
        };
        model.visit(&mut scale);
    }
    norm
}
