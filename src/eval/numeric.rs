//! GSM8K answers: numbers in free text, with thousands separators and currency signs
//! ignored. The gold is the number after `#### ` in the reference solution; the
//! prediction is the number after the last `####` of the response if there is one,
//! else the value of the last `\boxed{}`, else the last number of the response.

use crate::eval::math_answer;
use crate::policy::parse::last_braced;

/// Relative tolerance of numeric equality (GSM8K answers are integers or short
/// decimals, so this only absorbs `0.1 + 0.2`-style float noise; 2880001 is not
/// 2880000).
const RELATIVE_TOLERANCE: f64 = 1e-9;

/// Every number in `text`, in order, as canonical strings (`-1234.5`): an optional
/// minus sign not glued to a preceding word, digits with `,` separators (dropped), an
/// optional fractional part. A sentence-final `.` is not a decimal point.
pub fn numbers_in(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut numbers = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let negative = i > 0 && chars[i - 1] == '-' && (i < 2 || !chars[i - 2].is_alphanumeric());
        let mut number = String::from(if negative { "-" } else { "" });
        let mut seen_point = false;
        while i < chars.len() {
            let c = chars[i];
            let next_is_digit = chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
            if c.is_ascii_digit() {
                number.push(c);
            } else if c == ',' && next_is_digit && !seen_point {
                // Thousands separator: dropped.
            } else if c == '.' && next_is_digit && !seen_point {
                seen_point = true;
                number.push('.');
            } else {
                break;
            }
            i += 1;
        }
        numbers.push(number);
    }
    numbers
}

/// The value of `text` if it is one number (surrounding `$`, spaces, a trailing `.`
/// and thousands separators allowed), e.g. `$1,234.50`.
pub fn parse_number(text: &str) -> Option<f64> {
    let cleaned: String = text
        .trim()
        .trim_end_matches('.')
        .chars()
        .filter(|&c| c != ',' && c != '$' && !c.is_whitespace())
        .collect();
    let cleaned = cleaned.strip_prefix('\\').unwrap_or(&cleaned); // `\$` leaves a `\`
    if cleaned.is_empty() || !cleaned.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    cleaned.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The gold number of a GSM8K reference solution: what follows the last `####`.
pub fn gsm8k_gold(solution: &str) -> Option<f64> {
    let (_, after) = solution.rsplit_once("####")?;
    parse_number(after)
}

/// The predicted number of a response, as canonical text, by the cascade above.
pub fn extract_gsm8k(response: &str) -> Option<String> {
    if let Some((_, after)) = response.rsplit_once("####") {
        if let Some(first) = numbers_in(after).into_iter().next() {
            return Some(first);
        }
    }
    if let Some(boxed) = last_braced(response, "boxed") {
        if let Some(value) = math_answer::numeric_value(&math_answer::normalize(&boxed)) {
            return Some(format_number(value));
        }
        if let Some(last) = numbers_in(&boxed).pop() {
            return Some(last);
        }
    }
    numbers_in(response).pop()
}

pub fn numbers_equal(a: f64, b: f64) -> bool {
    (a - b).abs() <= RELATIVE_TOLERANCE * a.abs().max(b.abs()).max(1.0)
}

/// `15` for integral values, otherwise the shortest round-trip decimal.
pub fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_with_separators_signs_and_sentence_ends() {
        assert_eq!(
            numbers_in("She paid $1,200.50 for 3 items, -4 left. Total: 15."),
            vec!["1200.50", "3", "-4", "15"]
        );
        // A hyphen inside a word or range is not a minus sign.
        assert_eq!(
            numbers_in("pages 10-12 of COVID-19"),
            vec!["10", "12", "19"]
        );
        assert_eq!(numbers_in("1,2,3"), vec!["123"]);
        assert!(numbers_in("no digits here").is_empty());
    }

    #[test]
    fn gold_after_hashes() {
        assert_eq!(gsm8k_gold("... so 9 + 6 = 15.\n#### 15"), Some(15.0));
        assert_eq!(gsm8k_gold("#### 1,000"), Some(1000.0));
        assert_eq!(gsm8k_gold("#### -3.5"), Some(-3.5));
        assert_eq!(gsm8k_gold("#### $40"), Some(40.0));
        assert_eq!(gsm8k_gold("no marker 15"), None);
        assert_eq!(gsm8k_gold("#### fifteen"), None);
    }

    #[test]
    fn prediction_cascade() {
        // `####` wins over a later number and over a boxed value.
        assert_eq!(
            extract_gsm8k(r"\boxed{7} #### 1,234 dollars, not 5").as_deref(),
            Some("1234")
        );
        // Then the last boxed value, whatever the numbers after it.
        assert_eq!(
            extract_gsm8k(r"So \boxed{\$18} in 3 days").as_deref(),
            Some("18")
        );
        assert_eq!(
            extract_gsm8k(r"\boxed{\frac{1}{2}}").as_deref(),
            Some("0.5")
        );
        assert_eq!(
            extract_gsm8k(r"\boxed{12 \text{ apples}}").as_deref(),
            Some("12")
        );
        // Then the last number.
        assert_eq!(
            extract_gsm8k("3 + 4 = 7, times 2 is 14.").as_deref(),
            Some("14")
        );
        assert_eq!(extract_gsm8k("I do not know"), None);
        // A `####` without a number falls through.
        assert_eq!(extract_gsm8k("#### ? I said 9").as_deref(), Some("9"));
    }

    #[test]
    fn numeric_equality() {
        assert!(numbers_equal(parse_number("1,000").unwrap(), 1000.0));
        assert!(numbers_equal(parse_number("$18.90").unwrap(), 18.9));
        assert!(numbers_equal(parse_number("15.").unwrap(), 15.0));
        assert!(!numbers_equal(15.0, 16.0));
        assert!(!numbers_equal(0.5, 0.50001));
        assert!(!numbers_equal(2_880_001.0, 2_880_000.0));
        assert!(numbers_equal(0.1 + 0.2, 0.3));
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("$"), None);
        assert_eq!(parse_number("12 apples"), None);
    }
}
