//! load → save → load: the saved file has the original's tensor names, shapes and
//! dtype, byte for byte the same data, and reloads to bit-identical tensors.

use std::collections::BTreeMap;
use std::path::Path;

use pretrainzero::models::{save_pretrained, PretrainedModel};
use safetensors::SafeTensors;

use crate::common::ScratchDir;
use crate::{require_shared, Cpu};

/// name → (dtype, shape, bytes) of a safetensors file.
fn tensors_of(path: &Path) -> BTreeMap<String, (String, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let parsed = SafeTensors::deserialize(&bytes).unwrap();
    parsed
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                (
                    format!("{:?}", view.dtype()),
                    view.shape().to_vec(),
                    view.data().to_vec(),
                ),
            )
        })
        .collect()
}

fn round_trip(name: &str) {
    let dir = require_shared!(&format!("models/{name}"));
    let device = Default::default();
    let original = PretrainedModel::<Cpu>::load(&dir, &device).unwrap();
    let out = ScratchDir::new(&format!("roundtrip-{name}"));
    save_pretrained(
        &original.model,
        &original.config,
        Some(&dir.join("tokenizer.json")),
        &out.0,
        original.config.dtype,
    )
    .unwrap();

    let before = tensors_of(&dir.join("model.safetensors"));
    let after = tensors_of(&out.0.join("model.safetensors"));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "{name}: tensor names"
    );
    for (tensor, (dtype, shape, data)) in &before {
        let (dtype2, shape2, data2) = &after[tensor];
        assert_eq!((dtype, shape), (dtype2, shape2), "{name}: {tensor}");
        assert!(data == data2, "{name}: {tensor} bytes differ");
    }

    let reloaded = PretrainedModel::<Cpu>::load(&out.0, &device).unwrap();
    assert!(reloaded.tokenizer.is_some(), "tokenizer copied");
    for (a, b) in original
        .model
        .hf_tensors()
        .iter()
        .zip(reloaded.model.hf_tensors())
    {
        assert_eq!(a.name, b.name);
        let same_bits = a
            .values
            .iter()
            .zip(&b.values)
            .all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(
            same_bits,
            "{name}: {} not bit-identical after reload",
            a.name
        );
    }
    // The config keeps every key, so transformers reads it as before.
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.0.join("config.json")).unwrap()).unwrap();
    let original_config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config, original_config, "{name}: config.json");
}

#[test]
fn qwen3_bf16_round_trip() {
    round_trip("tiny-random-qwen3");
}

#[test]
fn llama_untied_head_round_trip() {
    round_trip("tiny-random-llama");
}

#[test]
fn stories_f32_round_trip() {
    round_trip("stories260K-hf");
}

/// A checkpoint split into two shards with `model.safetensors.index.json` loads to
/// the same tensors as the single file.
#[test]
fn sharded_checkpoint_loads_like_single_file() {
    let dir = require_shared!("models/stories260K-hf");
    let out = ScratchDir::new("sharded");
    std::fs::copy(dir.join("config.json"), out.0.join("config.json")).unwrap();
    let tensors = tensors_of(&dir.join("model.safetensors"));
    let mut weight_map = serde_json::Map::new();
    let mut shards: [Vec<(String, safetensors::tensor::TensorView)>; 2] = [Vec::new(), Vec::new()];
    for (i, (name, (_, shape, data))) in tensors.iter().enumerate() {
        let shard = i % 2;
        let file = format!("model-0000{}-of-00002.safetensors", shard + 1);
        weight_map.insert(name.clone(), serde_json::Value::from(file));
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                .unwrap();
        shards[shard].push((name.clone(), view));
    }
    for (shard, views) in shards.into_iter().enumerate() {
        let bytes = safetensors::serialize(views, None).unwrap();
        std::fs::write(
            out.0
                .join(format!("model-0000{}-of-00002.safetensors", shard + 1)),
            bytes,
        )
        .unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(
        out.0.join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();

    let device = Default::default();
    let single = PretrainedModel::<Cpu>::load(&dir, &device).unwrap();
    let sharded = PretrainedModel::<Cpu>::load(&out.0, &device).unwrap();
    for (a, b) in single
        .model
        .hf_tensors()
        .iter()
        .zip(sharded.model.hf_tensors())
    {
        assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
        assert!(a.values == b.values, "{} differs", a.name);
    }
}

/// A random init is a function of its seed alone: the same seed gives the same
/// weights even while another thread draws random tensors from the backend's global
/// generator (as concurrent tests do), and the weights have the intended spread.
#[test]
fn random_init_depends_on_its_seed_alone() {
    use burn::prelude::*;
    use pretrainzero::models::{random_decoder, ModelConfig};
    let config = ModelConfig::from_json(
        serde_json::json!({"model_type": "qwen3", "vocab_size": 256, "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
            "tie_word_embeddings": true}),
        Path::new("random-init"),
    )
    .unwrap();
    let device = Default::default();
    let weights = |seed: u64| {
        let model = random_decoder::<Cpu>(&config, seed, &device);
        let mut values: Vec<f32> = Vec::new();
        for tensor in model.hf_tensors() {
            values.extend(tensor.values);
        }
        values
    };
    let noise = std::thread::spawn(move || {
        for seed in 0..200 {
            Cpu::seed(&Default::default(), seed);
            let _ = Tensor::<Cpu, 2>::random(
                [64, 64],
                burn::tensor::Distribution::Default,
                &Default::default(),
            );
        }
    });
    let first = weights(3);
    let second = weights(3);
    noise.join().unwrap();
    assert_eq!(first, second);
    assert_ne!(first, weights(4));
    // Matrices and embeddings: N(0, 0.02²); norm scales are 1.
    let drawn: Vec<f64> = first
        .iter()
        .filter(|&&v| v != 1.0)
        .map(|&v| f64::from(v))
        .collect();
    let mean = drawn.iter().sum::<f64>() / drawn.len() as f64;
    let std = (drawn.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / drawn.len() as f64).sqrt();
    assert!(mean.abs() < 1e-3, "mean {mean}");
    assert!((std - 0.02).abs() < 5e-4, "std {std}");
}
