//! Copy-constrained decoding of the generator's span (a departure from the paper, off
//! by default: `policy.generator_copy_constraint`).
//!
//! The paper's generator is a multi-billion-parameter model that copies a span of the
//! paragraph by itself. A small model mostly cannot: sampled freely, it writes words
//! that are not in the paragraph, and the only spans that come out valid are the
//! frequent function words ("the") that occur in every paragraph by chance, which is
//! what the game then collapses onto. Under this constraint, after the direct prompt's
//! `\mask{` each token must continue a copy of the paragraph that starts at a word, and
//! `}` may close the span only at the end of a word, so every span the generator writes
//! is in its paragraph and its job is the one the game rewards: choosing which span.
//! With `reject_stop_word_spans`, a span of only stop words or punctuation cannot be
//! closed either, and with `reject_stop_word_starts` a span cannot start at a stop word.
//!
//! The model is trained on its unconstrained log-probabilities of the sampled tokens
//! (the update recomputes them), as with any constrained decoding in RL.

use std::collections::HashMap;

use super::stop_words::{is_stop_word_span, starts_with_stop_word};
use crate::models::{TextTokenizer, TokenConstraint};

/// The text of every token id, looked up by text.
pub struct TokenTexts {
    /// `None` for tokens that do not decode to text on their own (special tokens, byte
    /// pieces of a multi-byte character).
    texts: Vec<Option<String>>,
    by_text: HashMap<String, Vec<u32>>,
    /// Tokens whose text starts with `}`: they close the span.
    closing: Vec<u32>,
    /// Longest token text, in bytes.
    max_len: usize,
}

impl TokenTexts {
    pub fn new(tokenizer: &TextTokenizer, vocab: usize) -> anyhow::Result<Self> {
        let mut texts = Vec::with_capacity(vocab);
        let mut by_text: HashMap<String, Vec<u32>> = HashMap::new();
        let mut closing = Vec::new();
        let mut max_len = 0;
        for id in 0..vocab as u32 {
            let text = tokenizer.decode(&[id], true)?;
            let usable = !text.is_empty() && !text.contains('\u{fffd}');
            if usable {
                if text.starts_with('}') {
                    closing.push(id);
                } else {
                    max_len = max_len.max(text.len());
                    by_text.entry(text.clone()).or_default().push(id);
                }
            }
            texts.push(usable.then_some(text));
        }
        Ok(Self {
            texts,
            by_text,
            closing,
            max_len,
        })
    }
}

/// Each prompt row copies from its own paragraph.
pub struct ParagraphCopy<'a> {
    pub tokens: &'a TokenTexts,
    /// The paragraph of each prompt row.
    pub paragraphs: Vec<&'a str>,
    /// A span of only stop words or punctuation may not be closed.
    pub content_only: bool,
    /// A span may not start at a stop word.
    pub content_start: bool,
}

impl TokenConstraint for ParagraphCopy<'_> {
    fn allowed(&self, row: usize, generated: &[u32]) -> Option<Vec<u32>> {
        let paragraph = *self.paragraphs.get(row)?;
        let mut copied = String::new();
        for &id in generated {
            // A token the constraint could not have allowed: leave the row free.
            copied.push_str(self.tokens.texts.get(id as usize)?.as_deref()?);
        }
        let mut allowed = Vec::new();
        let mut may_close = false;
        for start in word_starts(paragraph) {
            if !paragraph[start..].starts_with(&copied) {
                continue;
            }
            if self.content_start && starts_with_stop_word(&paragraph[start..]) {
                continue;
            }
            let end = start + copied.len();
            let rest = &paragraph[end..];
            for cut in rest
                .char_indices()
                .map(|(i, _)| i)
                .skip(1)
                .chain(std::iter::once(rest.len()))
                .take_while(|&cut| cut <= self.tokens.max_len)
            {
                let piece = &rest[..cut];
                if copied.is_empty() && piece.starts_with(char::is_whitespace) {
                    break;
                }
                if let Some(ids) = self.tokens.by_text.get(piece) {
                    allowed.extend(ids);
                }
            }
            may_close |= !copied.is_empty()
                && !copied.ends_with(char::is_whitespace)
                && ends_a_word(paragraph, end);
        }
        if may_close && !(self.content_only && is_stop_word_span(&copied)) {
            allowed.extend(&self.tokens.closing);
        }
        allowed.sort_unstable();
        allowed.dedup();
        Some(allowed)
    }
}

/// Byte offsets where a word starts: an alphanumeric character after a character that
/// is not one (or at the start).
fn word_starts(text: &str) -> impl Iterator<Item = usize> + '_ {
    let mut previous_alphanumeric = false;
    text.char_indices().filter_map(move |(i, c)| {
        let starts = c.is_alphanumeric() && !previous_alphanumeric;
        previous_alphanumeric = c.is_alphanumeric();
        starts.then_some(i)
    })
}

/// Whether offset `end` of `text` is the end of a word (the text ends, or the next
/// character is not alphanumeric).
fn ends_a_word(text: &str, end: usize) -> bool {
    text[end..]
        .chars()
        .next()
        .is_none_or(|c| !c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built vocabulary: id → text.
    fn tokens(vocabulary: &[&str]) -> TokenTexts {
        let mut by_text: HashMap<String, Vec<u32>> = HashMap::new();
        let mut closing = Vec::new();
        for (id, text) in vocabulary.iter().enumerate() {
            if text.starts_with('}') {
                closing.push(id as u32);
            } else {
                by_text.entry(text.to_string()).or_default().push(id as u32);
            }
        }
        TokenTexts {
            texts: vocabulary.iter().map(|t| Some(t.to_string())).collect(),
            by_text,
            closing,
            max_len: vocabulary.iter().map(|t| t.len()).max().unwrap(),
        }
    }

    const VOCABULARY: [&str; 11] = [
        "The", " cat", "cat", " sat", "sat", "}", "dog", "ca", "t", " the", "the",
    ];

    fn allowed(copy: &ParagraphCopy<'_>, generated: &[u32]) -> Vec<&'static str> {
        copy.allowed(0, generated)
            .unwrap()
            .into_iter()
            .map(|id| VOCABULARY[id as usize])
            .collect()
    }

    #[test]
    fn only_copies_of_the_paragraph_from_a_word_start_and_closing_at_a_word_end() {
        let vocabulary = tokens(&VOCABULARY);
        let copy = ParagraphCopy {
            tokens: &vocabulary,
            paragraphs: vec!["The cat sat by the cat."],
            content_only: false,
            content_start: false,
        };
        // First token: the start of a word of the paragraph ("t" starts "the"), never
        // with a leading space (" cat"), never a word that is absent ("dog").
        assert_eq!(allowed(&copy, &[]), ["The", "cat", "sat", "ca", "t", "the"]);
        // After "ca": only "t" continues a copy; "ca" is not a word end, so no `}`.
        assert_eq!(allowed(&copy, &[7]), ["t"]);
        // After "cat": the copy goes on with " sat" (first "cat") or ends at a word end
        // (both occurrences).
        assert_eq!(allowed(&copy, &[2]), [" sat", "}"]);
        // After "The": " cat" continues; "The" ends a word.
        assert_eq!(allowed(&copy, &[0]), [" cat", "}"]);
        // Rows the constraint knows nothing about are free.
        assert_eq!(copy.allowed(1, &[]), None);
    }

    #[test]
    fn content_only_refuses_to_close_a_span_of_stop_words() {
        let vocabulary = tokens(&VOCABULARY);
        let copy = ParagraphCopy {
            tokens: &vocabulary,
            paragraphs: vec!["The cat sat by the cat."],
            content_only: true,
            content_start: false,
        };
        assert_eq!(
            allowed(&copy, &[0]),
            [" cat"],
            "\"The\" alone may not close"
        );
        assert_eq!(allowed(&copy, &[0, 1]), [" sat", "}"]);
    }

    #[test]
    fn content_start_refuses_to_start_at_a_stop_word() {
        let vocabulary = tokens(&VOCABULARY);
        let copy = ParagraphCopy {
            tokens: &vocabulary,
            paragraphs: vec!["The cat sat by the cat."],
            content_only: false,
            content_start: true,
        };
        // "The", "the" (and "t", which starts "the") are gone from the first token;
        // "by" is a stop word too but no token copies it.
        assert_eq!(allowed(&copy, &[]), ["cat", "sat", "ca"]);
        assert_eq!(allowed(&copy, &[2]), [" sat", "}"]);
    }
}
