//! The generator and predictor prompt templates (DESIGN.md §2). Plain text, no chat
//! template, since the policies are base models. `{paragraph}` is substituted.
//!
//! The *direct* variants end with a forced prefix (`\mask{` / `\boxed{`) so that the
//! completion is the span itself followed by `}`; they serve small models that cannot
//! reason first. The *reasoning* variants ask for thinking before the answer.
//!
//! Besides `{paragraph}`, a template may use `{before}` and `{after}`: the paragraph's
//! text before and after its first `[mask]`. A predictor prompt that gives the text
//! after the mask first and ends with the text before it (the suffix-prefix-middle
//! order of fill-in-the-middle training) makes the answer the plain continuation of
//! running text, the task a language model is trained on, instead of a span whose
//! place the model must first find in the paragraph.
//!
//! `{before_tail}` and `{after_head}` are the last and the first
//! [`WINDOW_WORDS`] words of those two sides. A prompt that repeats the words around
//! the mask just before the answer puts the context that decides the answer's first
//! word and its end (the word that follows the span) a few tokens from where the
//! model writes it, instead of a paragraph away.
//!
//! A model folder may carry its own templates in `prompt_templates.json` (fields left
//! out keep the built-in ones), since a model answers best in the format it was
//! trained on; `pretrain` and `train` write that file into every model folder they
//! export, and `eval`, `pretrain --model` and a new `train` run read it.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::policy::span_rules::MASK_TOKEN;

/// How many words `{before_tail}` and `{after_head}` hold.
pub const WINDOW_WORDS: usize = 4;

/// The file in a model folder that holds the prompt format the model was trained on.
pub const MODEL_TEMPLATES_FILE: &str = "prompt_templates.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptTemplates {
    pub generator_reasoning: String,
    pub generator_direct: String,
    pub predictor_reasoning: String,
    pub predictor_direct: String,
    /// Next-word prediction (the `random-ntp` / `entropy-ntp` baselines): the
    /// paragraph is cut before the word to predict.
    pub next_word_reasoning: String,
    pub next_word_direct: String,
    /// Text before the span in a direct predictor answer, as trained and as scored,
    /// wherever the paragraph has whitespace before the mask: `" "` when the prompt
    /// ends with `{before}`, so that with a byte-level BPE tokenizer the answer's words
    /// are the same tokens as in running text. Answers are compared after trimming,
    /// so the lead never decides a match.
    pub predictor_answer_lead: String,
}

impl Default for PromptTemplates {
    fn default() -> Self {
        Self {
            generator_reasoning: "Choose one or several contiguous words from the paragraph below that can be inferred from the rest of the paragraph and are moderately challenging to predict. Copy them exactly as they appear.\n\nParagraph: {paragraph}\n\nThink step by step first, then put the chosen words in \\mask{}.\n".into(),
            generator_direct: "Choose one or several contiguous words from the paragraph below that can be inferred from the rest of the paragraph and are moderately challenging to predict. Copy them exactly as they appear.\n\nParagraph: {paragraph}\n\nChosen words: \\mask{".into(),
            predictor_reasoning: "In the paragraph below, some words were replaced by [mask]. Find the missing words.\n\nParagraph: {paragraph}\n\nReason step by step, then put the missing words in \\boxed{}.\n".into(),
            predictor_direct: "In the paragraph below, some words were replaced by [mask]. Find the missing words.\n\nParagraph: {paragraph}\n\nMissing words: \\boxed{".into(),
            next_word_reasoning: "Predict the next word of the text below.\n\nText: {paragraph}\n\nReason step by step, then put the next word in \\boxed{}.\n".into(),
            next_word_direct: "Predict the next word of the text below.\n\nText: {paragraph}\n\nNext word: \\boxed{".into(),
            predictor_answer_lead: String::new(),
        }
    }
}

impl PromptTemplates {
    /// `template` with `{paragraph}`, `{before}`, `{after}`, `{before_tail}` and
    /// `{after_head}` substituted (a paragraph without `[mask]` is all `{before}`).
    /// One pass over the template: text put in is never searched for placeholders
    /// again, so a paragraph may contain `{after}`.
    pub fn fill(template: &str, paragraph: &str) -> String {
        let (before, after) = split_at_mask(paragraph);
        let (before, after) = (before.trim_end(), after.trim_start());
        // Longer names first: `{before}` must not match the start of `{before_tail}`.
        let placeholders = [
            ("{paragraph}", paragraph),
            ("{before_tail}", last_words(before, WINDOW_WORDS)),
            ("{after_head}", first_words(after, WINDOW_WORDS)),
            ("{before}", before),
            ("{after}", after),
        ];
        let mut filled = String::with_capacity(template.len() + 2 * paragraph.len());
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            filled.push_str(&rest[..open]);
            rest = &rest[open..];
            match placeholders.iter().find(|(name, _)| rest.starts_with(name)) {
                Some((name, value)) => {
                    filled.push_str(value);
                    rest = &rest[name.len()..];
                }
                None => {
                    filled.push('{');
                    rest = &rest[1..];
                }
            }
        }
        filled.push_str(rest);
        filled
    }

    /// The direct predictor's answer text for `span` hidden in `masked_paragraph`, as
    /// trained and scored: the lead where the paragraph has whitespace before the mask
    /// (or the mask starts it), none where the mask follows a character of a word or a
    /// bracket, then the span and the closing brace.
    pub fn predictor_answer(&self, span: &str, masked_paragraph: &str) -> String {
        let (before, _) = split_at_mask(masked_paragraph);
        let lead = if before.is_empty() || before.ends_with(char::is_whitespace) {
            self.predictor_answer_lead.as_str()
        } else {
            ""
        };
        format!("{lead}{span}}}")
    }

    /// The templates of the model in `dir`: its `prompt_templates.json`, or the
    /// built-in ones when it has none.
    pub fn for_model(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(MODEL_TEMPLATES_FILE);
        if path.exists() {
            Self::from_file(&path)
        } else {
            Ok(Self::default())
        }
    }

    /// The templates to use with the model in `model_dir` (none: a new model): those
    /// of `chosen_file` where given, with the fields it leaves out from the model's,
    /// else the model's own.
    pub fn for_model_or_file(
        model_dir: Option<&Path>,
        chosen_file: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let model = match model_dir {
            Some(dir) => Self::for_model(dir)?,
            None => Self::default(),
        };
        match chosen_file {
            Some(file) => Ok(Self::from_file(file)?.over_model(&model)),
            None => Ok(model),
        }
    }

    /// Templates from a JSON file of the form of `prompt_templates.json`.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read prompt templates", path.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: invalid prompt templates (a JSON object of template strings)",
                path.display()
            )
        })
    }

    /// Writes these templates into the model folder `dir`.
    pub fn save_for_model(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(MODEL_TEMPLATES_FILE);
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("{}: cannot write prompt templates", path.display()))
    }

    /// These templates with every field still at its built-in value taken from
    /// `model_templates`: a configuration's own templates win over the model's. The
    /// answer lead goes with the direct predictor prompt: a configuration with its own
    /// prompt keeps its own lead. (A value equal to the built-in one always means "the
    /// model's", so a configuration cannot force a built-in template onto a model
    /// that has its own.)
    pub fn over_model(self, model_templates: &Self) -> Self {
        // Field by field through the JSON form, so that a new template field needs
        // no change here.
        let fields = |t: &Self| match serde_json::to_value(t) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => unreachable!("templates serialise to a JSON object of strings"),
        };
        let own_prompt = self.predictor_direct != Self::default().predictor_direct;
        let (builtin, model) = (fields(&Self::default()), fields(model_templates));
        let mut merged = fields(&self);
        for (name, value) in merged.iter_mut() {
            let follows_own_prompt = own_prompt && name == "predictor_answer_lead";
            if builtin.get(name) == Some(value) && !follows_own_prompt {
                *value = model[name].clone();
            }
        }
        serde_json::from_value(serde_json::Value::Object(merged))
            .expect("the fields of two templates make templates")
    }
}

/// A paragraph's text before and after its first `[mask]` (all before without one).
fn split_at_mask(paragraph: &str) -> (&str, &str) {
    paragraph.split_once(MASK_TOKEN).unwrap_or((paragraph, ""))
}

/// The last `count` whitespace-separated words of `text` (which ends with a word),
/// as they stand in it.
fn last_words(text: &str, count: usize) -> &str {
    let mut start = text.len();
    for _ in 0..count {
        // The byte after the whitespace character, which may take several bytes
        // (a no-break space takes two).
        let word_start = text[..start]
            .trim_end()
            .char_indices()
            .rfind(|&(_, c)| c.is_whitespace())
            .map_or(0, |(space, c)| space + c.len_utf8());
        if word_start == 0 {
            return text;
        }
        start = word_start;
    }
    &text[start..]
}

/// The first `count` whitespace-separated words of `text` (which starts with a word),
/// as they stand in it.
fn first_words(text: &str, count: usize) -> &str {
    let mut end = 0;
    for _ in 0..count {
        let rest = &text[end..];
        let word_start = end + (rest.len() - rest.trim_start().len());
        match text[word_start..].find(char::is_whitespace) {
            Some(length) => end = word_start + length,
            None => return text,
        }
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_splits_the_paragraph_at_its_first_mask() {
        let template = "A: {after} | B: {before}\\boxed{ | P: {paragraph}";
        assert_eq!(
            PromptTemplates::fill(template, "x y [mask] z [mask] w"),
            "A: z [mask] w | B: x y\\boxed{ | P: x y [mask] z [mask] w"
        );
        // A mask at either end leaves that side empty; no mask: all of it is before.
        assert_eq!(PromptTemplates::fill("{before}|{after}", "[mask] z"), "|z");
        assert_eq!(PromptTemplates::fill("{before}|{after}", "x [mask]"), "x|");
        assert_eq!(PromptTemplates::fill("{before}|{after}", "x y"), "x y|");
        // Text put in is not searched again; other braces stay.
        assert_eq!(
            PromptTemplates::fill("{paragraph} {x} {after", "a {after} [mask] b"),
            "a {after} [mask] b {x} {after"
        );
    }

    #[test]
    fn the_window_holds_the_words_next_to_the_mask() {
        let template = "{before_tail} [mask] {after_head}|{before}";
        assert_eq!(
            PromptTemplates::fill(template, "a b  c d e f [mask] g h\ni j k l"),
            "c d e f [mask] g h\ni j|a b  c d e f"
        );
        // Fewer words than the window: all of them; an empty side stays empty.
        assert_eq!(
            PromptTemplates::fill(template, "x(y [mask], z"),
            "x(y [mask] , z|x(y"
        );
        assert_eq!(PromptTemplates::fill(template, "[mask] z"), " [mask] z|");
        assert_eq!(PromptTemplates::fill(template, "x [mask]"), "x [mask] |x");
        // Whitespace of more than one byte separates words like a space.
        assert_eq!(
            PromptTemplates::fill(template, "a\u{a0}b c d\u{2003}e [mask] f\u{a0}g"),
            "b c d\u{2003}e [mask] f\u{a0}g|a\u{a0}b c d\u{2003}e"
        );
    }

    #[test]
    fn the_answer_lead_stands_for_whitespace_before_the_mask() {
        let templates = PromptTemplates {
            predictor_answer_lead: " ".into(),
            ..PromptTemplates::default()
        };
        assert_eq!(templates.predictor_answer("a b", "x [mask] y"), " a b}");
        assert_eq!(templates.predictor_answer("a", "[mask] y"), " a}");
        // Inside a word or after a bracket the span continues without a space.
        assert_eq!(templates.predictor_answer("on", "fr[mask] y"), "on}");
        assert_eq!(templates.predictor_answer("1789)", "x ([mask]"), "1789)}");
        assert_eq!(
            PromptTemplates::default().predictor_answer("a", "x [mask]"),
            "a}"
        );
    }

    #[test]
    fn over_model_keeps_a_configurations_own_templates() {
        let model = PromptTemplates {
            predictor_direct: "model {before}\\boxed{".into(),
            generator_direct: "model gen".into(),
            predictor_answer_lead: " ".into(),
            ..PromptTemplates::default()
        };
        let own_generator = PromptTemplates {
            generator_direct: "own gen".into(),
            ..PromptTemplates::default()
        };
        let merged = own_generator.over_model(&model);
        assert_eq!(merged.predictor_direct, model.predictor_direct);
        assert_eq!(merged.predictor_answer_lead, " ");
        assert_eq!(merged.generator_direct, "own gen");
        assert_eq!(
            merged.next_word_direct,
            PromptTemplates::default().next_word_direct
        );
        // A configuration's own predictor prompt keeps its own (here built-in) lead.
        let own_prompt = PromptTemplates {
            predictor_direct: "own {paragraph} \\boxed{".into(),
            ..PromptTemplates::default()
        };
        let merged = own_prompt.over_model(&model);
        assert_eq!(merged.predictor_direct, "own {paragraph} \\boxed{");
        assert_eq!(merged.predictor_answer_lead, "");
        assert_eq!(merged.generator_direct, "model gen");
    }

    #[test]
    fn a_model_folder_without_templates_uses_the_built_in_ones() {
        let no_file = std::env::temp_dir().join(format!("no-templates-{}", std::process::id()));
        assert_eq!(
            PromptTemplates::for_model(&no_file).unwrap(),
            PromptTemplates::default()
        );
    }
}
