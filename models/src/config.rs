//! The decoder's hyper-parameters, read from a HuggingFace `config.json`.
//!
//! Accepts both the older layout (top-level `rope_theta`, `rope_scaling`,
//! `torch_dtype`) and the transformers-5 layout (`rope_parameters`, `dtype`).
//! Anything that would change the computation and that we do not implement is an
//! error here, so that an unsupported checkpoint never loads as a silently wrong model.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{ModelError, Result};

/// The model families we implement; they differ only in a few switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Qwen3: RMSNorm on q and k per head, no qkv bias.
    Qwen3,
    /// Qwen2 / Qwen2.5: bias on q, k, v; no q/k norm.
    Qwen2,
    /// Llama 2/3 (and configs that only differ in `rope_scaling`).
    Llama,
    /// SmolLM3: Llama-like, with RoPE switched off on some layers (`no_rope_layers`).
    SmolLm3,
}

impl Architecture {
    fn from_model_type(model_type: &str) -> Option<Self> {
        match model_type {
            "qwen3" => Some(Self::Qwen3),
            "qwen2" => Some(Self::Qwen2),
            "llama" => Some(Self::Llama),
            "smollm3" => Some(Self::SmolLm3),
            _ => None,
        }
    }
}

/// Frequency scaling of RoPE.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE: `inv_freq = theta^(-2i/d)`.
    None,
    /// Llama 3.1 wavelength-dependent scaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

/// Storage type of the weights on disk, as declared by the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightDtype {
    F32,
    F16,
    BF16,
}

impl WeightDtype {
    pub fn config_name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::F16 => "float16",
            Self::BF16 => "bfloat16",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "float32" | "f32" => Some(Self::F32),
            "float16" | "f16" => Some(Self::F16),
            "bfloat16" | "bf16" => Some(Self::BF16),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Bias on the q, k and v projections (always on for Qwen2).
    pub qkv_bias: bool,
    /// Bias on the output projection (Llama/Qwen3 `attention_bias`).
    pub o_bias: bool,
    pub mlp_bias: bool,
    /// Per layer: whether RoPE is applied (false only for SmolLM3's NoPE layers).
    pub layer_uses_rope: Vec<bool>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    pub dtype: WeightDtype,
    /// The parsed file, kept so that saving writes back every key we do not model.
    pub raw: Value,
}

/// Named architecture presets (published shapes), usable without any file on disk.
pub const PRESETS: &[&str] = &["tiny", "small", "qwen3-0.6b"];

impl ModelConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let raw: Value = serde_json::from_str(&text).map_err(|source| ModelError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(raw, path)
    }

    /// A named preset: `qwen3-0.6b` is Qwen3-0.6B's published config; `tiny` (the
    /// shipped 5.2M shape) and `small` are Qwen3-shaped models for the CPU.
    pub fn preset(name: &str) -> Result<Self> {
        Self::from_json(
            Self::preset_json(name)?,
            Path::new(&format!("<preset {name}>")),
        )
    }

    /// The `config.json` of a preset.
    fn preset_json(name: &str) -> Result<Value> {
        Ok(match name {
            "qwen3-0.6b" => serde_json::json!({
                "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
                "vocab_size": 151936, "hidden_size": 1024, "intermediate_size": 3072,
                "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
                "head_dim": 128, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
                "max_position_embeddings": 40960, "tie_word_embeddings": true,
                "attention_bias": false, "hidden_act": "silu",
                "bos_token_id": 151643, "eos_token_id": 151645, "torch_dtype": "bfloat16"
            }),
            "tiny" => serde_json::json!({
                "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
                "vocab_size": 8192, "hidden_size": 256, "intermediate_size": 768,
                "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
                "head_dim": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
                "max_position_embeddings": 2048, "tie_word_embeddings": true,
                "attention_bias": false, "hidden_act": "silu",
                "bos_token_id": 0, "eos_token_id": 0, "torch_dtype": "float32"
            }),
            // 29.4M parameters: `tiny` twice as wide and twice as deep.
            "small" => {
                let mut small = Self::preset_json("tiny")?;
                for (key, value) in [
                    ("hidden_size", 512),
                    ("intermediate_size", 1536),
                    ("num_hidden_layers", 8),
                    ("num_attention_heads", 8),
                    ("num_key_value_heads", 4),
                ] {
                    small[key] = value.into();
                }
                small
            }
            other => {
                return Err(ModelError::Input(format!(
                    "unknown preset `{other}`; known presets: {}",
                    PRESETS.join(", ")
                )))
            }
        })
    }

    pub fn from_json(raw: Value, path: &Path) -> Result<Self> {
        let fields = ConfigFields { raw: &raw, path };
        let model_type = fields.string("model_type")?;
        let architecture =
            Architecture::from_model_type(&model_type).ok_or_else(|| ModelError::Unsupported {
                path: path.to_path_buf(),
                message: format!(
                    "model_type `{model_type}` (supported: qwen3, qwen2, llama, smollm3)"
                ),
            })?;

        if let Some(act) = fields.optional_string("hidden_act")? {
            if act != "silu" {
                return Err(fields.unsupported(format!("hidden_act `{act}` (only silu)")));
            }
        }
        if fields.optional_bool("use_sliding_window")?.unwrap_or(false) {
            return Err(fields.unsupported("sliding-window attention".into()));
        }
        if let Some(Value::Array(types)) = raw.get("layer_types") {
            if types.iter().any(|t| t.as_str() != Some("full_attention")) {
                return Err(fields.unsupported("layer_types other than full_attention".into()));
            }
        }

        let hidden_size = fields.usize("hidden_size")?;
        let num_heads = fields.usize("num_attention_heads")?;
        let num_kv_heads = fields
            .optional_usize("num_key_value_heads")?
            .unwrap_or(num_heads);
        let head_dim = match fields.optional_usize("head_dim")? {
            Some(d) => d,
            None => hidden_size / num_heads.max(1),
        };
        let num_layers = fields.usize("num_hidden_layers")?;
        if num_heads == 0 || num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(ModelError::config(
                path,
                format!("num_attention_heads ({num_heads}) must be a positive multiple of num_key_value_heads ({num_kv_heads})"),
            ));
        }
        if head_dim % 2 != 0 {
            return Err(ModelError::config(
                path,
                format!("head_dim {head_dim} must be even for RoPE"),
            ));
        }

        let (rope_theta, rope_scaling) = fields.rope()?;
        let attention_bias = fields.optional_bool("attention_bias")?.unwrap_or(false);
        let (qkv_bias, o_bias) = match architecture {
            // Qwen2's attention hard-codes bias on q, k, v and none on o.
            Architecture::Qwen2 => (true, false),
            _ => (attention_bias, attention_bias),
        };
        let layer_uses_rope = match (architecture, raw.get("no_rope_layers")) {
            (Architecture::SmolLm3, Some(Value::Array(flags))) => {
                if flags.len() != num_layers {
                    return Err(ModelError::config(
                        path,
                        format!(
                            "no_rope_layers has {} entries for {num_layers} layers",
                            flags.len()
                        ),
                    ));
                }
                // SmolLM3 writes 1 for "this layer uses RoPE" and 0 for a NoPE layer.
                flags.iter().map(|f| f.as_u64() != Some(0)).collect()
            }
            _ => vec![true; num_layers],
        };
        let tie_default = matches!(architecture, Architecture::SmolLm3);
        let dtype_name = match fields.optional_string("dtype")? {
            Some(d) => Some(d),
            None => fields.optional_string("torch_dtype")?,
        };
        let dtype = match dtype_name {
            None => WeightDtype::F32,
            Some(name) => WeightDtype::parse(&name)
                .ok_or_else(|| fields.unsupported(format!("dtype `{name}`")))?,
        };

        let config = ModelConfig {
            architecture,
            vocab_size: fields.usize("vocab_size")?,
            hidden_size,
            intermediate_size: fields.usize("intermediate_size")?,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: fields.optional_f64("rms_norm_eps")?.unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            max_position_embeddings: fields
                .optional_usize("max_position_embeddings")?
                .unwrap_or(4096),
            tie_word_embeddings: fields
                .optional_bool("tie_word_embeddings")?
                .unwrap_or(tie_default),
            qkv_bias,
            o_bias,
            mlp_bias: fields.optional_bool("mlp_bias")?.unwrap_or(false),
            layer_uses_rope,
            bos_token_id: fields.optional_usize("bos_token_id")?.map(|v| v as u32),
            eos_token_ids: fields.token_ids("eos_token_id")?,
            dtype,
            raw: raw.clone(),
        };
        config.check_values(path)?;
        Ok(config)
    }

    /// Refuses this shape before anything is allocated when its parameters, at
    /// `bytes_per_parameter` (4 for f32 weights; 16 to train them with AdamW), need
    /// more memory than the OS reports available (Linux `MemAvailable`; elsewhere
    /// nothing is checked).
    pub fn check_fits_in_memory(&self, bytes_per_parameter: usize, purpose: &str) -> Result<()> {
        let Some(available) = available_memory_bytes() else {
            return Ok(());
        };
        let needed = self.num_parameters() as u128 * bytes_per_parameter as u128;
        if needed > available as u128 {
            let gib = |bytes: u128| bytes as f64 / (1u64 << 30) as f64;
            return Err(ModelError::Input(format!(
                "this model has {} parameters and needs {:.1} GiB to {purpose}, but only {:.1} GiB of memory is available",
                self.num_parameters(),
                gib(needed),
                gib(available as u128)
            )));
        }
        Ok(())
    }

    /// Values that load but make every output NaN or empty (a zero or negative
    /// epsilon, RoPE base or size) are refused here, naming the key.
    fn check_values(&self, path: &Path) -> Result<()> {
        let positive_sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_layers),
            ("head_dim", self.head_dim),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        for (key, value) in positive_sizes {
            if value == 0 {
                return Err(ModelError::config(
                    path,
                    format!("{key} must be at least 1"),
                ));
            }
        }
        for (key, value) in [
            ("rms_norm_eps", self.rms_norm_eps),
            ("rope_theta", self.rope_theta),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ModelError::config(
                    path,
                    format!("{key} = {value} must be a finite number > 0"),
                ));
            }
        }
        Ok(())
    }

    /// The same architecture sized for another tokenizer: `vocab_size` and the
    /// end-of-text id (also used as BOS and padding) replaced, in the saved JSON too.
    pub fn with_vocabulary(mut self, vocab_size: usize, eos_token_id: u32) -> Self {
        self.vocab_size = vocab_size;
        self.eos_token_ids = vec![eos_token_id];
        self.bos_token_id = Some(eos_token_id);
        if let Value::Object(map) = &mut self.raw {
            map.insert("vocab_size".into(), Value::from(vocab_size));
            map.insert("eos_token_id".into(), Value::from(eos_token_id));
            map.insert("bos_token_id".into(), Value::from(eos_token_id));
            map.insert("pad_token_id".into(), Value::from(eos_token_id));
        }
        self
    }

    /// Qwen3 normalises q and k per head before RoPE.
    pub fn has_qk_norm(&self) -> bool {
        self.architecture == Architecture::Qwen3
    }

    /// The config as JSON, declaring `dtype` as the storage type of the saved weights.
    /// Both the new (`dtype`) and legacy (`torch_dtype`) keys are written so that
    /// older and newer transformers read it alike.
    pub fn to_json(&self, dtype: WeightDtype) -> Value {
        let mut raw = self.raw.clone();
        if let Value::Object(map) = &mut raw {
            map.insert("dtype".into(), Value::from(dtype.config_name()));
            map.insert("torch_dtype".into(), Value::from(dtype.config_name()));
        }
        raw
    }

    pub fn num_parameters(&self) -> usize {
        let d = self.hidden_size;
        let q = self.num_heads * self.head_dim;
        let kv = self.num_kv_heads * self.head_dim;
        let attention = d * q + 2 * d * kv + q * d;
        let mlp = 3 * d * self.intermediate_size;
        let qk_norms = if self.has_qk_norm() {
            2 * self.head_dim
        } else {
            0
        };
        let biases = if self.qkv_bias { q + 2 * kv } else { 0 } + if self.o_bias { d } else { 0 };
        let per_layer = attention + mlp + 2 * d + qk_norms + biases;
        let embeddings = self.vocab_size * d * if self.tie_word_embeddings { 1 } else { 2 };
        embeddings + self.num_layers * per_layer + d
    }
}

/// Typed access to the JSON object, with errors naming the key and the file.
struct ConfigFields<'a> {
    raw: &'a Value,
    path: &'a Path,
}

impl ConfigFields<'_> {
    fn path(&self) -> PathBuf {
        self.path.to_path_buf()
    }

    fn unsupported(&self, message: String) -> ModelError {
        ModelError::Unsupported {
            path: self.path(),
            message,
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.raw.get(key).filter(|v| !v.is_null())
    }

    fn wrong_type(&self, key: &str, expected: &str) -> ModelError {
        ModelError::config(self.path(), format!("`{key}` must be {expected}"))
    }

    fn missing(&self, key: &str) -> ModelError {
        ModelError::config(self.path(), format!("missing required key `{key}`"))
    }

    fn string(&self, key: &str) -> Result<String> {
        self.optional_string(key)?.ok_or_else(|| self.missing(key))
    }

    fn optional_string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong_type(key, "a string")),
        }
    }

    fn usize(&self, key: &str) -> Result<usize> {
        self.optional_usize(key)?.ok_or_else(|| self.missing(key))
    }

    fn optional_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| self.wrong_type(key, "a non-negative integer")),
        }
    }

    fn optional_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, "a number")),
        }
    }

    fn optional_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong_type(key, "true or false")),
        }
    }

    /// `eos_token_id` may be one id or a list of ids.
    fn token_ids(&self, key: &str) -> Result<Vec<u32>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_u64()
                        .map(|n| n as u32)
                        .ok_or_else(|| self.wrong_type(key, "integer ids"))
                })
                .collect(),
            Some(v) => v
                .as_u64()
                .map(|n| vec![n as u32])
                .ok_or_else(|| self.wrong_type(key, "an id or a list of ids")),
        }
    }

    /// RoPE base and scaling from either `rope_parameters` (transformers 5) or the
    /// legacy top-level `rope_theta` / `rope_scaling`.
    fn rope(&self) -> Result<(f64, RopeScaling)> {
        let parameters = self.get("rope_parameters");
        let theta = parameters
            .and_then(|p| p.get("rope_theta"))
            .and_then(Value::as_f64)
            .or_else(|| self.get("rope_theta").and_then(Value::as_f64))
            .unwrap_or(10000.0);
        let scaling = match (parameters, self.get("rope_scaling")) {
            (Some(p), _) if p.get("rope_type").is_some() => p,
            (_, Some(s)) => s,
            _ => return Ok((theta, RopeScaling::None)),
        };
        let rope_type = scaling
            .get("rope_type")
            .or_else(|| scaling.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        let number = |key: &str| -> Result<f64> {
            scaling.get(key).and_then(Value::as_f64).ok_or_else(|| {
                ModelError::config(
                    self.path(),
                    format!("rope scaling of type {rope_type} needs `{key}`"),
                )
            })
        };
        match rope_type {
            "default" => Ok((theta, RopeScaling::None)),
            "llama3" => Ok((
                theta,
                RopeScaling::Llama3 {
                    factor: number("factor")?,
                    low_freq_factor: number("low_freq_factor")?,
                    high_freq_factor: number("high_freq_factor")?,
                    original_max_position_embeddings: number("original_max_position_embeddings")?,
                },
            )),
            other => Err(self.unsupported(format!(
                "rope scaling type `{other}` (supported: default, llama3)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rope::inverse_frequencies;

    fn parse(json: Value) -> Result<ModelConfig> {
        ModelConfig::from_json(json, Path::new("config.json"))
    }

    #[test]
    fn values_that_compute_nan_are_refused_naming_the_key() {
        for (key, value, message) in [
            (
                "rms_norm_eps",
                serde_json::json!(0.0),
                "rms_norm_eps = 0 must be a finite number > 0",
            ),
            (
                "rope_theta",
                serde_json::json!(-1.0),
                "rope_theta = -1 must be a finite number > 0",
            ),
            (
                "max_position_embeddings",
                serde_json::json!(0),
                "max_position_embeddings must be at least 1",
            ),
            (
                "vocab_size",
                serde_json::json!(0),
                "vocab_size must be at least 1",
            ),
        ] {
            let mut json = llama(serde_json::json!({}));
            json[key] = value;
            let error = parse(json).unwrap_err().to_string();
            assert!(
                error.contains("config.json") && error.contains(message),
                "{key}: {error}"
            );
        }
    }

    #[test]
    fn a_shape_larger_than_memory_is_refused_with_its_size() {
        let huge = parse(llama(
            serde_json::json!({"hidden_size": 65536, "intermediate_size": 262144,
            "num_hidden_layers": 4096, "num_attention_heads": 512}),
        ))
        .unwrap();
        if available_memory_bytes().is_none() {
            eprintln!("SKIPPED: no /proc/meminfo on this system");
            return;
        }
        let error = huge
            .check_fits_in_memory(4, "hold its weights")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!(
                "this model has {} parameters",
                huge.num_parameters()
            )),
            "{error}"
        );
        assert!(error.contains("GiB of memory is available"), "{error}");
        parse(llama(serde_json::json!({})))
            .unwrap()
            .check_fits_in_memory(16, "train it")
            .unwrap();
    }

    fn llama(extra: Value) -> Value {
        let mut base = serde_json::json!({
            "model_type": "llama", "vocab_size": 100, "hidden_size": 256,
            "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 2,
        });
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    }

    #[test]
    fn legacy_and_transformers5_layouts_agree() {
        let legacy = parse(llama(
            serde_json::json!({"rope_theta": 5e5, "torch_dtype": "bfloat16"}),
        ))
        .unwrap();
        let modern = parse(llama(serde_json::json!({
            "rope_parameters": {"rope_theta": 5e5, "rope_type": "default"}, "dtype": "bfloat16"
        })))
        .unwrap();
        for config in [&legacy, &modern] {
            assert_eq!(config.rope_theta, 5e5);
            assert_eq!(config.dtype, WeightDtype::BF16);
            assert_eq!(config.rope_scaling, RopeScaling::None);
            assert_eq!(config.num_kv_heads, 2, "defaults to num_attention_heads");
            assert_eq!(config.head_dim, 128, "defaults to hidden / heads");
        }
    }

    #[test]
    fn llama3_scaling_keeps_high_and_divides_low_frequencies() {
        let scaling = serde_json::json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        for layout in [
            serde_json::json!({"rope_theta": 5e5, "rope_scaling": scaling.clone()}),
            serde_json::json!({"rope_parameters": {"rope_theta": 5e5, "rope_type": "llama3", "factor": 8.0,
                "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}),
        ] {
            let config = parse(llama(layout)).unwrap();
            let scaled = inverse_frequencies(&config);
            let plain = inverse_frequencies(&ModelConfig {
                rope_scaling: RopeScaling::None,
                ..config
            });
            let mut medium = 0;
            for (s, p) in scaled.iter().zip(&plain) {
                // Wavelength 2π/f: below 8192/4 untouched, above 8192/1 divided by 8,
                // in between a blend strictly inside (p/8, p).
                let wavelen = 2.0 * std::f32::consts::PI / p;
                if wavelen < 2048.0 {
                    assert_eq!(s, p);
                } else if wavelen > 8192.0 {
                    assert!((s - p / 8.0).abs() <= 1e-12 + 1e-6 * p);
                } else {
                    medium += 1;
                    assert!(*s > p / 8.0 && s < p, "{s} not inside ({}, {p})", p / 8.0);
                }
            }
            assert!(medium > 0, "the test covers the blended band");
        }
    }

    #[test]
    fn unsupported_features_are_errors() {
        let yarn = parse(llama(
            serde_json::json!({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}),
        ));
        assert!(yarn.unwrap_err().to_string().contains("yarn"));
        let gelu = parse(llama(serde_json::json!({"hidden_act": "gelu"})));
        assert!(gelu.unwrap_err().to_string().contains("gelu"));
        let missing = parse(serde_json::json!({"model_type": "qwen3"}));
        assert!(missing.unwrap_err().to_string().contains("hidden_size"));
    }

    #[test]
    fn qwen2_has_qkv_bias_and_presets_parse() {
        let qwen2 = parse(
            serde_json::json!({"model_type": "qwen2", "vocab_size": 10, "hidden_size": 8,
            "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}),
        )
        .unwrap();
        assert!(qwen2.qkv_bias && !qwen2.o_bias && !qwen2.has_qk_norm());
        let qwen3 = ModelConfig::preset("qwen3-0.6b").unwrap();
        assert!(qwen3.has_qk_norm() && qwen3.tie_word_embeddings);
        // Qwen3-0.6B has 596M parameters with tied embeddings (0.44B without them).
        assert_eq!(qwen3.num_parameters(), 596_049_920);
        assert!(ModelConfig::preset("nope").is_err());
    }
}

/// `MemAvailable` of /proc/meminfo, in bytes.
fn available_memory_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
