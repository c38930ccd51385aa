//! Uniformly random word spans: the "Random RLPT" span choice, also used for the
//! cold-start task examples of continued pretraining.

use rand::Rng;

/// A span to hide and the paragraph with it masked.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedParagraph {
    pub span: String,
    pub masked: String,
}

/// Picks `1..=max_words` contiguous words (edge punctuation stripped) and replaces
/// every occurrence by `[mask]`. `None` when no valid span is found in a few tries
/// (e.g. the span occurs 8 times or more, DESIGN.md §3).
pub fn random_word_span(
    paragraph: &str,
    max_words: usize,
    rng: &mut impl Rng,
) -> Option<MaskedParagraph> {
    let words: Vec<&str> = paragraph.split_whitespace().collect();
    if words.len() < 2 {
        return None;
    }
    for _ in 0..8 {
        let len = rng.random_range(1..=max_words.max(1)).min(words.len() - 1);
        let start = rng.random_range(0..=words.len() - len);
        let span = words[start..start + len]
            .join(" ")
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_string();
        if span.is_empty() {
            continue;
        }
        let occurrences = paragraph.matches(span.as_str()).count();
        if occurrences == 0 || occurrences > 7 {
            continue;
        }
        return Some(MaskedParagraph {
            masked: paragraph.replace(span.as_str(), "[mask]"),
            span,
        });
    }
    None
}
