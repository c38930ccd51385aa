//! Diagnostics of the span game, per step: a generator that collapses onto one easy
//! span ("the") shows a falling distinct-span fraction, a rising top-span share and
//! stop-word share, and a predictor-accuracy histogram piling up at 1.

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
    /// Share of spans made only of stop words or punctuation.
    pub stop_word_span_fraction: f64,
    /// `histogram[k]`: spans that `k` of the `G_p` predictor answers got right.
    pub predictor_accuracy_histogram: Vec<usize>,
}

/// Diagnostics of this step's spans, with `correct_answers[i]` (out of `answers_per_span`)
/// the predictor answers that recovered span `i`.
pub fn span_diagnostics(
    spans: &[&str],
    correct_answers: &[usize],
    answers_per_span: usize,
) -> SpanDiagnostics {
    let mut histogram = vec![0; answers_per_span + 1];
    for &k in correct_answers {
        histogram[k.min(answers_per_span)] += 1;
    }
    if spans.is_empty() {
        return SpanDiagnostics {
            predictor_accuracy_histogram: histogram,
            ..SpanDiagnostics::default()
        };
    }
    let mut counts = BTreeMap::<String, usize>::new();
    for span in spans {
        *counts.entry(normalize_answer(span, false)).or_default() += 1;
    }
    let (top_span, top_count) =
        counts.iter().fold(
            ("", 0),
            |best, (span, &n)| if n > best.1 { (span, n) } else { best },
        );
    let n = spans.len() as f64;
    SpanDiagnostics {
        distinct_span_fraction: counts.len() as f64 / n,
        top_span_share: top_count as f64 / n,
        top_span: top_span.to_string(),
        stop_word_span_fraction: spans.iter().filter(|s| is_stop_word_span(s)).count() as f64 / n,
        predictor_accuracy_histogram: histogram,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collapsed_game_and_a_diverse_one() {
        let collapsed = span_diagnostics(&["the", "the", "The", "river"], &[4, 4, 4, 1], 4);
        assert_eq!(
            collapsed.distinct_span_fraction,
            3.0 / 4.0,
            "`The` differs from `the` (case-sensitive match)"
        );
        assert_eq!(collapsed.top_span, "the");
        assert_eq!(collapsed.top_span_share, 0.5);
        assert_eq!(collapsed.stop_word_span_fraction, 0.75);
        assert_eq!(collapsed.predictor_accuracy_histogram, [0, 1, 0, 0, 3]);

        let diverse = span_diagnostics(&["Paris", "1867", "the Thames"], &[0, 2, 1], 2);
        assert_eq!(diverse.distinct_span_fraction, 1.0);
        assert_eq!(
            diverse.top_span, "1867",
            "ties go to the alphabetically first"
        );
        assert!((diverse.top_span_share - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(diverse.stop_word_span_fraction, 0.0);
        assert_eq!(diverse.predictor_accuracy_histogram, [1, 1, 1]);

        let empty = span_diagnostics(&[], &[], 3);
        assert_eq!(empty.predictor_accuracy_histogram, [0, 0, 0, 0]);
        assert_eq!(empty.top_span_share, 0.0);
    }
}
