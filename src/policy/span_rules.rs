//! Turning the generator's chosen span into a mask (DESIGN.md §3).
//!
//! The span is the last balanced `\mask{...}` of the response, trimmed. It is invalid
//! when empty, equal to the whole paragraph, containing `[mask]`, absent from the
//! paragraph, or present 8 times or more (`max_occurrences = 7`). Partial words are
//! allowed unless `whole_words`. Every occurrence is masked unless
//! `mask_occurrences = "one"` (the paper's OneMask ablation). A departure from the
//! paper, off by default: `reject_stop_word_spans` also rejects spans made only of
//! stop words or punctuation ("the", "of the", ","), which the paper's prompt asks
//! the generator to avoid (it asks for entities) but its reward does not. Also off by
//! default, `reject_stop_word_starts` rejects spans whose first word is a stop word
//! ("the first", "of Paris"): a small generator can otherwise settle on "the" + a noun.

use serde::{Deserialize, Serialize};

use super::parse::last_braced;
use super::random_span::MaskedParagraph;
use super::stop_words::{is_stop_word_span, starts_with_stop_word};

pub const MASK_TOKEN: &str = "[mask]";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskOccurrences {
    All,
    One,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpanRules {
    pub max_occurrences: usize,
    pub whole_words: bool,
    pub mask_occurrences: MaskOccurrences,
    pub max_span_words: Option<usize>,
    pub reject_stop_word_spans: bool,
    pub reject_stop_word_starts: bool,
}

impl Default for SpanRules {
    fn default() -> Self {
        Self {
            max_occurrences: 7,
            whole_words: false,
            mask_occurrences: MaskOccurrences::All,
            max_span_words: None,
            reject_stop_word_spans: false,
            reject_stop_word_starts: false,
        }
    }
}

/// Why a generator response gives no usable mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidSpan {
    NoMaskTag,
    Empty,
    WholeParagraph,
    ContainsMaskToken,
    NotInParagraph,
    TooManyOccurrences,
    NotWholeWords,
    TooManyWords,
    StopWordsOnly,
    StartsWithStopWord,
}

impl SpanRules {
    /// Parses `response` (already including any forced `\mask{` prefix) and masks
    /// `paragraph`.
    pub fn mask_from_response(
        &self,
        paragraph: &str,
        response: &str,
    ) -> Result<MaskedParagraph, InvalidSpan> {
        let span = last_braced(response, "mask").ok_or(InvalidSpan::NoMaskTag)?;
        self.apply(paragraph, span.trim())
    }

    /// Validates `span` against `paragraph` and masks it.
    pub fn apply(&self, paragraph: &str, span: &str) -> Result<MaskedParagraph, InvalidSpan> {
        if span.is_empty() {
            return Err(InvalidSpan::Empty);
        }
        if span == paragraph.trim() {
            return Err(InvalidSpan::WholeParagraph);
        }
        if span.contains(MASK_TOKEN) {
            return Err(InvalidSpan::ContainsMaskToken);
        }
        if self.reject_stop_word_spans && is_stop_word_span(span) {
            return Err(InvalidSpan::StopWordsOnly);
        }
        if self.reject_stop_word_starts && starts_with_stop_word(span) {
            return Err(InvalidSpan::StartsWithStopWord);
        }
        if self
            .max_span_words
            .is_some_and(|max| span.split_whitespace().count() > max)
        {
            return Err(InvalidSpan::TooManyWords);
        }
        let starts: Vec<usize> = paragraph.match_indices(span).map(|(i, _)| i).collect();
        if starts.is_empty() {
            return Err(InvalidSpan::NotInParagraph);
        }
        if starts.len() > self.max_occurrences {
            return Err(InvalidSpan::TooManyOccurrences);
        }
        let starts: Vec<usize> = if self.whole_words {
            let whole: Vec<usize> = starts
                .into_iter()
                .filter(|&s| {
                    is_word_boundary(paragraph, s) && is_word_boundary(paragraph, s + span.len())
                })
                .collect();
            if whole.is_empty() {
                return Err(InvalidSpan::NotWholeWords);
            }
            whole
        } else {
            starts
        };
        let starts = match self.mask_occurrences {
            MaskOccurrences::All => starts,
            MaskOccurrences::One => starts[..1].to_vec(),
        };
        let mut masked = String::with_capacity(paragraph.len());
        let mut cursor = 0;
        for start in starts {
            masked.push_str(&paragraph[cursor..start]);
            masked.push_str(MASK_TOKEN);
            cursor = start + span.len();
        }
        masked.push_str(&paragraph[cursor..]);
        Ok(MaskedParagraph {
            span: span.to_string(),
            masked,
        })
    }
}

/// True when byte `at` of `text` is not inside a word (alphanumeric on both sides).
fn is_word_boundary(text: &str, at: usize) -> bool {
    let before = text[..at].chars().next_back();
    let after = text[at..].chars().next();
    !(before.is_some_and(char::is_alphanumeric) && after.is_some_and(char::is_alphanumeric))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "The cat sat on the mat. The cat slept.";

    #[test]
    fn valid_span_masks_every_occurrence() {
        let m = SpanRules::default()
            .mask_from_response(P, r"I pick \mask{ The cat }")
            .unwrap();
        assert_eq!(m.span, "The cat");
        assert_eq!(m.masked, "[mask] sat on the mat. [mask] slept.");
    }

    #[test]
    fn one_mask_ablation_masks_the_first() {
        let rules = SpanRules {
            mask_occurrences: MaskOccurrences::One,
            ..SpanRules::default()
        };
        assert_eq!(
            rules.apply(P, "The cat").unwrap().masked,
            "[mask] sat on the mat. The cat slept."
        );
    }

    #[test]
    fn partial_words_allowed_unless_whole_words() {
        // "at" occurs inside cat, sat, mat (x2 for cat) = 5 times.
        let partial = SpanRules::default().apply(P, "at").unwrap();
        assert_eq!(
            partial.masked,
            "The c[mask] s[mask] on the m[mask]. The c[mask] slept."
        );
        let whole = SpanRules {
            whole_words: true,
            ..SpanRules::default()
        };
        assert_eq!(whole.apply(P, "at"), Err(InvalidSpan::NotWholeWords));
        assert_eq!(
            whole.apply(P, "mat").unwrap().masked,
            "The cat sat on the [mask]. The cat slept."
        );
    }

    #[test]
    fn stop_word_spans_are_rejected_only_when_asked() {
        let strict = SpanRules {
            reject_stop_word_spans: true,
            ..SpanRules::default()
        };
        for span in ["the", "The", "on the", "."] {
            assert_eq!(
                strict.apply(P, span),
                Err(InvalidSpan::StopWordsOnly),
                "{span}"
            );
            assert!(
                SpanRules::default().apply(P, span).is_ok(),
                "{span}: the paper's rule"
            );
        }
        assert_eq!(
            strict.apply(P, "the mat").unwrap().masked,
            "The cat sat on [mask]. The cat slept."
        );
    }

    #[test]
    fn spans_starting_with_a_stop_word_are_rejected_only_when_asked() {
        let strict = SpanRules {
            reject_stop_word_starts: true,
            ..SpanRules::default()
        };
        for span in ["the mat", "The cat", "on the mat", "the"] {
            assert_eq!(
                strict.apply(P, span),
                Err(InvalidSpan::StartsWithStopWord),
                "{span}"
            );
            assert!(SpanRules::default().apply(P, span).is_ok(), "{span}");
        }
        assert_eq!(
            strict.apply(P, "cat sat").unwrap().masked,
            "The [mask] on the mat. The cat slept."
        );
    }

    #[test]
    fn invalid_spans() {
        let rules = SpanRules::default();
        assert_eq!(
            rules.mask_from_response(P, "no tag"),
            Err(InvalidSpan::NoMaskTag)
        );
        assert_eq!(
            rules.mask_from_response(P, r"\mask{  }"),
            Err(InvalidSpan::Empty)
        );
        assert_eq!(rules.apply(P, P), Err(InvalidSpan::WholeParagraph));
        assert_eq!(rules.apply(P, "dog"), Err(InvalidSpan::NotInParagraph));
        assert_eq!(
            rules.apply("a [mask] b", "[mask]"),
            Err(InvalidSpan::ContainsMaskToken)
        );
        let eight = "x ".repeat(8);
        assert_eq!(
            rules.apply(&eight, "x"),
            Err(InvalidSpan::TooManyOccurrences)
        );
        let seven = "x ".repeat(7) + "y";
        assert!(
            rules.apply(&seven, "x").is_ok(),
            "7 occurrences are allowed"
        );
        let short = SpanRules {
            max_span_words: Some(1),
            ..SpanRules::default()
        };
        assert_eq!(short.apply(P, "The cat"), Err(InvalidSpan::TooManyWords));
    }

    #[test]
    fn unicode_spans() {
        let p = "Zürich liegt am Zürichsee, nicht in Genève.";
        let m = SpanRules::default()
            .mask_from_response(p, r"\mask{Genève}")
            .unwrap();
        assert_eq!(m.masked, "Zürich liegt am Zürichsee, nicht in [mask].");
        let whole = SpanRules {
            whole_words: true,
            ..SpanRules::default()
        };
        // "Zürich" as a whole word occurs once; inside "Zürichsee" it is partial.
        assert_eq!(
            whole.apply(p, "Zürich").unwrap().masked,
            "[mask] liegt am Zürichsee, nicht in Genève."
        );
    }
}
