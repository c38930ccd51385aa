//! Answer normalisation and exact match (DESIGN.md §4): Unicode NFC, trim, runs of
//! whitespace collapsed to one space, then an exact (case-sensitive unless asked)
//! comparison.

use unicode_normalization::UnicodeNormalization;

pub fn normalize_answer(text: &str, case_insensitive: bool) -> String {
    let nfc: String = text.nfc().collect();
    let collapsed = nfc.split_whitespace().collect::<Vec<_>>().join(" ");
    if case_insensitive {
        collapsed.to_lowercase()
    } else {
        collapsed
    }
}

pub fn exact_match(answer: &str, gold: &str, case_insensitive: bool) -> bool {
    normalize_answer(answer, case_insensitive) == normalize_answer(gold, case_insensitive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_rules() {
        assert!(exact_match("  New \n York ", "New York", false));
        // NFC: e + combining acute equals the precomposed é.
        assert!(exact_match("Cafe\u{301}", "Café", false));
        assert!(!exact_match("new york", "New York", false));
        assert!(exact_match("new york", "New York", true));
        assert!(
            !exact_match("New York.", "New York", false),
            "punctuation counts"
        );
        assert_eq!(normalize_answer("\ta\u{a0} b ", false), "a b");
    }
}
