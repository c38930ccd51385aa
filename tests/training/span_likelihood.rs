//! The gold-span log-likelihood of `eval --task masked-span`: on a model with all
//! weights zero every distribution is uniform, so each token's log-probability is
//! exactly -ln(vocabulary); on the shipped model it equals the per-token scores of
//! `score_sequence` (a second implementation: the whole sequence through the plain
//! forward pass) over the response tokens.

use std::path::PathBuf;

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use pretrainzero::eval::masked_span::{build_items, SpanChoice};
use pretrainzero::eval::span_likelihood::gold_span_loglik;
use pretrainzero::models::{score_sequence, PretrainedModel};
use pretrainzero::policy::prompts::PromptTemplates;

use crate::Cpu;

struct Zero;

impl ModuleMapper<Cpu> for Zero {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<Cpu, D>>) -> Param<Tensor<Cpu, D>> {
        let (id, tensor, mapper) = param.consume();
        Param::from_mapped_value(id, tensor.zeros_like(), mapper)
    }
}

fn shipped_model() -> PretrainedModel<Cpu> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/pretrainzero-wiki-tiny");
    PretrainedModel::<Cpu>::load(&dir, &Default::default()).unwrap()
}

fn items() -> Vec<pretrainzero::eval::masked_span::MaskedSpanItem> {
    build_items(
        &crate::sample_paragraphs(60),
        SpanChoice::Random,
        3,
        5,
        None,
    )
    .unwrap()
}

#[test]
fn a_zero_model_gives_minus_ln_vocabulary_per_token() {
    let pretrained = shipped_model();
    let model = pretrained.model.clone().map(&mut Zero);
    let tokenizer = pretrained.tokenizer.as_ref().unwrap();
    let items = items();
    let logliks = gold_span_loglik(
        &model,
        tokenizer,
        &PromptTemplates::default(),
        &items,
        2,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(logliks.len(), items.len());
    let expected = -(pretrained.config.vocab_size as f64).ln();
    for value in logliks {
        assert!((value - expected).abs() < 1e-5, "{value} vs {expected}");
    }
}

/// In the built-in format the answer is `gold}`; in the suffix-first format, whose
/// prompt ends with the text before the mask, it is ` gold}` where a space stands
/// before the (first) mask or the mask starts the paragraph.
#[test]
fn equals_the_sequence_scores_of_the_plain_forward_pass() {
    let pretrained = shipped_model();
    let tokenizer = pretrained.tokenizer.as_ref().unwrap();
    let items = items();
    let follows_a_space = |paragraph: &str| {
        let before = paragraph.split("[mask]").next().unwrap();
        before.is_empty() || before.ends_with(' ')
    };
    assert!(items
        .iter()
        .any(|item| follows_a_space(&item.masked_paragraph)));
    let device = Default::default();
    for (templates, space_lead) in [
        (PromptTemplates::default(), false),
        (crate::prompt_templates::suffix_first(), true),
    ] {
        let logliks =
            gold_span_loglik(&pretrained.model, tokenizer, &templates, &items, 3, &device).unwrap();
        for (item, value) in items.iter().zip(logliks) {
            let lead = if space_lead && follows_a_space(&item.masked_paragraph) {
                " "
            } else {
                ""
            };
            let prompt = tokenizer
                .encode(
                    &PromptTemplates::fill(&templates.predictor_direct, &item.masked_paragraph),
                    false,
                )
                .unwrap();
            let response = tokenizer
                .encode(&format!("{lead}{}}}", item.gold), false)
                .unwrap();
            let ids: Vec<u32> = prompt.iter().chain(&response).copied().collect();
            let scores = score_sequence(&pretrained.model, &ids, &device).unwrap();
            let tail = &scores.target_logprobs[scores.target_logprobs.len() - response.len()..];
            let expected = tail.iter().map(|&v| v as f64).sum::<f64>() / tail.len() as f64;
            assert!(
                (value - expected).abs() < 1e-4,
                "{} (lead {lead:?}): {value} vs {expected}",
                item.id
            );
            assert!(value < 0.0);
        }
    }
}

/// `eval --span logged` scores the spans of a run's `spans.jsonl` exactly as the
/// predictor saw them, only those of the `--steps` asked for.
#[test]
fn logged_spans_are_scored_from_a_span_log() {
    let scratch = crate::common::ScratchDir::new("eval-logged");
    let log = scratch.0.join("spans.jsonl");
    let row = |step: usize, context: &str, gold: &str| {
        serde_json::json!({"step": step, "policy": "pretrainzero",
            "span": {"context": context, "gold": gold, "next_word": false, "correct": 1, "answers": 8}})
    };
    let rows = [
        row(1, "The [mask] of France is Paris.", "capital"),
        row(2, "The river [mask] through the city.", "flows"),
        row(2, "It was built in [mask].", "1850"),
        row(3, "A [mask] day.", "sunny"),
    ];
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&log, text).unwrap();
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/pretrainzero-wiki-tiny");
    let eval = |steps: &str, out: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pretrainzero"))
            .args([
                "eval",
                "--task",
                "masked-span",
                "--span",
                "logged",
                "--steps",
                steps,
                "--model",
            ])
            .arg(&model)
            .arg("--data")
            .arg(&log)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let out = scratch.0.join("scored.jsonl");
    let run = eval("2", &out);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let scored: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = scored.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["step-2:line-2", "step-2:line-3"]);
    assert_eq!(scored[1]["gold"], "1850");
    assert!(scored[1]["prompt"]
        .as_str()
        .unwrap()
        .contains("It was built in [mask]."));
    assert!(scored[0]["gold_loglik"].as_f64().unwrap() < 0.0);

    let run = eval("5-9", &scratch.0.join("none.jsonl"));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains("spans.jsonl: no masked-span task logged in steps 5-9"),
        "{stderr}"
    );
}
