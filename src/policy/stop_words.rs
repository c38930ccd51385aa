//! English function words: a span made only of these (or of punctuation) says
//! nothing about the paragraph's content, which is what the paper's generator prompt
//! asks for ("entities ... key information"). Used by the game diagnostics.

/// Lower-case English function words (articles, pronouns, prepositions,
/// conjunctions, auxiliaries, common adverbs).
pub const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "either",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "however",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "may",
    "me",
    "might",
    "more",
    "most",
    "must",
    "my",
    "myself",
    "neither",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "same",
    "shall",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "thus",
    "to",
    "too",
    "under",
    "until",
    "up",
    "upon",
    "us",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "whether",
    "which",
    "while",
    "who",
    "whom",
    "whose",
    "why",
    "will",
    "with",
    "within",
    "without",
    "would",
    "yet",
    "you",
    "your",
    "yours",
];

/// Whether every word of `span` is a stop word or pure punctuation (an empty span
/// counts as such).
pub fn is_stop_word_span(span: &str) -> bool {
    span.split_whitespace().all(|word| {
        let core = word.trim_matches(|c: char| !c.is_alphanumeric());
        core.is_empty()
            || STOP_WORDS
                .binary_search(&core.to_lowercase().as_str())
                .is_ok()
    })
}

/// Whether the first word of `text` (up to the first whitespace) is a stop word or pure
/// punctuation ("the first", "(of Paris"); false for an empty text.
pub fn starts_with_stop_word(text: &str) -> bool {
    text.split_whitespace()
        .next()
        .is_some_and(is_stop_word_span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn spans_of_function_words_and_punctuation_only() {
        for span in ["the", "The", "of the", ",", "in (the)", "it is", "", " . "] {
            assert!(is_stop_word_span(span), "{span:?}");
        }
        for span in ["Paris", "the river", "1867", "of Wales", "the 3"] {
            assert!(!is_stop_word_span(span), "{span:?}");
        }
    }
}
