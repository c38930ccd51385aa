//! The generator and predictor prompt templates (DESIGN.md §2). Plain text, no chat
//! template, since the policies are base models. `{paragraph}` is substituted.
//!
//! The *direct* variants end with a forced prefix (`\mask{` / `\boxed{`) so that the
//! completion is the span itself followed by `}`; they serve small models that cannot
//! reason first. The *reasoning* variants ask for thinking before the answer.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptTemplates {
    pub generator_reasoning: String,
    pub generator_direct: String,
    pub predictor_reasoning: String,
    pub predictor_direct: String,
    /// Next-word prediction (the `random-ntp` / `entropy-ntp` baselines): the
    /// paragraph is cut before the word to predict.
    pub next_word_reasoning: String,
    pub next_word_direct: String,
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
        }
    }
}

impl PromptTemplates {
    pub fn fill(template: &str, paragraph: &str) -> String {
        template.replace("{paragraph}", paragraph)
    }
}
