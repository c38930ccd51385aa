//! The option letter a response chose on a multiple-choice benchmark, by a cascade of
//! patterns tried in order (the first that matches anywhere wins, and within one
//! pattern the last match in the response counts, since models restate options before
//! concluding):
//!
//! 1. `answer is (X)` / `answer is X` (any case, optional `:`, `*`, `\boxed{`);
//! 2. `Answer: X` / `Answer: (X)`;
//! 3. the last balanced `\boxed{X}` (also `\boxed{(X)}`, `\boxed{\text{X}}`);
//! 4. the last parenthesised letter `(X)`;
//! 5. the last bare capital letter standing alone, except `A` and `I` when followed by
//!    a lowercase word (the article and the pronoun).
//!
//! Only letters of the item's options count (`A`..`J` for ten options).

use crate::policy::parse::last_braced;

/// The chosen option letter, if any pattern finds a valid one.
pub fn extract_choice(response: &str, option_count: usize) -> Option<char> {
    let valid = |c: char| c.is_ascii_uppercase() && ((c as u8 - b'A') as usize) < option_count;
    last_after_phrase(response, "answer is", valid)
        .or_else(|| last_after_phrase(response, "answer:", valid))
        .or_else(|| boxed_letter(response, valid))
        .or_else(|| last_parenthesised(response, valid))
        .or_else(|| last_bare_letter(response, valid))
}

/// The letter right after the last occurrence of `phrase` (ASCII case-insensitive)
/// that is followed, after decoration, by a valid standalone letter.
fn last_after_phrase(text: &str, phrase: &str, valid: impl Fn(char) -> bool) -> Option<char> {
    // ASCII lowercasing keeps byte offsets, so positions in `lower` index `text`.
    let lower = text.to_ascii_lowercase();
    let mut found = None;
    let mut from = 0;
    while let Some(offset) = lower[from..].find(phrase) {
        let after = from + offset + phrase.len();
        if let Some(letter) = letter_after_decoration(&text[after..], &valid) {
            found = Some(letter);
        }
        from = after;
    }
    found
}

/// Skips spaces, `:`, `*` and one opening `(`, `[`, `\boxed{` or `\textbf{`, then
/// reads a valid letter that is not the start of a longer word.
fn letter_after_decoration(text: &str, valid: &impl Fn(char) -> bool) -> Option<char> {
    let mut rest = text.trim_start_matches(|c: char| c.is_whitespace() || c == ':' || c == '*');
    for opener in ["\\boxed{", "\\textbf{", "\\text{", "(", "["] {
        if let Some(stripped) = rest.strip_prefix(opener) {
            rest = stripped.trim_start();
            break;
        }
    }
    let mut chars = rest.chars();
    let letter = chars.next().filter(|&c| valid(c))?;
    match chars.next() {
        Some(next) if next.is_alphanumeric() => None,
        _ => Some(letter),
    }
}

fn boxed_letter(text: &str, valid: impl Fn(char) -> bool) -> Option<char> {
    let content = last_braced(text, "boxed")?;
    let mut inner = content.trim();
    for opener in ["\\text{", "\\textbf{", "\\mathrm{"] {
        if let Some(stripped) = inner.strip_prefix(opener) {
            inner = stripped.strip_suffix('}').unwrap_or(stripped).trim();
        }
    }
    let inner = inner
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(inner)
        .trim();
    let mut chars = inner.chars();
    let letter = chars.next().filter(|&c| valid(c))?;
    // `\boxed{B}` or `\boxed{B. the text of option B}`.
    match chars.next() {
        Some(next) if next.is_alphanumeric() => None,
        _ => Some(letter),
    }
}

fn last_parenthesised(text: &str, valid: impl Fn(char) -> bool) -> Option<char> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .windows(3)
        .rev()
        .find(|w| w[0] == '(' && valid(w[1]) && w[2] == ')')
        .map(|w| w[1])
}

fn last_bare_letter(text: &str, valid: impl Fn(char) -> bool) -> Option<char> {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len()).rev().find_map(|i| {
        let c = chars[i];
        if !valid(c) {
            return None;
        }
        let before_ok = i == 0 || !chars[i - 1].is_alphanumeric();
        let after_ok = chars.get(i + 1).is_none_or(|n| !n.is_alphanumeric());
        // "A cat", "I think": an article or a pronoun, not a choice.
        let starts_phrase = (c == 'A' || c == 'I')
            && chars.get(i + 1) == Some(&' ')
            && chars.get(i + 2).is_some_and(|n| n.is_lowercase());
        (before_ok && after_ok && !starts_phrase).then_some(c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_is_pattern() {
        assert_eq!(extract_choice("so the answer is (C).", 4), Some('C'));
        assert_eq!(extract_choice("The answer is B", 4), Some('B'));
        assert_eq!(extract_choice("THE ANSWER IS: **D**", 4), Some('D'));
        assert_eq!(extract_choice(r"the answer is \boxed{A}", 4), Some('A'));
        // Several candidates: the last conclusion wins.
        assert_eq!(
            extract_choice(
                "First I thought the answer is (A), but the answer is (J).",
                10
            ),
            Some('J')
        );
    }

    #[test]
    fn answer_is_outranks_later_patterns() {
        // `(D)` and a bare `B` come later but the explicit conclusion counts.
        assert_eq!(
            extract_choice("The answer is (C). Option (D) is wrong, B too.", 4),
            Some('C')
        );
    }

    #[test]
    fn answer_colon_pattern() {
        assert_eq!(extract_choice("Reasoning...\nAnswer: B", 4), Some('B'));
        assert_eq!(
            extract_choice("Answer: (d)", 4),
            None,
            "lowercase is no letter"
        );
        assert_eq!(extract_choice("**Answer:** (A)", 4), Some('A'));
    }

    #[test]
    fn boxed_letter_pattern() {
        assert_eq!(extract_choice(r"Hence \boxed{C}.", 4), Some('C'));
        assert_eq!(extract_choice(r"Hence \boxed{\text{(B)}}", 4), Some('B'));
        assert_eq!(extract_choice(r"\boxed{B. Paris}", 4), Some('B'));
        assert_eq!(extract_choice(r"\boxed{42}", 4), None);
    }

    #[test]
    fn parenthesised_and_bare_letters() {
        assert_eq!(
            extract_choice("I pick (B) over (A) and then (C)", 4),
            Some('C')
        );
        assert_eq!(extract_choice("Clearly D", 4), Some('D'));
        // "A cat" is the article; the bare B earlier is the choice.
        assert_eq!(extract_choice("B. A cat sat.", 4), Some('B'));
        // Words starting with option letters are not letters.
        assert_eq!(extract_choice("Because Dogs Can", 4), None);
    }

    #[test]
    fn letters_outside_the_options_do_not_count() {
        assert_eq!(extract_choice("The answer is (E)", 4), None);
        assert_eq!(extract_choice("The answer is (E)", 5), Some('E'));
        // An invalid conclusion falls through to the next pattern.
        assert_eq!(extract_choice("(B) ... the answer is (Z)", 4), Some('B'));
    }

    #[test]
    fn missing_answer() {
        assert_eq!(extract_choice("", 4), None);
        assert_eq!(extract_choice("the cat sat on the mat", 4), None);
        assert_eq!(extract_choice("I think so.", 10), None);
    }
}
