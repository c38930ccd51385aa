//! Where the decoder's tensors come from: a HuggingFace safetensors checkpoint
//! (single file or sharded) or a random initialisation. The decoder asks for each
//! tensor by its HF name and HF shape, through one trait, so that loading and
//! initialising share a single construction path.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use memmap2::Mmap;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use safetensors::{Dtype, SafeTensors};

use crate::error::{ModelError, Result};

/// What a tensor is for; decides its burn layout and its random initialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightRole {
    /// A linear layer's weight. HF stores `[out, in]`; burn's `Linear` wants `[in, out]`.
    Matrix,
    /// Token embedding table `[vocab, hidden]`, same layout in both.
    Embedding,
    /// RMSNorm scale (initialised to ones).
    NormScale,
    /// Linear bias (initialised to zeros).
    Bias,
}

/// A provider of named tensors in the decoder's (burn) layout.
pub trait WeightSource<B: Backend> {
    /// `hf_shape` is the shape under which the tensor is stored in HF checkpoints.
    fn tensor<const D: usize>(
        &mut self,
        name: &str,
        hf_shape: [usize; D],
        role: WeightRole,
    ) -> Result<Tensor<B, D>>;
}

/// Random initialisation (normal, std 0.02, like transformers' `initializer_range`).
///
/// The values come from this source's own seeded generator, not the backend's global
/// one: two models built from the same seed are equal even while other threads draw
/// random tensors (as concurrent tests do).
pub struct RandomWeights<'a, B: Backend> {
    device: &'a B::Device,
    std: f64,
    rng: StdRng,
}

impl<'a, B: Backend> RandomWeights<'a, B> {
    pub fn new(device: &'a B::Device, std: f64, seed: u64) -> Self {
        Self {
            device,
            std,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// `count` draws from N(0, std²) (Box–Muller).
    fn normal(&mut self, count: usize) -> Vec<f32> {
        let mut values = Vec::with_capacity(count + 1);
        while values.len() < count {
            // 1 - u lies in (0, 1], so its logarithm is finite.
            let radius = (-2.0 * (1.0 - self.rng.random::<f64>()).ln()).sqrt() * self.std;
            let angle = std::f64::consts::TAU * self.rng.random::<f64>();
            values.push((radius * angle.cos()) as f32);
            values.push((radius * angle.sin()) as f32);
        }
        values.truncate(count);
        values
    }
}

impl<B: Backend> WeightSource<B> for RandomWeights<'_, B> {
    fn tensor<const D: usize>(
        &mut self,
        _name: &str,
        hf_shape: [usize; D],
        role: WeightRole,
    ) -> Result<Tensor<B, D>> {
        let shape = burn_shape(hf_shape, role);
        Ok(match role {
            WeightRole::NormScale => Tensor::ones(shape, self.device),
            WeightRole::Bias => Tensor::zeros(shape, self.device),
            WeightRole::Matrix | WeightRole::Embedding => {
                let values = self.normal(shape.iter().product());
                Tensor::from_data(TensorData::new(values, shape), self.device)
            }
        })
    }
}

fn burn_shape<const D: usize>(hf_shape: [usize; D], role: WeightRole) -> [usize; D] {
    let mut shape = hf_shape;
    if role == WeightRole::Matrix {
        shape.reverse();
    }
    shape
}

/// A memory-mapped safetensors checkpoint. Each tensor is converted straight from
/// the mapping to f32 (one pass, no second read of the file) and uploaded.
pub struct SafetensorsWeights<'a, B: Backend> {
    device: &'a B::Device,
    /// Memory maps of the shard files, in the order of `shard_paths`.
    shards: Vec<Mmap>,
    shard_paths: Vec<PathBuf>,
    /// Tensor name → index of the shard that holds it.
    locations: BTreeMap<String, usize>,
    taken: BTreeSet<String>,
}

impl<'a, B: Backend> SafetensorsWeights<'a, B> {
    /// Opens `model.safetensors`, or the shards listed in `model.safetensors.index.json`.
    pub fn open(model_dir: &Path, device: &'a B::Device) -> Result<Self> {
        let single = model_dir.join("model.safetensors");
        let index = model_dir.join("model.safetensors.index.json");
        let shard_paths = if single.is_file() {
            vec![single]
        } else if index.is_file() {
            shards_from_index(&index)?
        } else {
            return Err(ModelError::io(
                &single,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no model.safetensors or model.safetensors.index.json in this folder",
                ),
            ));
        };

        let mut shards = Vec::with_capacity(shard_paths.len());
        let mut locations = BTreeMap::new();
        for (shard_index, path) in shard_paths.iter().enumerate() {
            let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
            // SAFETY: the mapping is read-only and lives as long as the loader; a file
            // truncated underneath us is the one hazard, as with every mmap loader.
            let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
            let parsed = SafeTensors::deserialize(&mmap).map_err(|e| ModelError::Safetensors {
                path: path.clone(),
                // The crate does not always say which tensor is wrong; find it.
                message: header_problem(&mmap).unwrap_or_else(|| e.to_string()),
            })?;
            for name in parsed.names() {
                locations.insert(name.to_string(), shard_index);
            }
            shards.push(mmap);
        }
        Ok(Self {
            device,
            shards,
            shard_paths,
            locations,
            taken: BTreeSet::new(),
        })
    }

    /// Fails if the checkpoint holds tensors the model did not ask for: a sign that
    /// the config does not describe these weights.
    pub fn finish(self) -> Result<()> {
        let extra: Vec<&String> = self
            .locations
            .keys()
            .filter(|name| !self.taken.contains(*name))
            .collect();
        if extra.is_empty() {
            return Ok(());
        }
        let shown: Vec<&str> = extra.iter().take(8).map(|s| s.as_str()).collect();
        let more = if extra.len() > 8 {
            format!(" (and {} more)", extra.len() - 8)
        } else {
            String::new()
        };
        Err(ModelError::ExtraTensors {
            path: self.shard_paths[self.locations[extra[0]]].clone(),
            names: format!("{}{more}", shown.join(", ")),
        })
    }

    fn file_label(&self) -> PathBuf {
        match self.shard_paths.as_slice() {
            [one] => one.clone(),
            _ => self.shard_paths[0]
                .parent()
                .map(|p| p.join("model.safetensors.index.json"))
                .unwrap_or_default(),
        }
    }
}

impl<B: Backend> WeightSource<B> for SafetensorsWeights<'_, B> {
    fn tensor<const D: usize>(
        &mut self,
        name: &str,
        hf_shape: [usize; D],
        role: WeightRole,
    ) -> Result<Tensor<B, D>> {
        let Some(&shard_index) = self.locations.get(name) else {
            return Err(ModelError::MissingTensor {
                path: self.file_label(),
                name: name.to_string(),
                expected: hf_shape.to_vec(),
            });
        };
        let path = &self.shard_paths[shard_index];
        let parsed = SafeTensors::deserialize(&self.shards[shard_index]).map_err(|e| {
            ModelError::Safetensors {
                path: path.clone(),
                message: e.to_string(),
            }
        })?;
        let view = parsed.tensor(name).map_err(|e| ModelError::Safetensors {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if view.shape() != hf_shape.as_slice() {
            return Err(ModelError::ShapeMismatch {
                path: path.clone(),
                name: name.to_string(),
                expected: hf_shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let values =
            decode_f32(view.dtype(), view.data()).ok_or_else(|| ModelError::UnsupportedDtype {
                path: path.clone(),
                name: name.to_string(),
                dtype: format!("{:?}", view.dtype()),
            })?;
        // A NaN or infinite weight makes every output NaN; refuse it here, by name.
        let nonfinite = values.iter().filter(|v| !v.is_finite()).count();
        if nonfinite > 0 {
            return Err(ModelError::NonFiniteWeights {
                path: path.clone(),
                name: name.to_string(),
                count: nonfinite,
            });
        }
        let values = match role {
            WeightRole::Matrix => transpose(&values, hf_shape[0], hf_shape[1]),
            _ => values,
        };
        self.taken.insert(name.to_string());
        let shape = burn_shape(hf_shape, role);
        Ok(Tensor::from_data(
            TensorData::new(values, shape),
            self.device,
        ))
    }
}

/// The first tensor whose header entry does not fit the file (its byte range is
/// reversed, out of the data, or not the size its dtype and shape need), by name.
fn header_problem(file: &[u8]) -> Option<String> {
    let header_len = u64::from_le_bytes(file.get(..8)?.try_into().ok()?) as usize;
    let header = file.get(8..8usize.checked_add(header_len)?)?;
    let data_len = file.len() - 8 - header_len;
    let entries: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).ok()?;
    for (name, entry) in entries.iter().filter(|(name, _)| *name != "__metadata__") {
        let offsets: Vec<u64> = entry
            .get("data_offsets")?
            .as_array()?
            .iter()
            .map(|v| v.as_u64())
            .collect::<Option<_>>()?;
        let [start, end] = offsets[..] else {
            return Some(format!(
                "tensor `{name}`: data_offsets must be [start, end]"
            ));
        };
        if start > end || end as usize > data_len {
            return Some(format!(
                "tensor `{name}`: data_offsets [{start}, {end}] do not lie within the {data_len} data bytes"
            ));
        }
        let element_bytes = match entry.get("dtype")?.as_str()? {
            "F64" | "I64" | "U64" => 8,
            "F32" | "I32" | "U32" => 4,
            "F16" | "BF16" | "I16" | "U16" => 2,
            "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
            _ => continue,
        };
        let shape: Vec<u64> = entry
            .get("shape")?
            .as_array()?
            .iter()
            .map(|v| v.as_u64())
            .collect::<Option<_>>()?;
        let needed = shape
            .iter()
            .try_fold(element_bytes, |n: u64, &d| n.checked_mul(d));
        if needed != Some(end - start) {
            return Some(format!(
                "tensor `{name}`: shape {shape:?} needs {} bytes but data_offsets [{start}, {end}] hold {}",
                needed.map_or("too many".to_string(), |n| n.to_string()),
                end - start
            ));
        }
    }
    None
}

fn shards_from_index(index: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index).map_err(|e| ModelError::io(index, e))?;
    let parsed: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| ModelError::Json {
            path: index.to_path_buf(),
            source,
        })?;
    let map = parsed
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| ModelError::config(index, "missing object `weight_map`"))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut files: Vec<String> = map
        .values()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| ModelError::config(index, "`weight_map` values must be file names"))
        })
        .collect::<Result<_>>()?;
    files.sort();
    files.dedup();
    Ok(files.into_iter().map(|f| dir.join(f)).collect())
}

/// Little-endian bytes of one tensor to f32, or `None` for dtypes we do not load.
fn decode_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    let halves = || {
        bytes
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    match dtype {
        Dtype::F32 => Some(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        Dtype::BF16 => Some(
            halves()
                .map(|h| half::bf16::from_bits(h).to_f32())
                .collect(),
        ),
        Dtype::F16 => Some(halves().map(|h| half::f16::from_bits(h).to_f32()).collect()),
        _ => None,
    }
}

/// Row-major `[rows, cols]` to row-major `[cols, rows]`.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::header_problem;

    fn file(header: &str, data_bytes: usize) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend(std::iter::repeat_n(0u8, data_bytes));
        bytes
    }

    #[test]
    fn header_problems_name_the_tensor() {
        let good = r#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
        assert_eq!(header_problem(&file(good, 16)), None);
        let short = r#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,20]}}"#;
        assert_eq!(
            header_problem(&file(short, 20)).unwrap(),
            "tensor `b`: shape [3] needs 6 bytes but data_offsets [16, 20] hold 4"
        );
        let outside = r#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,64]}}"#;
        assert_eq!(
            header_problem(&file(outside, 16)).unwrap(),
            "tensor `a`: data_offsets [0, 64] do not lie within the 16 data bytes"
        );
        // A header that is not even JSON is left to the safetensors crate's message.
        assert_eq!(header_problem(&file("{not json", 0)), None);
        assert_eq!(header_problem(&[1, 2]), None);
    }
}
