//! The decoder-only transformer shared by Qwen3, Qwen2, Llama and SmolLM3, read
//! top to bottom: embedding → layers (RMSNorm → attention with GQA and RoPE →
//! RMSNorm → SwiGLU MLP, both residual) → final RMSNorm → LM head.
//!
//! Tensor names are HuggingFace's, so a checkpoint maps onto the structs one to one.

use burn::module::Param;
use burn::nn::{DropoutConfig, Embedding, Linear, RmsNorm};
use burn::prelude::*;
use burn::tensor::FloatDType;
use pretrainzero_kernels::{attention, swiglu, FusedLayerBackend};

use crate::config::ModelConfig;
use crate::error::Result;
use crate::kv_cache::{KvCache, LayerCache};
use crate::rope::{RotaryAngles, RotaryEmbedding};
use crate::weights::{WeightRole, WeightSource};

/// Which key positions each query may attend to.
#[derive(Debug, Clone)]
pub enum AttentionMask<B: Backend> {
    /// Plain causal attention (no padding): lets backends use their causal fast path.
    Causal,
    /// `true` = masked out; `[batch, 1, queries, keys]`, broadcast over heads.
    Explicit(Tensor<B, 4, Bool>),
}

impl<B: Backend> AttentionMask<B> {
    /// `(mask, is_causal)` as the attention operation takes them.
    fn parts(&self) -> (Option<Tensor<B, 4, Bool>>, bool) {
        match self {
            AttentionMask::Causal => (None, true),
            AttentionMask::Explicit(mask) => (Some(mask.clone()), false),
        }
    }
}

#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub gate_proj: Linear<B>,
    pub up_proj: Linear<B>,
    pub down_proj: Linear<B>,
}

/// RMSNorm through the backend's fused operation (a host loop over the rows on the
/// CPU backends) instead of burn's `RmsNorm::forward`, same formula. Always computed
/// in f32, as transformers does: a bf16 sum of squares over thousands of channels
/// loses the low bits that the normalisation then multiplies up.
fn apply_norm<B: FusedLayerBackend, const D: usize>(
    norm: &RmsNorm<B>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    // `cast` to the type a tensor already has returns it as it is, so the f32 path
    // has no cast at all.
    let dtype = FloatDType::from(x.dtype());
    let gamma = norm.gamma.val().cast(FloatDType::F32);
    let normed = pretrainzero_kernels::rms_norm(x.cast(FloatDType::F32), gamma, norm.epsilon);
    normed.cast(dtype)
}

/// `linear` through the backend's product (on burn-flex a `gemm` call into an output
/// buffer that nothing fills first; burn's matmul elsewhere) instead of
/// `Linear::forward`, same formula. The weights are cast to the input's type, so
/// under a bf16 compute type the product is bf16 and the f32 weights (the
/// optimizer's master copy) get their gradient back through the cast.
fn apply_linear<B: FusedLayerBackend>(linear: &Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
    let dtype = FloatDType::from(x.dtype());
    pretrainzero_kernels::linear(
        x,
        linear.weight.val().cast(dtype),
        linear.bias.as_ref().map(|b| b.val().cast(dtype)),
    )
}

/// `linear` applied to `[batch, seq, in]` as one `[batch · seq, in]` matrix. burn's
/// linear backward takes the weight gradient of a 3-D input as one product per
/// sequence plus a sum over the batch (a `[batch, in, out]` temporary); on the
/// flattened input it is a single product.
fn linear_2d<B: FusedLayerBackend>(linear: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [batch, seq, width] = x.dims();
    let out = apply_linear(linear, x.reshape([batch * seq, width]));
    let out_width = out.dims()[1];
    out.reshape([batch, seq, out_width])
}

impl<B: FusedLayerBackend> Mlp<B> {
    /// SwiGLU: `down(silu(gate(x)) * up(x))`, the gating as one fused operation.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = linear_2d(&self.gate_proj, x.clone());
        linear_2d(&self.down_proj, swiglu(gate, linear_2d(&self.up_proj, x)))
    }
}

#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub o_proj: Linear<B>,
    /// Qwen3 only: RMSNorm over `head_dim`, applied per head before RoPE.
    pub q_norm: Option<RmsNorm<B>>,
    pub k_norm: Option<RmsNorm<B>>,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    /// False on SmolLM3's NoPE layers.
    pub uses_rope: bool,
}

impl<B: FusedLayerBackend> Attention<B> {
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        angles: &RotaryAngles<B>,
        mask: &AttentionMask<B>,
        cache: Option<&mut LayerCache<B>>,
    ) -> Tensor<B, 3> {
        let [batch, seq, _] = x.dims();
        // Norm and RoPE in the projections' `[batch, seq, heads, head_dim]` layout,
        // where the tensors are contiguous; heads move forward only afterwards.
        let project = |linear: &Linear<B>, heads: usize, norm: &Option<RmsNorm<B>>| {
            let t = linear_2d(linear, x.clone()).reshape([batch, seq, heads, self.head_dim]);
            match norm {
                Some(norm) => apply_norm(norm, t),
                None => t,
            }
        };
        let mut q = project(&self.q_proj, self.num_heads, &self.q_norm);
        let mut k = project(&self.k_proj, self.num_kv_heads, &self.k_norm);
        let v = project(&self.v_proj, self.num_kv_heads, &None);
        if self.uses_rope {
            q = angles.apply(q);
            k = angles.apply(k);
        }
        let k = k.swap_dims(1, 2);
        let v = v.swap_dims(1, 2);
        // With a cache, attend over every key written so far, not only this chunk's.
        let (k, v) = match cache {
            Some(cache) => cache.append(k, v),
            None => (k, v),
        };
        // Grouped-query attention: query head `h` reads key/value head
        // `h / (num_heads / num_kv_heads)` inside the operation, without repeating keys
        // and values. On burn-flex it reads q in this layout and its output is a view of
        // `[batch, seq, heads, head_dim]`, so neither swap nor the reshape copies.
        let (mask, is_causal) = mask.parts();
        let context = attention(q.swap_dims(1, 2), k, v, mask, is_causal)
            .swap_dims(1, 2)
            .reshape([batch, seq, self.num_heads * self.head_dim]);
        linear_2d(&self.o_proj, context)
    }
}

#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub input_layernorm: RmsNorm<B>,
    pub self_attn: Attention<B>,
    pub post_attention_layernorm: RmsNorm<B>,
    pub mlp: Mlp<B>,
}

impl<B: FusedLayerBackend> DecoderLayer<B> {
    /// `residual_dropout`: the probability of zeroing each element of the two branch
    /// outputs before they join the residual stream (see
    /// [`Decoder::with_residual_dropout`]).
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        angles: &RotaryAngles<B>,
        mask: &AttentionMask<B>,
        cache: Option<&mut LayerCache<B>>,
        residual_dropout: f64,
    ) -> Tensor<B, 3> {
        let dropout = DropoutConfig::new(residual_dropout).init();
        let attended = self.self_attn.forward(
            apply_norm(&self.input_layernorm, x.clone()),
            angles,
            mask,
            cache,
        );
        let x = x + dropout.forward(attended);
        let mlp_out = self
            .mlp
            .forward(apply_norm(&self.post_attention_layernorm, x.clone()));
        x + dropout.forward(mlp_out)
    }
}

#[derive(Module, Debug)]
pub struct Decoder<B: Backend> {
    pub embed_tokens: Embedding<B>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
    /// `None` when the head is tied to `embed_tokens`.
    pub lm_head: Option<Linear<B>>,
    pub rotary: RotaryEmbedding<B>,
    /// The float type of the activations, the products and the logits: f32, or bf16
    /// (mixed precision: weights cast at each use, RMSNorm in f32). Not part of the
    /// checkpoint; each run sets it (see [`Decoder::with_compute_dtype`]).
    #[module(skip)]
    pub compute_dtype: FloatDType,
    /// Dropout on each layer's attention and MLP outputs, in training only (see
    /// [`Decoder::with_residual_dropout`]); 0 unless a run sets it.
    #[module(skip)]
    pub residual_dropout: f64,
}

impl<B: Backend> Decoder<B> {
    /// Builds the decoder from any weight source (a checkpoint or random init).
    pub fn new<S: WeightSource<B>>(
        config: &ModelConfig,
        source: &mut S,
        device: &B::Device,
    ) -> Result<Self> {
        let d = config.hidden_size;
        let q_dim = config.num_heads * config.head_dim;
        let kv_dim = config.num_kv_heads * config.head_dim;
        let eps = config.rms_norm_eps;

        let mut layers = Vec::with_capacity(config.num_layers);
        for i in 0..config.num_layers {
            let p = format!("model.layers.{i}");
            let mut linear = |name: &str, out_dim: usize, in_dim: usize, bias: bool| {
                linear(source, &format!("{p}.{name}"), out_dim, in_dim, bias)
            };
            let q_proj = linear("self_attn.q_proj", q_dim, d, config.qkv_bias)?;
            let k_proj = linear("self_attn.k_proj", kv_dim, d, config.qkv_bias)?;
            let v_proj = linear("self_attn.v_proj", kv_dim, d, config.qkv_bias)?;
            let o_proj = linear("self_attn.o_proj", d, q_dim, config.o_bias)?;
            let gate_proj = linear(
                "mlp.gate_proj",
                config.intermediate_size,
                d,
                config.mlp_bias,
            )?;
            let up_proj = linear("mlp.up_proj", config.intermediate_size, d, config.mlp_bias)?;
            let down_proj = linear(
                "mlp.down_proj",
                d,
                config.intermediate_size,
                config.mlp_bias,
            )?;
            let (q_norm, k_norm) = if config.has_qk_norm() {
                (
                    Some(rms_norm(
                        source,
                        &format!("{p}.self_attn.q_norm"),
                        config.head_dim,
                        eps,
                    )?),
                    Some(rms_norm(
                        source,
                        &format!("{p}.self_attn.k_norm"),
                        config.head_dim,
                        eps,
                    )?),
                )
            } else {
                (None, None)
            };
            layers.push(DecoderLayer {
                input_layernorm: rms_norm(source, &format!("{p}.input_layernorm"), d, eps)?,
                self_attn: Attention {
                    q_proj,
                    k_proj,
                    v_proj,
                    o_proj,
                    q_norm,
                    k_norm,
                    num_heads: config.num_heads,
                    num_kv_heads: config.num_kv_heads,
                    head_dim: config.head_dim,
                    uses_rope: config.layer_uses_rope[i],
                },
                post_attention_layernorm: rms_norm(
                    source,
                    &format!("{p}.post_attention_layernorm"),
                    d,
                    eps,
                )?,
                mlp: Mlp {
                    gate_proj,
                    up_proj,
                    down_proj,
                },
            });
        }

        let embed_tokens = Embedding {
            weight: Param::from_tensor(source.tensor(
                "model.embed_tokens.weight",
                [config.vocab_size, d],
                WeightRole::Embedding,
            )?),
        };
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(linear(source, "lm_head", config.vocab_size, d, false)?)
        };
        Ok(Self {
            embed_tokens,
            layers,
            norm: rms_norm(source, "model.norm", d, eps)?,
            lm_head,
            rotary: RotaryEmbedding::new(config, device),
            compute_dtype: FloatDType::F32,
            residual_dropout: 0.0,
        })
    }

    /// Computes in `dtype` from now on (f32, or bf16 where the backend has it). The
    /// weights keep their type: in training they are the f32 master copy that AdamW
    /// updates, and each is cast to `dtype` where a layer uses it.
    pub fn with_compute_dtype(mut self, dtype: FloatDType) -> Self {
        self.compute_dtype = dtype;
        self
    }

    /// Zeroes each element of every layer's attention and MLP outputs with
    /// probability `probability` (and scales the rest by `1 / (1 − probability)`)
    /// before they join the residual stream, as GPT-2's residual dropout does: a
    /// regulariser for several epochs over a small corpus. It acts only on an autodiff
    /// backend, so evaluation, rollouts and the validation pass (`valid()`) compute
    /// the model without it.
    pub fn with_residual_dropout(mut self, probability: f64) -> Self {
        assert!(
            (0.0..1.0).contains(&probability),
            "residual dropout must be in [0, 1), got {probability}"
        );
        self.residual_dropout = probability;
        self
    }

    /// The same model with its matrices cast to the compute type once, for a model
    /// that only runs forward (rollouts, a reference policy, evaluation): a decode
    /// step would otherwise cast every weight again for each new token. It computes
    /// the same numbers as the uncast model. Unchanged under f32.
    pub fn with_weights_in_compute_dtype(self) -> Self {
        let dtype = self.compute_dtype;
        if dtype == FloatDType::F32 {
            return self;
        }
        self.map(&mut crate::precision::CastMatrices { dtype })
    }

    pub fn vocab_size(&self) -> usize {
        self.embed_tokens.weight.dims()[0]
    }
}

/// The passes through the layers, which need the backend's fused SwiGLU.
impl<B: FusedLayerBackend> Decoder<B> {
    /// Logits `[batch, seq, vocab]` of full sequences without padding, positions 0..seq.
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let hidden = self.hidden_states(tokens, None, &AttentionMask::Causal, None);
        self.logits(hidden)
    }

    /// Final hidden states `[batch, seq, hidden]` (after the last RMSNorm).
    ///
    /// `positions` defaults to `0..seq`; with a cache, new keys are written after the
    /// ones already there and `mask` must cover all of them.
    pub fn hidden_states(
        &self,
        tokens: Tensor<B, 2, Int>,
        positions: Option<Tensor<B, 2, Int>>,
        mask: &AttentionMask<B>,
        mut cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        let [batch, seq] = tokens.dims();
        let device = tokens.device();
        let positions = positions.unwrap_or_else(|| {
            Tensor::<B, 1, Int>::arange(0..seq as i64, &device)
                .reshape([1, seq])
                .expand([batch, seq])
        });
        // Every later tensor follows the embedding's type: the products cast their
        // weights to it, and the rotation tables are made in it.
        let mut x = self.embed_tokens.forward(tokens).cast(self.compute_dtype);
        let Some(first) = self.layers.first() else {
            return apply_norm(&self.norm, x);
        };
        let heads = [first.self_attn.num_heads, first.self_attn.num_kv_heads];
        let angles = self.rotary.angles(positions, &heads, self.compute_dtype);
        for (i, layer) in self.layers.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| c.layer(i));
            x = layer.forward(x, &angles, mask, layer_cache, self.residual_dropout);
        }
        apply_norm(&self.norm, x)
    }
}

impl<B: FusedLayerBackend> Decoder<B> {
    /// LM head: `[.., hidden]` → `[.., vocab]`, as one `[rows, hidden]` product (see
    /// [`linear_2d`]), in the hidden states' type (bf16 logits under a bf16 compute
    /// type: the reward step reads them in half the bytes and sums in f32).
    pub fn logits<const D: usize>(&self, hidden: Tensor<B, D>) -> Tensor<B, D> {
        let dims = hidden.dims();
        let width = dims[D - 1];
        let rows = hidden.shape().num_elements() / width;
        let flat = hidden.reshape([rows, width]);
        let logits = match &self.lm_head {
            Some(head) => apply_linear(head, flat),
            // Tied head: `h · Eᵀ` with Eᵀ as a strided view. (The cheaper-on-ndarray
            // `(E · hᵀ)ᵀ` gave wrong decode logits on WGPU — single-row `hᵀ` — so the
            // plain form is used everywhere; ndarray copies the table per call.)
            None => {
                let table = self.embed_tokens.weight.val().cast(flat.dtype());
                pretrainzero_kernels::linear(flat, table.transpose(), None)
            }
        };
        let mut out_dims = dims;
        out_dims[D - 1] = logits.dims()[1];
        logits.reshape(out_dims)
    }

    /// An empty cache for `batch` sequences of up to `capacity` tokens, in the compute
    /// type.
    pub fn new_cache(&self, batch: usize, capacity: usize, device: &B::Device) -> KvCache<B> {
        let attn = &self.layers[0].self_attn;
        KvCache::new(
            self.layers.len(),
            batch,
            attn.num_kv_heads,
            capacity,
            attn.head_dim,
            (device, self.compute_dtype.into()),
        )
    }
}

fn linear<B: Backend, S: WeightSource<B>>(
    source: &mut S,
    name: &str,
    out_dim: usize,
    in_dim: usize,
    bias: bool,
) -> Result<Linear<B>> {
    let weight = source.tensor(
        &format!("{name}.weight"),
        [out_dim, in_dim],
        WeightRole::Matrix,
    )?;
    let bias = if bias {
        Some(Param::from_tensor(source.tensor(
            &format!("{name}.bias"),
            [out_dim],
            WeightRole::Bias,
        )?))
    } else {
        None
    };
    Ok(Linear {
        weight: Param::from_tensor(weight),
        bias,
    })
}

fn rms_norm<B: Backend, S: WeightSource<B>>(
    source: &mut S,
    name: &str,
    dim: usize,
    epsilon: f64,
) -> Result<RmsNorm<B>> {
    Ok(RmsNorm {
        gamma: Param::from_tensor(source.tensor(
            &format!("{name}.weight"),
            [dim],
            WeightRole::NormScale,
        )?),
        epsilon,
    })
}
