//! Faults a long run must survive: NaN logits (the optimizer step is skipped, the
//! weights stay as they were, and a run of such steps stops the run with its last
//! checkpoint intact), a damaged newest checkpoint (resume falls back to the previous
//! one), and a second run on a folder that a live run holds (refused).

use std::path::Path;

use burn::backend::Autodiff;
use burn::module::{Module, ModuleMapper, Param};
use burn::optim::AdamWConfig;
use burn::prelude::*;
use pretrainzero::models::{
    random_decoder, save_pretrained, ComputeDtype, Decoder, ModelConfig, PretrainedModel,
    TextTokenizer, WeightDtype,
};
use pretrainzero::optim::BackwardShards;
use pretrainzero::pretrain::trainer::train_step;
use pretrainzero::pretrain::{run_pretraining, PretrainConfig, TokenChunk};
use pretrainzero::run_lock::RunLock;
use pretrainzero::update::policy_update::update_policy;
use pretrainzero::update::{LossAggregation, PolicyLossConfig, PolicySample, UpdateConfig};

use crate::common::ScratchDir;
use crate::pretrain::{config, copy_dir, small_tokenizer};
use crate::{metrics, Cpu};

type Ad = Autodiff<Cpu>;

fn model_config(vocab: usize) -> ModelConfig {
    ModelConfig::from_json(
        serde_json::json!({"model_type": "qwen3", "vocab_size": vocab, "hidden_size": 32,
            "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": 8, "tie_word_embeddings": true}),
        Path::new("faults"),
    )
    .unwrap()
}

/// Multiplies the `[vocab, hidden]` embedding (tied to the LM head) by NaN, so that
/// every logit is NaN.
struct PoisonEmbedding {
    vocab: usize,
}

impl ModuleMapper<Ad> for PoisonEmbedding {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<Ad, D>>) -> Param<Tensor<Ad, D>> {
        let (id, tensor, mapper) = param.consume();
        let tensor = if tensor.dims()[0] == self.vocab {
            // A fresh leaf, as a loaded weight would be.
            tensor.mul_scalar(f32::NAN).detach().require_grad()
        } else {
            tensor
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}

fn poisoned_model(vocab: usize) -> Decoder<Ad> {
    random_decoder::<Ad>(&model_config(vocab), 5, &Default::default())
        .map(&mut PoisonEmbedding { vocab })
}

/// Every weight's bits, by tensor name (NaN compares equal to itself this way).
fn weight_bits(model: &Decoder<Ad>) -> Vec<(String, Vec<u32>)> {
    model
        .hf_tensors()
        .into_iter()
        .map(|t| (t.name, t.values.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

fn ids(seed: usize, len: usize) -> Vec<u32> {
    (0..len)
        .map(|t| ((seed * 31 + t * 17 + 5) % 63 + 1) as u32)
        .collect()
}

#[test]
fn nan_logits_skip_the_pretraining_step_and_leave_the_weights() {
    let model = poisoned_model(80);
    let before = weight_bits(&model);
    let mut optimizer = AdamWConfig::new().init::<Ad, Decoder<Ad>>();
    let batch: Vec<TokenChunk> = (0..4)
        .map(|i| TokenChunk::scored_everywhere(ids(i, 17)))
        .collect();
    let (model, outcome) = train_step(
        model,
        &mut optimizer,
        &[batch],
        BackwardShards::new(2),
        1e-2,
        1.0,
        &Default::default(),
    );
    assert!(outcome.loss.is_nan(), "NaN logits give a NaN loss");
    assert!(outcome.skipped);
    assert_eq!(
        weight_bits(&model),
        before,
        "a skipped step changes no weight"
    );
}

#[test]
fn nan_logits_skip_every_grpo_optimizer_step() {
    let model = poisoned_model(80);
    let before = weight_bits(&model);
    let mut optimizer = AdamWConfig::new().init::<Ad, Decoder<Ad>>();
    let samples: Vec<PolicySample> = (0..6)
        .map(|i| PolicySample {
            prompt_ids: ids(i, 5),
            response_ids: ids(50 + i, 3),
            advantage: if i % 2 == 0 { 1.0 } else { -1.0 },
        })
        .collect();
    let config = UpdateConfig {
        loss: PolicyLossConfig::default(),
        aggregation: LossAggregation::TokenMean,
        ppo_mini_batches: 2,
        micro_batch_size: 4,
        max_grad_norm: 1.0,
        reward_step_budget_bytes: 1 << 20,
    };
    let (model, stats) = update_policy(
        model,
        &mut optimizer,
        None,
        &samples,
        &config,
        BackwardShards::new(1),
        1e-2,
        &Default::default(),
    );
    assert_eq!(stats.nonfinite_steps, 2);
    assert_eq!(stats.optimizer_steps, 0);
    assert_eq!(weight_bits(&model), before);
}

#[test]
fn a_diverged_pretraining_run_stops_with_its_last_checkpoint_intact() {
    let scratch = ScratchDir::new("nan-run");
    let tokenizer = small_tokenizer(&scratch.0.join("tokenizer"));
    // An infinite learning rate (refused by the CLI, not by the library) makes step 1
    // write infinite weights, so from step 2 on every logit is NaN.
    let mut run_config = config(tokenizer);
    run_config.lr = f64::INFINITY;
    run_config.steps = 6;
    run_config.checkpoint_every = 1;
    run_config.max_consecutive_nonfinite = 2;
    let run = scratch.0.join("run");
    let error = run_pretraining::<Cpu>(Some(run_config), &run, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("stopped at step 3"), "{error}");
    assert!(error.contains("2 consecutive steps"), "{error}");
    assert!(error.contains("newest checkpoint, step 2"), "{error}");
    let skipped: Vec<bool> = metrics(&run)
        .iter()
        .map(|row| row["nonfinite_skipped"].as_bool().unwrap())
        .collect();
    assert_eq!(
        skipped,
        [false, true, true],
        "every step is logged, the faulty ones flagged"
    );
    assert!(run
        .join("checkpoints/step-0000002/checksums.json")
        .is_file());
    assert!(!run.join("checkpoints/step-0000003").exists());
    assert!(
        !run.join("final").exists(),
        "a diverged run exports nothing"
    );
}

#[test]
fn weights_with_nan_are_refused_at_load_naming_the_tensor() {
    let scratch = ScratchDir::new("nan-weights");
    let tokenizer = small_tokenizer(&scratch.0.join("tokenizer"));
    let vocab = TextTokenizer::from_file(&tokenizer).unwrap().vocab_size();
    let model_dir = scratch.0.join("poisoned");
    save_pretrained(
        &poisoned_model(vocab),
        &model_config(vocab),
        Some(&tokenizer),
        &model_dir,
        WeightDtype::F32,
    )
    .unwrap();
    let error = PretrainedModel::<Cpu>::load(&model_dir, &Default::default())
        .err()
        .expect("NaN weights must not load")
        .to_string();
    assert!(error.contains("model.safetensors"), "{error}");
    assert!(
        error.contains(&format!(
            "tensor `model.embed_tokens.weight` holds {} NaN",
            vocab * 32
        )),
        "{error}"
    );
}

#[test]
fn resume_falls_back_from_a_damaged_newest_checkpoint() {
    let scratch = ScratchDir::new("damaged-checkpoint");
    let tokenizer = small_tokenizer(&scratch.0.join("tokenizer"));
    let device = Default::default();
    let full = scratch.0.join("full");
    run_pretraining::<Cpu>(Some(config(tokenizer)), &full, &device).unwrap();
    let full_metrics = metrics(&full);

    // The same run killed after step 4 had written its checkpoint, with that
    // checkpoint's model file then damaged (truncated), and the log holding all rows.
    let damaged = scratch.0.join("damaged");
    std::fs::create_dir_all(damaged.join("checkpoints")).unwrap();
    std::fs::copy(
        full.join("pretrain_config.json"),
        damaged.join("pretrain_config.json"),
    )
    .unwrap();
    std::fs::copy(full.join("metrics.jsonl"), damaged.join("metrics.jsonl")).unwrap();
    for step in ["step-0000002", "step-0000004"] {
        copy_dir(
            &full.join("checkpoints").join(step),
            &damaged.join("checkpoints").join(step),
        );
    }
    let model_file = damaged.join("checkpoints/step-0000004/model.mpk");
    let bytes = std::fs::read(&model_file).unwrap();
    std::fs::write(&model_file, &bytes[..bytes.len() / 2]).unwrap();

    // Resuming uses step 2, recomputes steps 3 and 4, and logs each step once.
    run_pretraining::<Cpu>(None, &damaged, &device).unwrap();
    let resumed = metrics(&damaged);
    assert_eq!(resumed.len(), 4);
    for (step, (a, b)) in resumed.iter().zip(&full_metrics).enumerate() {
        assert_eq!(a["step"], b["step"]);
        let (x, y) = (a["loss"].as_f64().unwrap(), b["loss"].as_f64().unwrap());
        assert!(
            (x - y).abs() <= 1e-5 * y.abs(),
            "step {}: loss {x} vs {y}",
            step + 1
        );
    }

    // With every checkpoint damaged, the error names them.
    for step in ["step-0000002", "step-0000004"] {
        let state = damaged.join("checkpoints").join(step).join("optimizer.mpk");
        std::fs::write(&state, b"not a record").unwrap();
    }
    let error = format!(
        "{:#}",
        run_pretraining::<Cpu>(None, &damaged, &device).unwrap_err()
    );
    assert!(error.contains("no usable checkpoint (2 damaged"), "{error}");
    assert!(
        error.contains("step-0000004/optimizer.mpk is damaged (checksum mismatch)"),
        "{error}"
    );
}

#[test]
fn a_run_folder_held_by_a_live_run_is_refused() {
    let scratch = ScratchDir::new("locked-run");
    let tokenizer = small_tokenizer(&scratch.0.join("tokenizer"));
    let run = scratch.0.join("run");
    let _live = RunLock::acquire(&run).unwrap();
    let error = run_pretraining::<Cpu>(Some(config(tokenizer)), &run, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("another live run holds this run folder"),
        "{error}"
    );
    assert!(
        !run.join("pretrain_config.json").exists(),
        "nothing was written"
    );
}

#[test]
fn bf16_on_a_backend_without_it_is_refused_before_anything_is_written() {
    let scratch = ScratchDir::new("bf16-on-ndarray");
    let tokenizer = small_tokenizer(&scratch.0.join("tokenizer"));
    let run = scratch.0.join("run");
    let config = PretrainConfig {
        dtype: ComputeDtype::Bf16,
        ..config(tokenizer)
    };
    let error = run_pretraining::<Cpu>(Some(config), &run, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("--dtype bf16: this backend cannot compute in bf16"),
        "{error}"
    );
    assert!(!run.exists(), "no run folder was created");
}

#[test]
fn a_run_folder_that_cannot_be_created_is_a_clear_error() {
    let scratch = ScratchDir::new("unwritable-run");
    let tokenizer = small_tokenizer(&scratch.0.join("tokenizer"));
    // A run folder below a regular file can never be created (unlike permissions,
    // this also holds when the tests run as root).
    let blocker = scratch.0.join("not-a-folder");
    std::fs::write(&blocker, b"").unwrap();
    let error = format!(
        "{:#}",
        run_pretraining::<Cpu>(
            Some(config(tokenizer)),
            &blocker.join("run"),
            &Default::default()
        )
        .unwrap_err()
    );
    assert!(
        error.contains("not-a-folder/run: cannot create the run folder"),
        "{error}"
    );
}

#[test]
fn a_run_killed_before_its_first_checkpoint_resumes_from_step_0() {
    // Found by the kill campaign: such a run used to fail with "no checkpoint to
    // resume from".
    let scratch = ScratchDir::new("resume-without-checkpoint");
    let tokenizer = small_tokenizer(&scratch.0.join("tokenizer"));
    let device = Default::default();
    let full = scratch.0.join("full");
    run_pretraining::<Cpu>(Some(config(tokenizer)), &full, &device).unwrap();
    let killed = scratch.0.join("killed");
    std::fs::create_dir_all(&killed).unwrap();
    std::fs::copy(
        full.join("pretrain_config.json"),
        killed.join("pretrain_config.json"),
    )
    .unwrap();
    // A torn first row, as a kill in the middle of writing it leaves.
    std::fs::write(killed.join("metrics.jsonl"), "{\"step\":1,\"lo").unwrap();
    let summary = run_pretraining::<Cpu>(None, &killed, &device).unwrap();
    assert_eq!(summary.steps, 4);
    let (resumed, expected) = (metrics(&killed), metrics(&full));
    assert_eq!(
        resumed.len(),
        4,
        "the torn row is gone, every step logged once"
    );
    for (a, b) in resumed.iter().zip(&expected) {
        let (x, y) = (a["loss"].as_f64().unwrap(), b["loss"].as_f64().unwrap());
        assert!(
            (x - y).abs() <= 1e-5 * y.abs(),
            "step {}: {x} vs {y}",
            a["step"]
        );
    }
}
