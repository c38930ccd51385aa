//! `eval --responses` on the shared benchmark samples: responses built from the gold
//! answers score 100 %, responses built from shifted answers (the next option letter,
//! the gold number + 1) score 0 %. The gold is read here from the raw JSON fields,
//! independently of the library's loaders.

use std::path::Path;
use std::process::Command;

use pretrainzero::eval::benchmarks::BenchmarkTask;
use pretrainzero::eval::responses::score_responses;
use serde_json::{json, Value};

use crate::common::ScratchDir;
use crate::require_shared;

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn next_letter(letter: &str, option_count: usize) -> String {
    let index = (letter.as_bytes()[0] - b'A') as usize;
    ((b'A' + ((index + 1) % option_count) as u8) as char).to_string()
}

/// (id, gold response, shifted response) per record, in the phrasing models use.
fn responses_for(task: BenchmarkTask, record: &Value, index: usize) -> (Value, String, String) {
    let s = |v: &Value| v.as_str().unwrap().to_string();
    let choice = |letter: String, count: usize| {
        let wrong = next_letter(&letter, count);
        // Vary the phrasing so that several extraction patterns are exercised.
        match index % 3 {
            0 => (
                format!("Let's see. The answer is ({letter})."),
                format!("Let's see. The answer is ({wrong})."),
            ),
            1 => (
                format!("Reasoning...\nAnswer: {letter}"),
                format!("Reasoning...\nAnswer: {wrong}"),
            ),
            _ => (
                format!(r"So it is \boxed{{{letter}}}"),
                format!(r"So it is \boxed{{{wrong}}}"),
            ),
        }
    };
    match task {
        BenchmarkTask::Arc => {
            let choices = record["question"]["choices"].as_array().unwrap();
            let labels: Vec<String> = choices.iter().map(|c| s(&c["label"])).collect();
            let position = labels
                .iter()
                .position(|l| *l == s(&record["answerKey"]))
                .unwrap();
            let letter = ((b'A' + position as u8) as char).to_string();
            let (good, bad) = choice(letter, choices.len());
            (record["id"].clone(), good, bad)
        }
        BenchmarkTask::Mmlu => {
            let (good, bad) = choice(
                s(&record["answer_letter"]),
                record["choices"].as_array().unwrap().len(),
            );
            (record["id"].clone(), good, bad)
        }
        BenchmarkTask::MmluPro => {
            let (good, bad) = choice(
                s(&record["answer"]),
                record["options"].as_array().unwrap().len(),
            );
            (record["question_id"].clone(), good, bad)
        }
        BenchmarkTask::Supergpqa => {
            let (good, bad) = choice(
                s(&record["answer_letter"]),
                record["options"].as_array().unwrap().len(),
            );
            (record["uuid"].clone(), good, bad)
        }
        BenchmarkTask::Gsm8k => {
            let gold = s(&record["final_answer"]);
            let value: f64 = gold.replace(',', "").parse().unwrap();
            let good = if index.is_multiple_of(2) {
                format!("Adding up gives the result.\n#### {gold}")
            } else {
                format!(r"In total \boxed{{{gold}}} units.")
            };
            (record["id"].clone(), good, format!("#### {}", value + 1.0))
        }
        BenchmarkTask::Math500 => {
            let gold = s(&record["answer"]);
            let good = format!(r"Therefore the answer is $\boxed{{{gold}}}$.");
            // Numeric answers shifted by one; the others get a `+1` appended.
            let bad = match gold
                .replace(",\\!", "")
                .replace(',', "")
                .trim()
                .parse::<f64>()
            {
                Ok(value) => format!(r"\boxed{{{}}}", value + 1.0),
                Err(_) => format!(r"\boxed{{{gold}+1}}"),
            };
            (record["unique_id"].clone(), good, bad)
        }
    }
}

const FILES: [(BenchmarkTask, &str, &str); 6] = [
    (BenchmarkTask::Arc, "arc", "eval/arc_challenge.sample.jsonl"),
    (BenchmarkTask::Mmlu, "mmlu", "eval/mmlu.sample.jsonl"),
    (
        BenchmarkTask::MmluPro,
        "mmlu-pro",
        "eval/mmlu_pro.sample.jsonl",
    ),
    (
        BenchmarkTask::Supergpqa,
        "supergpqa",
        "eval/supergpqa.sample.jsonl",
    ),
    (BenchmarkTask::Gsm8k, "gsm8k", "eval/gsm8k.sample.jsonl"),
    (
        BenchmarkTask::Math500,
        "math500",
        "eval/math500.sample.jsonl",
    ),
];

fn write_responses(path: &Path, responses: impl Iterator<Item = (Value, String)>) {
    let lines: Vec<String> = responses
        .map(|(id, response)| json!({"id": id, "response": response}).to_string())
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn gold_responses_score_100_and_shifted_responses_0_on_every_sample() {
    let scratch = ScratchDir::new("eval-responses");
    for (task, name, relative) in FILES {
        let data = require_shared!(relative);
        let built: Vec<(Value, String, String)> = records(&data)
            .iter()
            .enumerate()
            .map(|(i, record)| responses_for(task, record, i))
            .collect();
        let good = scratch.0.join(format!("{name}.good.jsonl"));
        let bad = scratch.0.join(format!("{name}.bad.jsonl"));
        write_responses(
            &good,
            built.iter().map(|(id, g, _)| (id.clone(), g.clone())),
        );
        write_responses(&bad, built.iter().map(|(id, _, b)| (id.clone(), b.clone())));

        let report = score_responses(task, &data, &good, None, 1).unwrap();
        assert!(report.rejected.is_empty(), "{name}: {:?}", report.rejected);
        assert!(
            report.missing.is_empty() && report.unknown.is_empty(),
            "{name}"
        );
        let wrong: Vec<_> = report.scored.iter().filter(|r| !r.correct).collect();
        assert!(
            wrong.is_empty(),
            "{name}: gold responses scored wrong: {wrong:#?}"
        );
        let overall = &report.summary()[0];
        assert_eq!(
            (overall.items, overall.mean_at_k),
            (built.len(), 1.0),
            "{name}"
        );

        let report = score_responses(task, &data, &bad, None, 1).unwrap();
        let right: Vec<_> = report.scored.iter().filter(|r| r.correct).collect();
        assert!(
            right.is_empty(),
            "{name}: shifted responses scored right: {right:#?}"
        );
        assert_eq!(report.summary()[0].items, built.len(), "{name}");
        assert_eq!(report.summary()[0].mean_at_k, 0.0, "{name}");
    }
}

#[test]
fn cli_scores_saved_responses_and_reports_problems() {
    let data = require_shared!("eval/gsm8k.sample.jsonl");
    let scratch = ScratchDir::new("eval-responses-cli");
    let built: Vec<(Value, String, String)> = records(&data)
        .iter()
        .enumerate()
        .map(|(i, record)| responses_for(BenchmarkTask::Gsm8k, record, i))
        .collect();
    // The first 10 items: 2 samples each, one right and one wrong; item 10 has none;
    // one response names an id that is not in the file.
    let responses = scratch.0.join("responses.jsonl");
    write_responses(
        &responses,
        built[..10]
            .iter()
            .flat_map(|(id, good, bad)| [(id.clone(), good.clone()), (id.clone(), bad.clone())])
            .chain([(json!("gsm8k-nonexistent"), "#### 1".to_string())]),
    );
    let out = scratch.0.join("scored.jsonl");
    let run = Command::new(env!("CARGO_BIN_EXE_pretrainzero"))
        .args(["eval", "--task", "gsm8k", "--data"])
        .arg(&data)
        .arg("--responses")
        .arg(&responses)
        .args(["--limit", "11", "--samples", "2", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stdout.contains("| gsm8k | overall | 10 | 20 | 100.0% | 50.00% | 100.00% |"),
        "{stdout}"
    );
    let missing_id = built[10].0.as_str().unwrap();
    assert!(
        stderr.contains(&format!(
            "1 items without a response, not scored: {missing_id}"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("gsm8k-nonexistent (line 21)"), "{stderr}");
    let scored: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(scored.len(), 20);
    for key in ["id", "prompt", "response", "extracted", "gold", "correct"] {
        assert!(scored[0].get(key).is_some(), "{key} in {}", scored[0]);
    }

    // The output file is never overwritten.
    let again = score_gsm8k_responses(&data, &responses, &out);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn an_evaluation_with_no_valid_item_fails_and_leaves_no_output() {
    let scratch = ScratchDir::new("eval-nothing");
    let data = scratch.0.join("bad.jsonl");
    std::fs::write(&data, "{not json\n{\"id\": \"g1\", \"question\": \"q\"}\n").unwrap();
    let responses = scratch.0.join("responses.jsonl");
    std::fs::write(&responses, "").unwrap();
    let out = scratch.0.join("scored.jsonl");
    let run = score_gsm8k_responses(&data, &responses, &out);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(
        stderr.contains("bad.jsonl: no valid item to score"),
        "{stderr}"
    );
    assert!(!out.exists(), "the reserved --out file is removed again");

    // An --out that cannot be created is reported before anything is evaluated.
    let run = score_gsm8k_responses(
        &data,
        &responses,
        &scratch.0.join("no-such-folder/scored.jsonl"),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("cannot create --out"), "{stderr}");
}

/// `eval --task gsm8k --data DATA --responses RESPONSES --out OUT` through the binary.
fn score_gsm8k_responses(data: &Path, responses: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pretrainzero"))
        .args(["eval", "--task", "gsm8k", "--data"])
        .arg(data)
        .arg("--responses")
        .arg(responses)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}
