//! Prompt formats that travel with a model: the suffix-first predictor template shipped
//! in configs/, task examples built in it, and a model folder's templates reaching a
//! training configuration.

use std::collections::HashSet;
use std::path::PathBuf;

use pretrainzero::models::TextTokenizer;
use pretrainzero::policy::prompts::{PromptTemplates, MODEL_TEMPLATES_FILE};
use pretrainzero::pretrain::TaskLoss;
use pretrainzero::train::config::TrainConfig;

use crate::common::ScratchDir;
use crate::pretrain::{sample_corpus, sample_stream, small_tokenizer, task_mix, SAMPLE_EOS};

/// The templates shipped as `configs/prompt-templates/NAME.json`.
fn shipped_templates(name: &str) -> PromptTemplates {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("configs/prompt-templates/{name}.json"));
    PromptTemplates::from_file(&file).unwrap()
}

/// The suffix-first templates shipped in configs/prompt-templates.
pub(crate) fn suffix_first() -> PromptTemplates {
    shipped_templates("suffix-first")
}

/// Decoded task examples of the sample corpus in `templates` (every paragraph a task
/// example), separated at end-of-text.
fn decoded_examples(scratch: &ScratchDir, templates: PromptTemplates) -> Vec<String> {
    let tokenizer = TextTokenizer::from_file(&small_tokenizer(&scratch.0)).unwrap();
    let mix = task_mix(1.0, TaskLoss::Whole);
    let mut stream = sample_stream(&tokenizer, mix, 4).with_templates(templates);
    let tokens: Vec<u32> = (0..40)
        .flat_map(|_| stream.next_chunk().unwrap().tokens)
        .collect();
    tokens
        .split(|&t| t == SAMPLE_EOS)
        .map(|example| tokenizer.decode(example, false).unwrap())
        .collect()
}

/// Every predictor example of the suffix-first format gives the text after the mask,
/// then the text before it, and the answer continues that text: the text before, the
/// answer as written (with its leading space, if any) and the text after, joined in
/// reading order with the span put back where `[mask]` stands, are a paragraph of the
/// corpus. So the answer has the space that the paragraph has before the span, and
/// no other.
#[test]
fn suffix_first_examples_put_the_answer_where_the_text_before_ends() {
    let scratch = ScratchDir::new("suffix-first");
    let templates = suffix_first();
    assert_eq!(templates.predictor_answer_lead, " ");
    let examples = decoded_examples(&scratch, templates);
    let normal = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let paragraphs: HashSet<String> = sample_corpus()
        .open()
        .unwrap()
        .map(|p| normal(&p.text))
        .collect();

    let (mut checked, mut with_lead) = (0, 0);
    // Examples are separated by end-of-text; the first and last may be cut.
    for text in &examples {
        let Some((prompt, answer)) = text.split_once("\\boxed{") else {
            continue;
        };
        let Some((after, before)) = prompt
            .split_once("Text after [mask]: ")
            .and_then(|(_, rest)| rest.split_once("\n\nText before [mask]: "))
        else {
            continue;
        };
        let Some(written) = answer.strip_suffix('}') else {
            continue;
        };
        let span = written.trim_start();
        let (before, after) = (
            before.replace("[mask]", span),
            after.replace("[mask]", span),
        );
        // The split drops the whitespace between the span and the text after it,
        // which a span that ends before a punctuation mark does not have.
        let joined = [" ", ""].map(|gap| normal(&format!("{before}{written}{gap}{after}")));
        assert!(
            joined.iter().any(|text| paragraphs.contains(text)),
            "not a corpus paragraph: {joined:?}"
        );
        checked += 1;
        with_lead += usize::from(written.starts_with(' '));
    }
    assert!(checked >= 5, "{checked} predictor examples checked");
    assert!(
        with_lead * 10 >= checked * 9,
        "{with_lead} of {checked} with a lead"
    );
}

/// Every predictor example of the window format repeats, after the whole paragraph,
/// the last four words before the mask, `[mask]` and the first four words after it,
/// then the last four words before it again, where the answer starts: counted here
/// on whitespace-split words of the text before and after the mask.
#[test]
fn window_examples_repeat_the_words_around_the_mask() {
    let scratch = ScratchDir::new("window");
    let examples = decoded_examples(&scratch, shipped_templates("window"));
    let words = |text: &str| {
        text.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let mut checked = 0;
    // The first and last example may be cut.
    for text in &examples {
        let Some((prompt, _answer)) = text.split_once("\\boxed{") else {
            continue;
        };
        let parts: Option<Vec<&str>> = [
            "Text after [mask]: ",
            "\n\nText before [mask]: ",
            "\n\nAround [mask]: ",
            "\n\n",
        ]
        .iter()
        .try_fold((Vec::new(), prompt), |(mut parts, rest), marker| {
            let (head, tail) = rest.split_once(marker)?;
            parts.push(head);
            Some((parts, tail))
        })
        .map(|(mut parts, last)| {
            parts.push(last);
            parts
        });
        let Some([_, after, before, around, answer_lead_in]) = parts.as_deref() else {
            continue;
        };
        let (before, after) = (words(before), words(after));
        let tail = before[before.len().saturating_sub(4)..].join(" ");
        let head = after[..after.len().min(4)].join(" ");
        assert_eq!(
            words(around).join(" "),
            format!("{tail} [mask] {head}").trim(),
            "{text}"
        );
        assert_eq!(words(answer_lead_in).join(" "), tail, "{text}");
        checked += 1;
    }
    assert!(checked >= 5, "{checked} predictor examples checked");
}

/// A new run's configuration follows its model's prompt_templates.json where it leaves
/// a template at the built-in value, keeps its own where it sets one (the answer lead
/// with its own predictor prompt), and names the file when that file is not valid.
#[test]
fn a_model_folders_templates_reach_the_training_configuration() {
    let scratch = ScratchDir::new("model-templates");
    let model = scratch.0.join("model");
    std::fs::create_dir_all(&model).unwrap();
    suffix_first().save_for_model(&model).unwrap();
    let model_setting = format!("model={:?}", model.display().to_string());

    let config = TrainConfig::built_in_default(&[model_setting.clone()])
        .unwrap()
        .with_model_templates()
        .unwrap();
    assert_eq!(config.policy.templates, suffix_first());

    let own = "policy.templates.predictor_direct=\"Fill in: {paragraph} \\\\boxed{\"";
    let config = TrainConfig::built_in_default(&[model_setting.clone(), own.into()])
        .unwrap()
        .with_model_templates()
        .unwrap();
    assert_eq!(
        config.policy.templates.predictor_direct,
        "Fill in: {paragraph} \\boxed{"
    );
    // The answer lead goes with the prompt: the configuration's own (built-in) one.
    assert_eq!(config.policy.templates.predictor_answer_lead, "");
    assert_eq!(
        config.policy.templates.generator_direct,
        PromptTemplates::default().generator_direct
    );

    std::fs::write(
        model.join(MODEL_TEMPLATES_FILE),
        "{\"predictor_direkt\": \"x\"}",
    )
    .unwrap();
    let error = format!(
        "{:#}",
        TrainConfig::built_in_default(&[model_setting])
            .unwrap()
            .with_model_templates()
            .unwrap_err()
    );
    assert!(
        error.contains(MODEL_TEMPLATES_FILE) && error.contains("predictor_direkt"),
        "{error}"
    );
}
