//! Reading the transformers reference outputs stored beside each fixture model.

use std::path::Path;

use safetensors::{Dtype, SafeTensors};

pub struct Reference {
    pub input_ids: Vec<u32>,
    pub greedy_new_ids: Vec<u32>,
    pub mean_nll: f64,
    pub target_logprobs: Vec<f32>,
    pub logsumexp: Vec<f32>,
}

impl Reference {
    pub fn load(model_dir: &Path) -> Reference {
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(model_dir.join("reference_outputs.json")).unwrap(),
        )
        .unwrap();
        let ids = |key: &str| -> Vec<u32> {
            json[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect()
        };
        // Full-precision floats come from the safetensors twin of the JSON.
        let bytes = std::fs::read(model_dir.join("reference_outputs.safetensors")).unwrap();
        let tensors = SafeTensors::deserialize(&bytes).unwrap();
        let floats = |name: &str| -> Vec<f32> {
            let view = tensors.tensor(name).unwrap();
            assert_eq!(view.dtype(), Dtype::F32);
            view.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        };
        Reference {
            input_ids: ids("input_ids"),
            greedy_new_ids: ids("greedy_new_ids"),
            mean_nll: json["mean_nll"].as_f64().unwrap(),
            target_logprobs: floats("target_logprobs"),
            logsumexp: floats("logsumexp"),
        }
    }
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
