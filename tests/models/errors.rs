//! Bad checkpoints give errors that name the file, the tensor and the shapes.

use std::collections::HashMap;
use std::path::Path;

use pretrainzero::models::{ModelError, PretrainedModel};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::common::ScratchDir;
use crate::{require_shared, Cpu};

/// Copies stories260K-hf into `out`, with its weights passed through `edit`
/// (name → (shape, f32 values)).
fn edited_copy(
    source: &Path,
    out: &Path,
    edit: impl FnOnce(&mut HashMap<String, (Vec<usize>, Vec<f32>)>),
) {
    std::fs::copy(source.join("config.json"), out.join("config.json")).unwrap();
    let bytes = std::fs::read(source.join("model.safetensors")).unwrap();
    let parsed = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: HashMap<String, (Vec<usize>, Vec<f32>)> = parsed
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, (view.shape().to_vec(), values))
        })
        .collect();
    edit(&mut tensors);
    let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, (shape, values))| {
            (
                name,
                shape,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView)> = encoded
        .iter()
        .map(|(name, shape, bytes)| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    std::fs::write(
        out.join("model.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
}

fn load_error(dir: &Path) -> ModelError {
    match PretrainedModel::<Cpu>::load(dir, &Default::default()) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e,
    }
}

#[test]
fn missing_tensor_is_named() {
    let source = require_shared!("models/stories260K-hf");
    let out = ScratchDir::new("missing-tensor");
    edited_copy(&source, &out.0, |t| {
        t.remove("model.norm.weight");
    });
    let message = load_error(&out.0).to_string();
    assert!(
        message.contains("model.norm.weight") && message.contains("[64]"),
        "{message}"
    );
    assert!(message.contains("model.safetensors"), "{message}");
}

#[test]
fn wrong_shape_names_expected_and_found() {
    let source = require_shared!("models/stories260K-hf");
    let out = ScratchDir::new("wrong-shape");
    edited_copy(&source, &out.0, |t| {
        t.insert(
            "model.layers.2.mlp.up_proj.weight".into(),
            (vec![171, 64], vec![0.0; 171 * 64]),
        );
    });
    let message = load_error(&out.0).to_string();
    assert!(
        message.contains("model.layers.2.mlp.up_proj.weight"),
        "{message}"
    );
    assert!(
        message.contains("[171, 64]") && message.contains("[172, 64]"),
        "{message}"
    );
}

#[test]
fn extra_tensor_is_an_error() {
    let source = require_shared!("models/stories260K-hf");
    let out = ScratchDir::new("extra-tensor");
    edited_copy(&source, &out.0, |t| {
        t.insert(
            "lm_head.weight".into(),
            (vec![512, 64], vec![0.0; 512 * 64]),
        );
    });
    let message = load_error(&out.0).to_string();
    assert!(
        message.contains("lm_head.weight") && message.contains("unexpected"),
        "{message}"
    );
}

#[test]
fn unsupported_model_type_and_missing_folder() {
    let source = require_shared!("models/stories260K-hf");
    let out = ScratchDir::new("bad-config");
    let config = std::fs::read_to_string(source.join("config.json")).unwrap();
    std::fs::write(
        out.0.join("config.json"),
        config.replace("\"llama\"", "\"gpt2\""),
    )
    .unwrap();
    let message = load_error(&out.0).to_string();
    assert!(
        message.contains("gpt2") && message.contains("config.json"),
        "{message}"
    );

    std::fs::write(out.0.join("config.json"), "{ not json").unwrap();
    let message = load_error(&out.0).to_string();
    assert!(
        message.contains("invalid JSON") && message.contains("config.json"),
        "{message}"
    );

    let message = load_error(&out.0.join("nope")).to_string();
    assert!(
        message.contains("nope") && message.contains("not found"),
        "{message}"
    );
}
