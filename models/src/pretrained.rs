//! A HuggingFace model folder: `config.json` + safetensors weights (+ `tokenizer.json`).
//! Loading and saving; a saved folder loads unchanged in transformers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

use crate::config::{ModelConfig, WeightDtype};
use crate::decoder::Decoder;
use crate::error::{ModelError, Result};
use crate::tokenizer::TextTokenizer;
use crate::weights::{RandomWeights, SafetensorsWeights};

pub struct PretrainedModel<B: Backend> {
    pub config: ModelConfig,
    pub model: Decoder<B>,
    /// Present when the folder has a `tokenizer.json`.
    pub tokenizer: Option<TextTokenizer>,
    pub dir: PathBuf,
}

impl<B: Backend> PretrainedModel<B> {
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self> {
        if !dir.is_dir() {
            return Err(ModelError::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "model folder not found"),
            ));
        }
        let config = ModelConfig::from_file(&dir.join("config.json"))?;
        config
            .check_fits_in_memory(4, "hold its weights")
            .map_err(|e| ModelError::config(dir.join("config.json"), e.to_string()))?;
        let mut weights = SafetensorsWeights::<B>::open(dir, device)?;
        let model = Decoder::new(&config, &mut weights, device)?;
        weights.finish()?;
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = if tokenizer_path.is_file() {
            Some(TextTokenizer::from_file(&tokenizer_path)?)
        } else {
            None
        };
        Ok(Self {
            config,
            model,
            tokenizer,
            dir: dir.to_path_buf(),
        })
    }
}

/// A randomly initialised decoder (normal, std 0.02) of the given shape.
pub fn random_decoder<B: Backend>(
    config: &ModelConfig,
    seed: u64,
    device: &B::Device,
) -> Decoder<B> {
    let mut source = RandomWeights::new(device, 0.02, seed);
    Decoder::new(config, &mut source, device).expect("random weights cannot be missing")
}

/// Writes `model.safetensors` and `config.json` (and copies `tokenizer`, with its
/// `tokenizer_config.json`, if given) into
/// `dir`, creating it. Each file is written to a temporary name and renamed, so an
/// interrupted save never leaves a truncated file under the final name.
pub fn save_pretrained<B: Backend>(
    model: &Decoder<B>,
    config: &ModelConfig,
    tokenizer: Option<&Path>,
    dir: &Path,
    dtype: WeightDtype,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let tensors = model.hf_tensors();
    let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|t| (t.name, t.shape, encode(&t.values, dtype)))
        .collect();
    let safetensors_dtype = match dtype {
        WeightDtype::F32 => Dtype::F32,
        WeightDtype::F16 => Dtype::F16,
        WeightDtype::BF16 => Dtype::BF16,
    };
    let views: Vec<(String, TensorView<'_>)> = encoded
        .iter()
        .map(|(name, shape, bytes)| {
            let view = TensorView::new(safetensors_dtype, shape.clone(), bytes)
                .expect("byte length matches shape and dtype");
            (name.clone(), view)
        })
        .collect();
    // transformers requires the `format` metadata key.
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    let weights_path = dir.join("model.safetensors");
    let bytes =
        safetensors::serialize(views, Some(metadata)).map_err(|e| ModelError::Safetensors {
            path: weights_path.clone(),
            message: e.to_string(),
        })?;
    write_atomically(&weights_path, &bytes)?;

    let config_json =
        serde_json::to_string_pretty(&config.to_json(dtype)).expect("JSON value serialises");
    write_atomically(&dir.join("config.json"), config_json.as_bytes())?;

    if let Some(source) = tokenizer {
        // tokenizer.json, and the tokenizer_config.json beside it when there is one.
        let source_config = source.with_file_name("tokenizer_config.json");
        let files = [
            (source.to_path_buf(), "tokenizer.json"),
            (source_config, "tokenizer_config.json"),
        ];
        for (from, name) in files {
            let target = dir.join(name);
            if from.is_file() && from != target {
                let bytes = std::fs::read(&from).map_err(|e| ModelError::io(&from, e))?;
                write_atomically(&target, &bytes)?;
            }
        }
    }
    Ok(())
}

fn encode(values: &[f32], dtype: WeightDtype) -> Vec<u8> {
    match dtype {
        WeightDtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        WeightDtype::BF16 => values
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect(),
        WeightDtype::F16 => values
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect(),
    }
}

/// Write to `path.tmp`, then rename over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| ModelError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e))
}
