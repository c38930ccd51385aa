//! The reasoning benchmarks of the paper's evaluation (MMLU-Pro, SuperGPQA, MMLU,
//! ARC, GSM8K, MATH-500): reading their JSONL files into one item type, and the
//! zero-shot chain-of-thought prompts. Field names per task are in docs/EVAL.md.
//!
//! Items whose gold answer cannot be read are kept aside as `RejectedItem`s with a
//! reason, so that a report can list them instead of silently scoring fewer items.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use crate::eval::numeric::{format_number, gsm8k_gold, parse_number};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BenchmarkTask {
    MmluPro,
    Supergpqa,
    Mmlu,
    Arc,
    Gsm8k,
    Math500,
}

impl BenchmarkTask {
    pub fn name(self) -> &'static str {
        match self {
            Self::MmluPro => "mmlu-pro",
            Self::Supergpqa => "supergpqa",
            Self::Mmlu => "mmlu",
            Self::Arc => "arc",
            Self::Gsm8k => "gsm8k",
            Self::Math500 => "math500",
        }
    }

    /// The field holding an item's own id; items without it are known by line number.
    fn id_field(self) -> &'static str {
        match self {
            Self::MmluPro => "question_id",
            Self::Supergpqa => "uuid",
            Self::Math500 => "unique_id",
            Self::Mmlu | Self::Arc | Self::Gsm8k => "id",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Gold {
    /// The correct option letter (`A` = first option).
    Choice { letter: char },
    /// A GSM8K number.
    Number { value: f64 },
    /// A MATH answer in LaTeX, compared after normalisation.
    Math { answer: String },
}

impl Gold {
    pub fn text(&self) -> String {
        match self {
            Gold::Choice { letter } => letter.to_string(),
            Gold::Number { value } => format_number(*value),
            Gold::Math { answer } => answer.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchmarkItem {
    /// The item's id field as text (a JSON number is written in decimal), or its
    /// 0-based line number when it has none.
    pub id: String,
    /// 0-based line of the data file.
    pub line: usize,
    pub question: String,
    /// Option texts, `A` first; empty for the open-answer tasks.
    pub options: Vec<String>,
    pub gold: Gold,
    /// Subject / category / field, for the per-category table.
    pub category: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RejectedItem {
    pub id: String,
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct BenchmarkData {
    pub items: Vec<BenchmarkItem>,
    pub rejected: Vec<RejectedItem>,
}

impl BenchmarkData {
    /// Keeps the first `limit` records of the file (scored or rejected, in file order).
    pub fn keep_first_records(&mut self, limit: usize) {
        let mut lines: Vec<usize> = self.items.iter().map(|i| i.line).collect();
        lines.extend(self.rejected.iter().map(|r| r.line));
        lines.sort_unstable();
        if let Some(&cutoff) = lines.get(limit) {
            self.items.retain(|i| i.line < cutoff);
            self.rejected.retain(|r| r.line < cutoff);
        }
    }
}

/// Reads a benchmark JSONL file (blank lines skipped but counted in line numbers).
pub fn load_benchmark(task: BenchmarkTask, path: &Path) -> anyhow::Result<BenchmarkData> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let mut data = BenchmarkData::default();
    let mut first_line_of_id: HashMap<String, usize> = HashMap::new();
    for (line, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let record: Value = match serde_json::from_str(raw) {
            Ok(value) => value,
            Err(e) => {
                data.rejected.push(RejectedItem {
                    id: line.to_string(),
                    line,
                    reason: format!("not JSON: {e}"),
                });
                continue;
            }
        };
        let id = record
            .get(task.id_field())
            .and_then(id_text)
            .unwrap_or_else(|| line.to_string());
        if let Some(first) = first_line_of_id.insert(id.clone(), line) {
            data.rejected.push(RejectedItem {
                id,
                line,
                reason: format!("duplicate id (first on line {first})"),
            });
            continue;
        }
        match parse_item(task, &record) {
            Ok((question, options, gold, category)) => data.items.push(BenchmarkItem {
                id,
                line,
                question,
                options,
                gold,
                category,
            }),
            Err(reason) => data.rejected.push(RejectedItem { id, line, reason }),
        }
    }
    Ok(data)
}

/// An id as text: strings as they are, numbers in decimal.
pub fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

type ParsedItem = (String, Vec<String>, Gold, Option<String>);

fn parse_item(task: BenchmarkTask, record: &Value) -> Result<ParsedItem, String> {
    let text = |field: &str| -> Result<String, String> {
        record
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("missing string field `{field}`"))
    };
    let optional = |field: &str| {
        record
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match task {
        BenchmarkTask::Mmlu => {
            let options = string_list(record, "choices")?;
            let index = record
                .get("answer")
                .and_then(Value::as_u64)
                .ok_or("missing integer field `answer`")? as usize;
            let letter = letter_of(index, options.len())?;
            check_letter(optional("answer_letter"), letter)?;
            Ok((
                text("question")?,
                options,
                Gold::Choice { letter },
                optional("subject"),
            ))
        }
        BenchmarkTask::MmluPro => {
            let options = string_list(record, "options")?;
            let letter = single_letter(&text("answer")?, options.len())?;
            if let Some(index) = record.get("answer_index").and_then(Value::as_u64) {
                if letter_of(index as usize, options.len()) != Ok(letter) {
                    return Err(format!(
                        "`answer` {letter} disagrees with `answer_index` {index}"
                    ));
                }
            }
            Ok((
                text("question")?,
                options,
                Gold::Choice { letter },
                optional("category"),
            ))
        }
        BenchmarkTask::Supergpqa => {
            let options = string_list(record, "options")?;
            let answer_text = optional("answer");
            let letter = match optional("answer_letter") {
                Some(letter) => single_letter(&letter, options.len())?,
                None => {
                    let answer = answer_text
                        .as_deref()
                        .ok_or("no `answer_letter` nor `answer`")?;
                    let index = options
                        .iter()
                        .position(|o| o == answer)
                        .ok_or("`answer` is none of the options")?;
                    letter_of(index, options.len())?
                }
            };
            if let Some(answer) = &answer_text {
                if options[(letter as u8 - b'A') as usize] != *answer {
                    return Err(format!(
                        "`answer_letter` {letter} is not the option `answer`"
                    ));
                }
            }
            let category = optional("field").or_else(|| optional("discipline"));
            Ok((
                text("question")?,
                options,
                Gold::Choice { letter },
                category,
            ))
        }
        BenchmarkTask::Arc => {
            let question = record.get("question").ok_or("missing field `question`")?;
            let stem = question
                .get("stem")
                .and_then(Value::as_str)
                .ok_or("missing string field `question.stem`")?;
            let choices = question
                .get("choices")
                .and_then(Value::as_array)
                .ok_or("missing list field `question.choices`")?;
            let mut options = Vec::new();
            let mut labels = Vec::new();
            for choice in choices {
                let option = choice.get("text").and_then(Value::as_str);
                let label = choice.get("label").and_then(Value::as_str);
                match (option, label) {
                    (Some(option), Some(label)) => {
                        options.push(option.to_string());
                        labels.push(label.to_string());
                    }
                    _ => return Err("a choice without `text` or `label`".into()),
                }
            }
            // Some ARC items label options 1-4; the prompt always shows letters by
            // position, and the gold is the letter at the answer key's position.
            let key = text("answerKey")?;
            let index = labels
                .iter()
                .position(|l| *l == key)
                .ok_or_else(|| format!("`answerKey` {key} is none of the labels"))?;
            let letter = letter_of(index, options.len())?;
            let id = optional("id").unwrap_or_default();
            let category = id.split_once('_').map(|(source, _)| source.to_string());
            Ok((stem.to_string(), options, Gold::Choice { letter }, category))
        }
        BenchmarkTask::Gsm8k => {
            let solution = text("answer")?;
            let value = match gsm8k_gold(&solution) {
                Some(value) => value,
                None => optional("final_answer")
                    .as_deref()
                    .and_then(parse_number)
                    .ok_or("no number after `####` in `answer` nor in `final_answer`")?,
            };
            Ok((text("question")?, Vec::new(), Gold::Number { value }, None))
        }
        BenchmarkTask::Math500 => {
            let answer = text("answer")?;
            if answer.trim().is_empty() {
                return Err("empty `answer`".into());
            }
            Ok((
                text("problem")?,
                Vec::new(),
                Gold::Math { answer },
                optional("subject"),
            ))
        }
    }
}

fn string_list(record: &Value, field: &str) -> Result<Vec<String>, String> {
    let list = record
        .get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("missing list field `{field}`"))?;
    let options: Vec<String> = list
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("`{field}` holds a non-string"))?;
    Ok(options)
}

fn letter_of(index: usize, option_count: usize) -> Result<char, String> {
    if !(2..=26).contains(&option_count) {
        return Err(format!("{option_count} options (2 to 26 supported)"));
    }
    if index >= option_count {
        return Err(format!(
            "answer index {index} out of {option_count} options"
        ));
    }
    Ok((b'A' + index as u8) as char)
}

fn single_letter(text: &str, option_count: usize) -> Result<char, String> {
    let mut chars = text.trim().chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_uppercase() => {
            letter_of((c as u8 - b'A') as usize, option_count)
        }
        _ => Err(format!("answer `{text}` is not one option letter")),
    }
}

fn check_letter(stated: Option<String>, letter: char) -> Result<(), String> {
    match stated {
        Some(stated) if stated.trim() != letter.to_string() => Err(format!(
            "`answer_letter` {stated} disagrees with the answer index ({letter})"
        )),
        _ => Ok(()),
    }
}

/// The zero-shot chain-of-thought prompt of an item. Plain text, no chat template
/// (the policies are base models, as in the training prompts).
pub fn prompt(task: BenchmarkTask, item: &BenchmarkItem) -> String {
    match task {
        BenchmarkTask::Gsm8k | BenchmarkTask::Math500 => format!(
            "Solve the following math problem. Think step by step, then put the final answer in \\boxed{{}}.\n\nProblem: {}\n\nSolution: Let's think step by step.",
            item.question.trim()
        ),
        _ => {
            let subject = item
                .category
                .as_deref()
                .filter(|_| task != BenchmarkTask::Arc)
                .map(|c| format!(" about {}", c.replace('_', " ")))
                .unwrap_or_default();
            let last = (b'A' + item.options.len() as u8 - 1) as char;
            let mut text = format!(
                "The following is a multiple choice question{subject}. Think step by step, then finish with \"The answer is (X)\" where X is the letter of the correct option (A to {last}).\n\nQuestion: {}\nOptions:\n",
                item.question.trim()
            );
            for (i, option) in item.options.iter().enumerate() {
                text.push_str(&format!("({}) {}\n", (b'A' + i as u8) as char, option.trim()));
            }
            text.push_str("\nAnswer: Let's think step by step.");
            text
        }
    }
}

/// Where a base model that starts the next exercise has finished this one.
pub const STOP_STRINGS: [&str; 2] = ["\nQuestion:", "\nProblem:"];

#[cfg(test)]
mod tests {
    use super::*;

    fn load_lines(task: BenchmarkTask, lines: &[&str]) -> BenchmarkData {
        let dir =
            std::env::temp_dir().join(format!("pz-bench-{}-{}", task.name(), std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data.jsonl");
        std::fs::write(&path, lines.join("\n")).unwrap();
        let data = load_benchmark(task, &path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        data
    }

    #[test]
    fn bad_gold_is_rejected_with_a_reason() {
        let data = load_lines(
            BenchmarkTask::MmluPro,
            &[
                r#"{"question_id": 7, "question": "q", "options": ["a","b"], "answer": "B", "category": "law"}"#,
                r#"{"question_id": 8, "question": "q", "options": ["a","b"], "answer": "C"}"#,
                r#"{"question_id": 9, "question": "q", "options": ["a","b"], "answer": "A", "answer_index": 1}"#,
                "",
                "{broken",
                r#"{"question_id": 7, "question": "q", "options": ["a","b"], "answer": "A"}"#,
            ],
        );
        assert_eq!(data.items.len(), 1);
        assert_eq!(data.items[0].id, "7");
        assert_eq!(data.items[0].gold, Gold::Choice { letter: 'B' });
        let reasons: Vec<(&str, usize)> = data
            .rejected
            .iter()
            .map(|r| (r.id.as_str(), r.line))
            .collect();
        assert_eq!(reasons, vec![("8", 1), ("9", 2), ("4", 4), ("7", 5)]);
        assert!(data.rejected[1].reason.contains("answer_index"));
        assert!(data.rejected[3].reason.contains("duplicate"));
    }

    #[test]
    fn arc_numeric_labels_become_letters() {
        let data = load_lines(
            BenchmarkTask::Arc,
            &[
                r#"{"id": "NYSED_1", "question": {"stem": "s", "choices": [{"text": "x", "label": "1"}, {"text": "y", "label": "2"}, {"text": "z", "label": "3"}]}, "answerKey": "3"}"#,
            ],
        );
        assert_eq!(data.items[0].gold, Gold::Choice { letter: 'C' });
        assert_eq!(data.items[0].category.as_deref(), Some("NYSED"));
        let text = prompt(BenchmarkTask::Arc, &data.items[0]);
        assert!(text.contains("(C) z\n"), "{text}");
        assert!(text.contains("(A to C)"), "{text}");
    }

    #[test]
    fn gsm8k_gold_and_items_without_ids() {
        let data = load_lines(
            BenchmarkTask::Gsm8k,
            &[
                r#"{"question": "q", "answer": "work\n#### 1,500"}"#,
                r#"{"question": "q", "answer": "no marker", "final_answer": "$7"}"#,
                r#"{"question": "q", "answer": "no marker"}"#,
            ],
        );
        let golds: Vec<(&str, String)> = data
            .items
            .iter()
            .map(|i| (i.id.as_str(), i.gold.text()))
            .collect();
        assert_eq!(
            golds,
            vec![("0", "1500".to_string()), ("1", "7".to_string())]
        );
        assert_eq!(data.rejected.len(), 1);
        assert_eq!(data.rejected[0].id, "2");
    }
}
