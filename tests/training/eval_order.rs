//! Evaluation runs its items longest first and puts the results back in item order:
//! the masked-span answers and gold-span likelihoods of batches of four equal, item by
//! item, those of each item evaluated on its own (no padding, no reordering), and
//! benchmark responses likewise. Each test also checks that results left in run order
//! would not pass.

use std::path::PathBuf;

use pretrainzero::eval::generation::{generate_responses, GenerationSettings};
use pretrainzero::eval::masked_span::{
    build_items, evaluate, EvalSettings, MaskedSpanItem, PromptStyle, SpanChoice,
};
use pretrainzero::eval::span_likelihood::gold_span_loglik;
use pretrainzero::models::{PretrainedModel, SamplingConfig};
use pretrainzero::policy::prompts::PromptTemplates;

use crate::Cpu;

/// The 31M model: unlike the 5M one, it does not answer `the` to everything, so an
/// answer put back on the wrong item shows.
fn model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/pretrainzero-wiki-31m")
}

/// The 31M model, its prompt templates and twelve held-out masked-span items
/// (paragraphs of 12–70 words).
struct Setup {
    pretrained: PretrainedModel<Cpu>,
    templates: PromptTemplates,
    items: Vec<MaskedSpanItem>,
}

fn setup() -> Setup {
    let pretrained = PretrainedModel::<Cpu>::load(&model_dir(), &Default::default()).unwrap();
    let templates = PromptTemplates::for_model_or_file(Some(&model_dir()), None).unwrap();
    let items = build_items(
        &crate::sample_paragraphs(70),
        SpanChoice::Random,
        5,
        12,
        None,
    )
    .unwrap();
    assert_eq!(items.len(), 12);
    Setup {
        pretrained,
        templates,
        items,
    }
}

impl Setup {
    /// Tokens of each item's predictor prompt, plus those of its gold answer when
    /// `with_answer`: the length the evaluation orders that item by.
    fn lengths(&self, with_answer: bool) -> Vec<usize> {
        let tokenizer = self.pretrained.tokenizer.as_ref().unwrap();
        let tokens = |text: &str| tokenizer.encode(text, false).unwrap().len();
        self.items
            .iter()
            .map(|item| {
                let prompt =
                    PromptTemplates::fill(&self.templates.predictor_direct, &item.masked_paragraph);
                let answer = self
                    .templates
                    .predictor_answer(&item.gold, &item.masked_paragraph);
                tokens(&prompt) + if with_answer { tokens(&answer) } else { 0 }
            })
            .collect()
    }
}

/// `values` taken longest first, computed here without the crate's ordering code: what
/// a run that forgot to put its results back in item order would report.
fn in_longest_first_order<T: Clone>(values: &[T], lengths: &[usize]) -> Vec<T> {
    let mut indices: Vec<usize> = (0..values.len()).collect();
    indices.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));
    indices.into_iter().map(|i| values[i].clone()).collect()
}

#[test]
fn masked_span_answers_do_not_depend_on_the_batching() {
    let device = Default::default();
    let setup = setup();
    let lengths = setup.lengths(false);
    let Setup {
        pretrained,
        templates,
        items,
    } = setup;
    let tokenizer = pretrained.tokenizer.as_ref().unwrap();
    let scored = |items: &[MaskedSpanItem], batch_size: usize| {
        let settings = EvalSettings {
            style: PromptStyle::Direct,
            templates: templates.clone(),
            sampling: SamplingConfig::greedy(),
            max_new_tokens: 6,
            batch_size,
            seed: 0,
            case_insensitive: false,
        };
        evaluate(
            &pretrained.model,
            tokenizer,
            &pretrained.config.eos_token_ids,
            items,
            &settings,
            &device,
            |_| {},
        )
        .unwrap()
    };
    // Each item alone: no padding and no reordering.
    let alone: Vec<String> = items
        .chunks(1)
        .flat_map(|item| scored(item, 1))
        .map(|s| s.response)
        .collect();
    let batched: Vec<String> = scored(&items, 4).into_iter().map(|s| s.response).collect();
    assert_eq!(batched, alone);
    // The comparison can fail: answers left in run order would not match.
    assert_ne!(in_longest_first_order(&alone, &lengths), alone);
}

#[test]
fn gold_span_likelihoods_do_not_depend_on_the_batching() {
    let device = Default::default();
    let setup = setup();
    let lengths = setup.lengths(true);
    let Setup {
        pretrained,
        templates,
        items,
    } = setup;
    let tokenizer = pretrained.tokenizer.as_ref().unwrap();
    let logliks = |items: &[MaskedSpanItem], batch_size: usize| {
        gold_span_loglik(
            &pretrained.model,
            tokenizer,
            &templates,
            items,
            batch_size,
            &device,
        )
        .unwrap()
    };
    let alone: Vec<f64> = items.chunks(1).flat_map(|item| logliks(item, 1)).collect();
    let batched = logliks(&items, 4);
    assert_eq!(batched.len(), alone.len());
    for (i, (a, b)) in alone.iter().zip(&batched).enumerate() {
        assert!((a - b).abs() < 1e-4, "item {i}: {a} alone, {b} batched");
    }
    // The comparison can fail: likelihoods left in run order would be off by far more.
    let unrestored = in_longest_first_order(&alone, &lengths);
    assert!(
        alone
            .iter()
            .zip(&unrestored)
            .any(|(a, b)| (a - b).abs() > 0.1),
        "{alone:?}"
    );
}

#[test]
fn benchmark_responses_come_back_in_prompt_order() {
    let device = Default::default();
    let pretrained = PretrainedModel::<Cpu>::load(&model_dir(), &device).unwrap();
    let tokenizer = pretrained.tokenizer.as_ref().unwrap();
    // Prompts of different lengths, shortest first, so longest-first batching reverses them.
    let prompts: Vec<String> = [
        "The capital of France is",
        "In 1904 the railway reached the valley, and the village",
        "The church was rebuilt in stone after a fire destroyed the wooden nave in 1820, and the",
        "The river rises in the northern hills, flows south through the old market town, passes the mill where the abbey once stood, and",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let responses = |prompts: &[String], batch_size: usize| {
        let settings = GenerationSettings {
            sampling: SamplingConfig::greedy(),
            max_new_tokens: 5,
            batch_size,
            samples: 2,
            seed: 0,
            stop_strings: Vec::new(),
        };
        generate_responses(
            &pretrained.model,
            tokenizer,
            &pretrained.config.eos_token_ids,
            prompts,
            &settings,
            &device,
            |_| {},
        )
        .unwrap()
    };
    let alone: Vec<Vec<String>> = prompts
        .chunks(1)
        .flat_map(|prompt| responses(prompt, 1))
        .collect();
    let batched = responses(&prompts, 3);
    assert_eq!(alone.len(), prompts.len());
    assert_eq!(alone, batched);
    for samples in &alone {
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0], samples[1], "greedy samples of one prompt agree");
    }
    let distinct: std::collections::HashSet<&String> = alone.iter().map(|s| &s[0]).collect();
    assert_eq!(distinct.len(), prompts.len(), "{alone:?}");
}
