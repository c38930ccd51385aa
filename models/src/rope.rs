//! Rotary position embedding in the "rotate-half" layout of HuggingFace Qwen/Llama
//! checkpoints (burn's own `RotaryEncoding` rotates interleaved pairs, which would
//! need the q/k rows permuted at load time).

use burn::prelude::*;

use crate::config::{ModelConfig, RopeScaling};

/// The inverse frequencies of one head; cos/sin are computed on the device for the
/// positions at hand, so no table bounded by `max_position_embeddings` is stored.
#[derive(Module, Debug)]
pub struct RotaryEmbedding<B: Backend> {
    /// `[head_dim / 2]`.
    inv_freq: Tensor<B, 1>,
}

/// cos and sin for a batch of positions, laid out for q/k in the `[batch, seq, heads,
/// head_dim]` layout of the projections, where those tensors are still contiguous.
/// The tables are expanded to each head count once per forward pass: multiplying by a
/// `[batch, seq, 1, head_dim]` table broadcast over the heads sends the CPU backends
/// through their strided element-by-element path in every layer.
#[derive(Debug, Clone)]
pub struct RotaryAngles<B: Backend> {
    /// `(heads, cos, signed_sin)`, each `[batch, seq, heads, head_dim]` and contiguous;
    /// `signed_sin` has its first half negated (rotate-half's sign), so the rotation
    /// is `x · cos + swap_halves(x) · signed_sin`.
    expanded: Vec<(usize, Tensor<B, 4>, Tensor<B, 4>)>,
}

impl<B: Backend> RotaryEmbedding<B> {
    pub fn new(config: &ModelConfig, device: &B::Device) -> Self {
        let inv_freq = inverse_frequencies(config);
        let len = inv_freq.len();
        Self {
            inv_freq: Tensor::from_data(TensorData::new(inv_freq, [len]), device),
        }
    }

    /// `positions`: `[batch, seq]` absolute positions of the tokens; `head_counts`: the
    /// numbers of heads the tables will rotate (query and key/value heads); `dtype`:
    /// the type of the q/k they will rotate (the angles themselves are computed in
    /// f32, and only the finished cos/sin tables are cast, as transformers does).
    pub fn angles(
        &self,
        positions: Tensor<B, 2, Int>,
        head_counts: &[usize],
        dtype: burn::tensor::FloatDType,
    ) -> RotaryAngles<B> {
        let [batch, seq] = positions.dims();
        let half = self.inv_freq.dims()[0];
        // Same order of operations as transformers: float32 positions times float32
        // inverse frequencies, then cos/sin (of each frequency once; both halves of a
        // head use the same angles).
        let freqs = positions.float().reshape([batch, seq, 1])
            * self.inv_freq.clone().reshape([1, 1, half]);
        let (cos, sin) = (freqs.clone().cos(), freqs.sin());
        let table = |first: Tensor<B, 3>, second: Tensor<B, 3>| {
            Tensor::cat(vec![first, second], 2).reshape([batch, seq, 1, 2 * half])
        };
        // (A cast to f32 of these f32 tables returns them as they are.)
        let signed_sin = table(sin.clone().neg(), sin).cast(dtype);
        let cos = table(cos.clone(), cos).cast(dtype);
        let mut expanded = Vec::new();
        for &heads in head_counts {
            if expanded.iter().any(|(h, _, _)| *h == heads) {
                continue;
            }
            expanded.push((
                heads,
                cos.clone().repeat_dim(2, heads),
                signed_sin.clone().repeat_dim(2, heads),
            ));
        }
        RotaryAngles { expanded }
    }
}

impl<B: Backend> RotaryAngles<B> {
    /// Rotates `x`: `[batch, seq, heads, head_dim]`.
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, s, h, d] = x.dims();
        let half = d / 2;
        let first = x.clone().slice([0..b, 0..s, 0..h, 0..half]);
        let second = x.clone().slice([0..b, 0..s, 0..h, half..d]);
        let swapped = Tensor::cat(vec![second, first], 3);
        let (_, cos, signed_sin) = self
            .expanded
            .iter()
            .find(|(heads, _, _)| *heads == h)
            .expect("RotaryEmbedding::angles was given every head count it rotates");
        x * cos.clone() + swapped * signed_sin.clone()
    }
}

/// `theta^(-2i/d)` in float32 as transformers computes it, with Llama-3 scaling
/// applied when the config asks for it.
pub fn inverse_frequencies(config: &ModelConfig) -> Vec<f32> {
    let dim = config.head_dim;
    let base = config.rope_theta as f32;
    let plain: Vec<f32> = (0..dim)
        .step_by(2)
        .map(|i| 1.0 / base.powf(i as f32 / dim as f32))
        .collect();
    match config.rope_scaling {
        RopeScaling::None => plain,
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings: old_context,
        } => plain
            .into_iter()
            .map(|freq| {
                let freq = freq as f64;
                let wavelen = 2.0 * std::f64::consts::PI / freq;
                let low_freq_wavelen = old_context / low_freq_factor;
                let high_freq_wavelen = old_context / high_freq_factor;
                let scaled = if wavelen < high_freq_wavelen {
                    freq
                } else if wavelen > low_freq_wavelen {
                    freq / factor
                } else {
                    let smooth = (old_context / wavelen - low_freq_factor)
                        / (high_freq_factor - low_freq_factor);
                    (1.0 - smooth) * freq / factor + smooth * freq
                };
                scaled as f32
            })
            .collect(),
    }
}
