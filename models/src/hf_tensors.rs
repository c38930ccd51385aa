//! The decoder's weights under their HuggingFace names and in HF layout: the inverse of
//! `Decoder::new`, which `save_pretrained` writes and the round-trip tests compare.

use burn::nn::{Linear, RmsNorm};
use burn::prelude::*;

use crate::decoder::Decoder;

/// A tensor as it is stored in HF checkpoints: name, shape, row-major f32 values.
pub struct HfTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl<B: Backend> Decoder<B> {
    /// Every weight under its HF name and in HF layout (the inverse of [`Decoder::new`]).
    pub fn hf_tensors(&self) -> Vec<HfTensor> {
        let mut out = Vec::new();
        let push_linear = |out: &mut Vec<HfTensor>, name: String, linear: &Linear<B>| {
            let [d_in, d_out] = linear.weight.dims();
            let values = host_f32(linear.weight.val().into_data());
            out.push(HfTensor {
                name: format!("{name}.weight"),
                shape: vec![d_out, d_in],
                values: crate::weights::transpose(&values, d_in, d_out),
            });
            if let Some(bias) = &linear.bias {
                out.push(HfTensor {
                    name: format!("{name}.bias"),
                    shape: vec![d_out],
                    values: host_f32(bias.val().into_data()),
                });
            }
        };
        let push_norm = |out: &mut Vec<HfTensor>, name: String, norm: &RmsNorm<B>| {
            out.push(HfTensor {
                name: format!("{name}.weight"),
                shape: norm.gamma.dims().to_vec(),
                values: host_f32(norm.gamma.val().into_data()),
            });
        };

        out.push(HfTensor {
            name: "model.embed_tokens.weight".into(),
            shape: self.embed_tokens.weight.dims().to_vec(),
            values: host_f32(self.embed_tokens.weight.val().into_data()),
        });
        for (i, layer) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            let attn = &layer.self_attn;
            push_linear(&mut out, format!("{p}.self_attn.q_proj"), &attn.q_proj);
            push_linear(&mut out, format!("{p}.self_attn.k_proj"), &attn.k_proj);
            push_linear(&mut out, format!("{p}.self_attn.v_proj"), &attn.v_proj);
            push_linear(&mut out, format!("{p}.self_attn.o_proj"), &attn.o_proj);
            if let Some(norm) = &attn.q_norm {
                push_norm(&mut out, format!("{p}.self_attn.q_norm"), norm);
            }
            if let Some(norm) = &attn.k_norm {
                push_norm(&mut out, format!("{p}.self_attn.k_norm"), norm);
            }
            push_linear(&mut out, format!("{p}.mlp.gate_proj"), &layer.mlp.gate_proj);
            push_linear(&mut out, format!("{p}.mlp.up_proj"), &layer.mlp.up_proj);
            push_linear(&mut out, format!("{p}.mlp.down_proj"), &layer.mlp.down_proj);
            push_norm(
                &mut out,
                format!("{p}.input_layernorm"),
                &layer.input_layernorm,
            );
            push_norm(
                &mut out,
                format!("{p}.post_attention_layernorm"),
                &layer.post_attention_layernorm,
            );
        }
        push_norm(&mut out, "model.norm".into(), &self.norm);
        if let Some(head) = &self.lm_head {
            push_linear(&mut out, "lm_head".into(), head);
        }
        out
    }
}

fn host_f32(data: TensorData) -> Vec<f32> {
    data.convert::<f32>()
        .into_vec::<f32>()
        .expect("converted tensor data is f32")
}
