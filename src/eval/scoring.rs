//! Scoring responses of a benchmark: the extracted answer and its correctness per
//! response, and the summary over items — mean@k (= the unbiased pass@1) and pass@k
//! (Chen et al. 2021: 1 − C(n−c, k) / C(n, k) for n samples with c correct) — overall
//! and per category.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::eval::benchmarks::{BenchmarkItem, BenchmarkTask, Gold, RejectedItem};
use crate::eval::choice::extract_choice;
use crate::eval::math_answer::math_equal;
use crate::eval::numeric::{extract_gsm8k, numbers_equal, parse_number};
use crate::policy::parse::last_braced;

/// The answer a response gives and whether it is the gold one.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub extracted: Option<String>,
    pub correct: bool,
}

pub fn judge(item: &BenchmarkItem, response: &str) -> Judgement {
    let (extracted, correct) = match &item.gold {
        Gold::Choice { letter } => {
            let choice = extract_choice(response, item.options.len());
            (choice.map(String::from), choice == Some(*letter))
        }
        Gold::Number { value } => {
            let answer = extract_gsm8k(response);
            let correct = answer
                .as_deref()
                .and_then(parse_number)
                .is_some_and(|v| numbers_equal(v, *value));
            (answer, correct)
        }
        Gold::Math { answer } => {
            let predicted = last_braced(response, "boxed");
            let correct = predicted.as_deref().is_some_and(|p| math_equal(p, answer));
            (predicted, correct)
        }
    };
    Judgement { extracted, correct }
}

/// One scored response: a line of the per-item output JSONL.
#[derive(Debug, Clone, Serialize)]
pub struct ScoredResponse {
    pub id: String,
    /// 0-based sample index within the item.
    pub sample: usize,
    pub category: Option<String>,
    pub prompt: String,
    pub response: String,
    pub extracted: Option<String>,
    pub gold: String,
    pub correct: bool,
}

/// Everything a benchmark run found: the scored responses, and what could not be
/// scored (rejected gold data, items without responses, responses without items).
#[derive(Debug, Clone, Serialize)]
pub struct BenchmarkReport {
    pub task: BenchmarkTask,
    /// The k of pass@k.
    pub k: usize,
    pub scored: Vec<ScoredResponse>,
    pub rejected: Vec<RejectedItem>,
    /// Ids of items that got no response.
    pub missing: Vec<String>,
    /// Ids (with the response file's line) of responses that match no item.
    pub unknown: Vec<String>,
    /// Ids of items with fewer than k responses (their pass@k is pass@n).
    pub short: Vec<String>,
}

/// One row of the summary table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    /// `overall` or the category name.
    pub name: String,
    pub items: usize,
    pub responses: usize,
    /// Fraction of responses with an extracted answer.
    pub answered: f64,
    /// Mean accuracy over all samples of all items (= unbiased pass@1).
    pub mean_at_k: f64,
    pub pass_at_k: f64,
}

/// Scores `responses[i]` (the samples of `items[i]`); items with no samples are
/// recorded as missing.
pub fn score_items(
    task: BenchmarkTask,
    items: &[BenchmarkItem],
    responses: &[Vec<String>],
    k: usize,
) -> BenchmarkReport {
    let mut report = BenchmarkReport {
        task,
        k: k.max(1),
        scored: Vec::new(),
        rejected: Vec::new(),
        missing: Vec::new(),
        unknown: Vec::new(),
        short: Vec::new(),
    };
    for (item, samples) in items.iter().zip(responses) {
        if samples.is_empty() {
            report.missing.push(item.id.clone());
            continue;
        }
        if samples.len() < report.k {
            report.short.push(item.id.clone());
        }
        let prompt = crate::eval::benchmarks::prompt(task, item);
        for (sample, response) in samples.iter().enumerate() {
            let Judgement { extracted, correct } = judge(item, response);
            report.scored.push(ScoredResponse {
                id: item.id.clone(),
                sample,
                category: item.category.clone(),
                prompt: prompt.clone(),
                response: response.clone(),
                extracted,
                gold: item.gold.text(),
                correct,
            });
        }
    }
    report
}

impl BenchmarkReport {
    /// The overall row, then one row per category (sorted by name) when items have
    /// categories.
    pub fn summary(&self) -> Vec<SummaryRow> {
        let mut tallies: Vec<ItemTally> = Vec::new();
        let mut last_id: Option<&str> = None;
        for response in &self.scored {
            if last_id != Some(response.id.as_str()) {
                tallies.push(ItemTally {
                    category: response.category.clone(),
                    ..ItemTally::default()
                });
                last_id = Some(&response.id);
            }
            let tally = tallies.last_mut().expect("pushed above");
            tally.samples += 1;
            tally.correct += response.correct as usize;
            tally.answered += response.extracted.is_some() as usize;
        }
        let mut rows = vec![self.row("overall", tallies.iter())];
        let mut categories: BTreeMap<&str, Vec<&ItemTally>> = BTreeMap::new();
        for tally in &tallies {
            if let Some(category) = &tally.category {
                categories.entry(category).or_default().push(tally);
            }
        }
        for (name, tallies) in categories {
            rows.push(self.row(name, tallies.into_iter()));
        }
        rows
    }

    fn row<'a>(&self, name: &str, tallies: impl Iterator<Item = &'a ItemTally>) -> SummaryRow {
        let (mut items, mut responses, mut answered, mut mean, mut pass) = (0, 0, 0, 0.0, 0.0);
        for tally in tallies {
            items += 1;
            responses += tally.samples;
            answered += tally.answered;
            mean += tally.correct as f64 / tally.samples as f64;
            pass += pass_at_k(tally.samples, tally.correct, self.k);
        }
        let per_item = |total: f64| {
            if items == 0 {
                0.0
            } else {
                total / items as f64
            }
        };
        SummaryRow {
            name: name.to_string(),
            items,
            responses,
            answered: if responses == 0 {
                0.0
            } else {
                answered as f64 / responses as f64
            },
            mean_at_k: per_item(mean),
            pass_at_k: per_item(pass),
        }
    }
}

/// The responses of one item (consecutive in `scored`).
#[derive(Default)]
struct ItemTally {
    category: Option<String>,
    samples: usize,
    correct: usize,
    answered: usize,
}

/// Unbiased pass@k of one item with `n` samples of which `correct` are right:
/// 1 − C(n−c, k)/C(n, k), computed as a product to stay finite. With n < k the
/// estimator is undefined; it falls back to pass@n (any correct sample).
pub fn pass_at_k(n: usize, correct: usize, k: usize) -> f64 {
    if correct == 0 {
        return 0.0;
    }
    if n < k || n - correct < k {
        return 1.0;
    }
    let all_wrong: f64 = (n - correct + 1..=n)
        .map(|i| 1.0 - k as f64 / i as f64)
        .product();
    1.0 - all_wrong
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_at_k_matches_the_binomial_formula() {
        // n = 5, c = 2, k = 2: 1 − C(3,2)/C(5,2) = 1 − 3/10.
        assert!((pass_at_k(5, 2, 2) - 0.7).abs() < 1e-12);
        // k = 1 is the fraction correct.
        assert!((pass_at_k(4, 1, 1) - 0.25).abs() < 1e-12);
        assert_eq!(pass_at_k(4, 0, 4), 0.0);
        assert_eq!(pass_at_k(4, 1, 4), 1.0);
        // n = 8, c = 1, k = 4: 1 − C(7,4)/C(8,4) = 1 − 35/70.
        assert!((pass_at_k(8, 1, 4) - 0.5).abs() < 1e-12);
    }

    fn item(id: &str, category: &str, letter: char) -> BenchmarkItem {
        BenchmarkItem {
            id: id.into(),
            line: 0,
            question: "q".into(),
            options: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            gold: Gold::Choice { letter },
            category: Some(category.into()),
        }
    }

    #[test]
    fn summary_overall_and_per_category() {
        let items = vec![
            item("1", "law", 'A'),
            item("2", "law", 'B'),
            item("3", "math", 'C'),
            item("4", "math", 'D'),
        ];
        let responses = vec![
            vec![
                "The answer is (A)".to_string(),
                "The answer is (B)".to_string(),
            ],
            vec!["The answer is (C)".to_string(), "nothing".to_string()],
            vec![
                "The answer is (C)".to_string(),
                "The answer is (C)".to_string(),
            ],
            vec![],
        ];
        let report = score_items(BenchmarkTask::MmluPro, &items, &responses, 2);
        assert_eq!(report.missing, vec!["4"]);
        let rows = report.summary();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["overall", "law", "math"]);
        let overall = &rows[0];
        assert_eq!((overall.items, overall.responses), (3, 6));
        assert!((overall.answered - 5.0 / 6.0).abs() < 1e-12);
        // Per item mean: 0.5, 0, 1.
        assert!((overall.mean_at_k - 0.5).abs() < 1e-12);
        // pass@2: 1, 0, 1.
        assert!((overall.pass_at_k - 2.0 / 3.0).abs() < 1e-12);
        assert!((rows[1].mean_at_k - 0.25).abs() < 1e-12);
        assert_eq!(rows[2].pass_at_k, 1.0);
    }

    #[test]
    fn judge_each_gold_kind() {
        let mut math = item("m", "algebra", 'A');
        math.options.clear();
        math.gold = Gold::Math {
            answer: r"\frac{1}{2}".into(),
        };
        assert!(judge(&math, r"so \boxed{0.5}.").correct);
        assert!(
            !judge(&math, "the answer is 0.5").correct,
            "MATH needs a boxed answer"
        );
        let mut gsm = math.clone();
        gsm.gold = Gold::Number { value: 1500.0 };
        let judged = judge(&gsm, "That is $1,500 in total.");
        assert_eq!(judged.extracted.as_deref(), Some("1500"));
        assert!(judged.correct);
        assert!(!judge(&gsm, "#### 1501").correct);
    }
}
