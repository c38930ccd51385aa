//! The float type a model computes in: f32, or bf16 mixed precision.
//!
//! Under bf16 the weights stay f32 (the master copy the optimizer updates, and what a
//! checkpoint holds); each layer casts its weights to bf16 where it uses them, so the
//! products, activations and logits are bf16 and the gradients flow back through the
//! casts into f32. RMSNorm, the rotary angles, sampling and the reward step's sums stay
//! f32. This is PyTorch autocast's recipe, made explicit in the decoder.

use std::fmt;
use std::str::FromStr;

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComputeDtype {
    #[default]
    F32,
    Bf16,
}

impl ComputeDtype {
    pub fn float_dtype(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::Bf16 => FloatDType::BF16,
        }
    }

    /// Bytes of one element.
    pub fn element_bytes(self) -> usize {
        DType::from(self.float_dtype()).size()
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        }
    }

    /// Whether backend `B` computes in this type on `device` (bf16: CUDA and burn-flex
    /// do; ndarray and the WGPU shaders do not).
    pub fn check_backend<B: Backend>(self, device: &B::Device) -> Result<(), UnsupportedDtype> {
        if B::supports_dtype(device, DType::from(self.float_dtype())) {
            Ok(())
        } else {
            Err(UnsupportedDtype(self))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this backend cannot compute in {0} (CUDA and burn-flex can); use f32")]
pub struct UnsupportedDtype(pub ComputeDtype);

/// Casts the matrices (linear weights, the embedding table) to `dtype`, for a model
/// that only runs forward (see `Decoder::with_weights_in_compute_dtype`). Vectors
/// keep their type: biases are cast where they are added, and RMSNorm's scales are
/// read in f32 anyway. The result computes exactly what the uncast model computes
/// when it casts each matrix at use, so a rollout samples from the very policy the
/// update scores.
pub(crate) struct CastMatrices {
    pub dtype: FloatDType,
}

impl<B: Backend> ModuleMapper<B> for CastMatrices {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if D != 2 {
            return param;
        }
        let (id, tensor, mapper) = param.consume();
        Param::from_mapped_value(id, tensor.cast(self.dtype), mapper)
    }
}

impl fmt::Display for ComputeDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ComputeDtype {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "f32" | "float32" => Ok(Self::F32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            other => Err(format!("unknown compute type `{other}` (use f32 or bf16)")),
        }
    }
}
