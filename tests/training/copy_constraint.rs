//! Copy-constrained generation on the shipped model: every span the generator closes
//! is a copy of its own paragraph that starts and ends at word boundaries, while the
//! same prompts sampled freely write spans that are not.

use std::path::PathBuf;

use pretrainzero::kernels::RewardStepBackend;
use pretrainzero::models::{PretrainedModel, SamplingConfig, TokenConstraint};
use pretrainzero::policy::copy_constraint::{ParagraphCopy, TokenTexts};
use pretrainzero::policy::parse::last_braced;
use pretrainzero::policy::prompts::PromptTemplates;
use pretrainzero::rollout::RolloutEngine;

use crate::Cpu;

const PARAGRAPHS: [&str; 2] = [
    "Ireland has participated in the Eurovision Song Contest since 1965. Its first win was in 1970, when Dana won with \"All Kinds of Everything\".",
    "The river flows north through the valley and joins the sea near the old harbour town, which was founded by fishermen in the twelfth century.",
];

fn is_word_copy(paragraph: &str, span: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    paragraph.match_indices(span).any(|(start, _)| {
        !alnum(paragraph[..start].chars().next_back())
            && !alnum(paragraph[start + span.len()..].chars().next())
    })
}

#[test]
fn constrained_spans_are_copies_of_their_paragraph() {
    let device = Default::default();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/pretrainzero-wiki-tiny");
    let pretrained = PretrainedModel::<Cpu>::load(&dir, &device).unwrap();
    let tokenizer = pretrained.tokenizer.as_ref().unwrap();
    let engine = RolloutEngine {
        model: &pretrained.model,
        tokenizer,
        eos_token_ids: &[0],
        sampling: SamplingConfig::with_temperature(1.0),
        max_new_tokens: 12,
        batch_size: 8,
        concurrent_batches: <Cpu as RewardStepBackend>::concurrent_pieces(),
        device: &device,
    };
    let template = PromptTemplates::default().generator_direct;
    let samples = 12;
    let mut prompts = Vec::new();
    for paragraph in PARAGRAPHS {
        let ids = tokenizer
            .encode(&PromptTemplates::fill(&template, paragraph), false)
            .unwrap();
        prompts.extend(std::iter::repeat_n(ids, samples));
    }
    let texts = TokenTexts::new(tokenizer, pretrained.model.vocab_size()).unwrap();
    let copy = ParagraphCopy {
        tokens: &texts,
        paragraphs: PARAGRAPHS
            .iter()
            .flat_map(|p| std::iter::repeat_n(*p, samples))
            .collect(),
        content_only: false,
        content_start: false,
    };
    let stop = ["}".to_string()];
    let spans =
        |constraint: Option<&(dyn TokenConstraint + Sync)>| -> Vec<(usize, Option<String>)> {
            engine
                .run_constrained(&prompts, &stop, 7, constraint)
                .unwrap()
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    (
                        i / samples,
                        last_braced(&format!("\\mask{{{}", r.response_text), "mask"),
                    )
                })
                .collect()
        };
    let constrained = spans(Some(&copy));
    let closed: Vec<_> = constrained.iter().filter(|(_, s)| s.is_some()).collect();
    assert!(
        closed.len() >= samples,
        "most constrained spans close: {constrained:?}"
    );
    for (paragraph, span) in &closed {
        let span = span.as_deref().unwrap();
        assert!(!span.is_empty());
        assert!(
            is_word_copy(PARAGRAPHS[*paragraph], span),
            "{span:?} is not a word copy of paragraph {paragraph}"
        );
    }
    let free = spans(None);
    let free_copies = free
        .iter()
        .filter(|(p, s)| {
            s.as_deref()
                .is_some_and(|s| !s.is_empty() && is_word_copy(PARAGRAPHS[*p], s))
        })
        .count();
    assert!(
        free_copies < closed.len(),
        "free sampling copies less often: {free:?}"
    );
}
