//! Scoring saved responses (`eval --responses FILE.jsonl`), no model needed. One
//! `{"id": …, "response": "…"}` per line; `id` is the item's own id field (a JSON
//! number and its decimal string are the same id) or, for items without one, the
//! item's 0-based line number. Several lines with one id are several samples.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use crate::eval::benchmarks::{id_text, load_benchmark, BenchmarkTask};
use crate::eval::scoring::{score_items, BenchmarkReport};

#[derive(Debug, Clone, PartialEq)]
pub struct SavedResponse {
    pub id: String,
    pub response: String,
    /// 0-based line in the responses file.
    pub line: usize,
}

/// Reads a responses file; a malformed line is an error naming the line.
pub fn read_responses(path: &Path) -> anyhow::Result<Vec<SavedResponse>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let mut responses = Vec::new();
    for (line, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let where_ = || format!("{} line {}", path.display(), line + 1);
        let record: Value = serde_json::from_str(raw).with_context(where_)?;
        let id = record
            .get("id")
            .and_then(id_text)
            .with_context(|| format!("{}: no string or number `id`", where_()))?;
        let response = record
            .get("response")
            .and_then(Value::as_str)
            .with_context(|| format!("{}: no string `response`", where_()))?
            .to_string();
        responses.push(SavedResponse { id, response, line });
    }
    Ok(responses)
}

/// Scores the responses of `responses_path` against the first `limit` records of the
/// benchmark file. Responses for items beyond the limit are ignored; responses for
/// ids that are not in the file at all are listed in `unknown`.
pub fn score_responses(
    task: BenchmarkTask,
    data_path: &Path,
    responses_path: &Path,
    limit: Option<usize>,
    k: usize,
) -> anyhow::Result<BenchmarkReport> {
    let mut data = load_benchmark(task, data_path)?;
    let saved = read_responses(responses_path)?;
    let known_ids: HashSet<String> = data
        .items
        .iter()
        .map(|i| i.id.clone())
        .chain(data.rejected.iter().map(|r| r.id.clone()))
        .collect();
    if let Some(limit) = limit {
        data.keep_first_records(limit);
    }
    let index_of: HashMap<&str, usize> = data
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| (item.id.as_str(), i))
        .collect();
    let mut per_item: Vec<Vec<String>> = vec![Vec::new(); data.items.len()];
    let mut unknown = Vec::new();
    for saved in saved {
        match index_of.get(saved.id.as_str()) {
            Some(&i) => per_item[i].push(saved.response),
            None if known_ids.contains(&saved.id) => {} // beyond --limit or rejected
            None => unknown.push(format!("{} (line {})", saved.id, saved.line + 1)),
        }
    }
    let mut report = score_items(task, &data.items, &per_item, k);
    report.rejected = data.rejected;
    report.unknown = unknown;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_as_numbers_or_strings_and_problems_are_listed() {
        let dir = std::env::temp_dir().join(format!("pz-responses-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("data.jsonl");
        std::fs::write(
            &data,
            [
                r#"{"question_id": 1, "question": "q", "options": ["a","b","c"], "answer": "A", "category": "x"}"#,
                r#"{"question_id": 2, "question": "q", "options": ["a","b","c"], "answer": "B", "category": "x"}"#,
                r#"{"question_id": 3, "question": "q", "options": ["a","b","c"], "answer": "Q"}"#,
                r#"{"question_id": 4, "question": "q", "options": ["a","b","c"], "answer": "C"}"#,
            ]
            .join("\n"),
        )
        .unwrap();
        let responses = dir.join("responses.jsonl");
        std::fs::write(
            &responses,
            [
                r#"{"id": 1, "response": "The answer is (A)"}"#,
                r#"{"id": "1", "response": "The answer is (B)"}"#,
                r#"{"id": 3, "response": "The answer is (A)"}"#,
                r#"{"id": 4, "response": "beyond the limit"}"#,
                r#"{"id": 99, "response": "The answer is (A)"}"#,
            ]
            .join("\n"),
        )
        .unwrap();
        let report =
            score_responses(BenchmarkTask::MmluPro, &data, &responses, Some(3), 1).unwrap();
        assert_eq!(report.scored.len(), 2, "two samples of item 1");
        assert_eq!(report.missing, vec!["2"]);
        assert_eq!(report.unknown, vec!["99 (line 5)"]);
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(report.rejected[0].id, "3");
        assert!((report.summary()[0].mean_at_k - 0.5).abs() < 1e-12);

        std::fs::write(&responses, "{\"id\": 1}\n").unwrap();
        let error =
            score_responses(BenchmarkTask::MmluPro, &data, &responses, None, 1).unwrap_err();
        assert!(format!("{error:#}").contains("line 1"), "{error:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
