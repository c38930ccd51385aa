//! Diagnostics of the span game, per step: a generator that collapses onto one easy
//! span ("the") shows a falling distinct-span fraction, a rising top-span share and
//! stop-word share, and a predictor-accuracy histogram piling up at 1. A generator
//! that collapses onto one template ("the" + a noun: "the first", "the city", ...)
//! keeps its spans distinct; the share of the most frequent first word shows it. A
//! predictor that collapses onto one guess ("first" whatever the mask) shows a rising
//! share of its most frequent answer.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::policy::stop_words::is_stop_word_span;
use crate::reward::normalize_answer;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpanDiagnostics {
    /// Distinct spans (after answer normalisation) / spans.
    pub distinct_span_fraction: f64,
    /// Share of the spans taken by the most frequent one.
    pub top_span_share: f64,
    /// The most frequent span (ties: the alphabetically first).
    pub top_span: String,
    /// Share of the spans that begin with the most frequent first word.
    pub top_first_word_share: f64,
    /// That first word (ties: the alphabetically first).
    pub top_first_word: String,
    /// Share of all predictor answers (unanswered ones included) taken by the most
    /// frequent answer.
    pub top_answer_share: f64,
    /// That answer (ties: the alphabetically first).
    pub top_answer: String,
    /// Share of spans made only of stop words or punctuation.
    pub stop_word_span_fraction: f64,
    /// `histogram[k]`: spans that `k` of the `G_p` predictor answers got right.
    pub predictor_accuracy_histogram: Vec<usize>,
}

/// Diagnostics of this step's spans, with `correct_answers[i]` (out of `answers_per_span`)
/// the predictor answers that recovered span `i`, and `predicted` all the predictor's
/// answers (`None`: unanswered).
pub fn span_diagnostics(
    spans: &[&str],
    correct_answers: &[usize],
    answers_per_span: usize,
    predicted: &[Option<&str>],
) -> SpanDiagnostics {
    let mut histogram = vec![0; answers_per_span + 1];
    for &k in correct_answers {
        histogram[k.min(answers_per_span)] += 1;
    }
    let mut answer_counts = BTreeMap::<String, usize>::new();
    for answer in predicted.iter().flatten() {
        *answer_counts
            .entry(normalize_answer(answer, false))
            .or_default() += 1;
    }
    let (top_answer, top_answer_count) = most_frequent(&answer_counts);
    let top_answer_share = top_answer_count as f64 / predicted.len().max(1) as f64;
    let top_answer = top_answer.to_string();
    if spans.is_empty() {
        return SpanDiagnostics {
            predictor_accuracy_histogram: histogram,
            top_answer_share,
            top_answer,
            ..SpanDiagnostics::default()
        };
    }
    let mut counts = BTreeMap::<String, usize>::new();
    let mut first_word_counts = BTreeMap::<String, usize>::new();
    for span in spans {
        let normalized = normalize_answer(span, false);
        let first_word = normalized.split(' ').next().unwrap_or("").to_string();
        *first_word_counts.entry(first_word).or_default() += 1;
        *counts.entry(normalized).or_default() += 1;
    }
    let (top_span, top_count) = most_frequent(&counts);
    let (top_first_word, top_first_word_count) = most_frequent(&first_word_counts);
    let n = spans.len() as f64;
    SpanDiagnostics {
        distinct_span_fraction: counts.len() as f64 / n,
        top_span_share: top_count as f64 / n,
        top_span: top_span.to_string(),
        top_first_word_share: top_first_word_count as f64 / n,
        top_first_word: top_first_word.to_string(),
        top_answer_share,
        top_answer,
        stop_word_span_fraction: spans.iter().filter(|s| is_stop_word_span(s)).count() as f64 / n,
        predictor_accuracy_histogram: histogram,
    }
}

/// The most frequent key and its count (ties: the alphabetically first).
fn most_frequent(counts: &BTreeMap<String, usize>) -> (&str, usize) {
    counts.iter().fold(
        ("", 0),
        |best, (key, &n)| if n > best.1 { (key, n) } else { best },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collapsed_game_and_a_diverse_one() {
        let collapsed = span_diagnostics(
            &["the", "the", "The", "river"],
            &[4, 4, 4, 1],
            4,
            &[Some("the"), Some(" the "), None, Some("The")],
        );
        assert_eq!(
            collapsed.distinct_span_fraction,
            3.0 / 4.0,
            "`The` differs from `the` (case-sensitive match)"
        );
        assert_eq!(collapsed.top_span, "the");
        assert_eq!(collapsed.top_span_share, 0.5);
        assert_eq!(collapsed.top_first_word, "the");
        assert_eq!(collapsed.top_first_word_share, 0.5);
        assert_eq!(
            (collapsed.top_answer.as_str(), collapsed.top_answer_share),
            ("the", 0.5),
            "two of four answers are `the` once trimmed; the unanswered one counts"
        );
        assert_eq!(collapsed.stop_word_span_fraction, 0.75);
        assert_eq!(collapsed.predictor_accuracy_histogram, [0, 1, 0, 0, 3]);

        let diverse = span_diagnostics(&["Paris", "1867", "the Thames"], &[0, 2, 1], 2, &[]);
        assert_eq!(diverse.distinct_span_fraction, 1.0);
        assert_eq!(
            diverse.top_span, "1867",
            "ties go to the alphabetically first"
        );
        assert!((diverse.top_span_share - 1.0 / 3.0).abs() < 1e-12);
        assert!((diverse.top_first_word_share - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(diverse.stop_word_span_fraction, 0.0);
        assert_eq!(diverse.predictor_accuracy_histogram, [1, 1, 1]);

        let template = span_diagnostics(
            &["the first", "the city", "the  world", "The war", "Paris"],
            &[0, 0, 0, 0, 0],
            2,
            &[],
        );
        assert_eq!(template.distinct_span_fraction, 1.0);
        assert_eq!(template.top_span_share, 0.2);
        assert_eq!(
            (
                template.top_first_word.as_str(),
                template.top_first_word_share
            ),
            ("the", 0.6),
            "three of five spans begin with `the` (`The` differs)"
        );

        assert_eq!(diverse.top_answer_share, 0.0, "no answers recorded");

        let empty = span_diagnostics(&[], &[], 3, &[None, None]);
        assert_eq!(empty.predictor_accuracy_histogram, [0, 0, 0, 0]);
        assert_eq!(empty.top_span_share, 0.0);
        assert_eq!(empty.top_answer_share, 0.0);
    }
}
