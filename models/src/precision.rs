//! The float type a model computes in: f32, or bf16 mixed precision.
//!
//! Under bf16 the weights stay f32 (the master copy the optimizer updates, and what a
//! checkpoint holds); each layer casts its weights to bf16 where it uses them, so the
//! products, activations and logits are bf16 and the gradients flow back through the
//! casts into f32. RMSNorm, the rotary angles, sampling and the reward step's sums stay
//! f32. This is PyTorch autocast's recipe, made explicit in the decoder.

use std::fmt;
use std::str::FromStr;

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
        match self {
            Self::F32 => 4,
            Self::Bf16 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        }
    }

    /// Whether backend `B` computes in this type on `device` (bf16: CUDA and burn-flex
    /// do; ndarray and the WGPU shaders do not), as an error message that says what to
    /// use instead.
    pub fn check_backend<B: Backend>(self, device: &B::Device) -> Result<(), String> {
        if B::supports_dtype(device, DType::from(self.float_dtype())) {
            Ok(())
        } else {
            Err(format!(
                "this backend cannot compute in {} (bf16 runs on --device cuda or flex); use f32",
                self.name()
            ))
        }
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
