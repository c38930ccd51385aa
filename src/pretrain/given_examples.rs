//! Predictor examples given in a file instead of drawn from the stream's paragraphs:
//! a masked paragraph and the answer to train, which need not be the hidden words.
//!
//! Self-distillation writes such a file (`perf/distill_answers.py`): there the answer
//! is the model's own language model reading the mask from both sides (the candidate
//! word that best explains the words after it). A predictor answering left to right
//! cannot compute that reading directly, but can be trained to reproduce it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::checkpoint::sha256_of;

/// Where the given examples come from and how many of the stream's paragraphs they
/// replace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GivenExamples {
    /// JSON lines, each an object with the strings `masked` (a paragraph holding
    /// `[mask]`) and `answer`; other fields are ignored.
    pub path: PathBuf,
    /// Fraction of the stream's paragraphs replaced by the next given example. The
    /// file is read in order, and from its start again when it runs out.
    pub fraction: f64,
    /// The file's SHA-256 when the run started: a resumed run refuses a changed file
    /// rather than train on other examples than the ones it counted.
    pub sha256: String,
}

impl GivenExamples {
    /// A new run's setting: the file is read through once (a bad line stops the run
    /// before anything is written) and recorded by absolute path, so that a resumed
    /// run finds it from any directory, and by digest.
    pub fn record(path: &Path, fraction: f64) -> anyhow::Result<Self> {
        read_predictor_examples(path)?;
        Ok(Self {
            path: std::fs::canonicalize(path)
                .with_context(|| format!("{}: cannot resolve", path.display()))?,
            fraction,
            sha256: sha256_of(path)?,
        })
    }

    /// The examples, if the file is still the one the run started with.
    pub fn load(&self) -> anyhow::Result<Vec<PredictorExample>> {
        let now = sha256_of(&self.path)?;
        if now != self.sha256 {
            anyhow::bail!(
                "{}: the predictor examples changed since the run started (SHA-256 {} then, {now} now); restore the file or start a new run",
                self.path.display(),
                self.sha256
            );
        }
        read_predictor_examples(&self.path)
    }
}

/// One line of a given-examples file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PredictorExample {
    /// The paragraph as the predictor sees it, with `[mask]` where words were hidden.
    pub masked: String,
    /// The words the predictor is trained to answer.
    pub answer: String,
}

/// Reads every example of `path`; an error names the file, the line and the problem.
pub fn read_predictor_examples(path: &Path) -> anyhow::Result<Vec<PredictorExample>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the predictor examples", path.display()))?;
    let mut examples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), index + 1);
        let mut example: PredictorExample = serde_json::from_str(line).with_context(|| {
            format!(
                "{}: not a predictor example (a JSON object with the strings `masked` and `answer`)",
                at()
            )
        })?;
        // Single spaces between words, as the corpus reader leaves a paragraph, so that
        // a given example reads like a drawn one.
        example.masked = single_spaced(&example.masked);
        example.answer = single_spaced(&example.answer);
        if !example.masked.contains("[mask]") {
            anyhow::bail!("{}: `masked` holds no [mask]", at());
        }
        if example.answer.trim().is_empty() {
            anyhow::bail!("{}: `answer` is empty", at());
        }
        examples.push(example);
    }
    if examples.is_empty() {
        anyhow::bail!("{}: no predictor example in the file", path.display());
    }
    Ok(examples)
}

fn single_spaced(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str, text: &str) -> anyhow::Result<Vec<PredictorExample>> {
        let path = std::env::temp_dir().join(format!(
            "pretrainzero-given-{name}-{}.jsonl",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        let result = read_predictor_examples(&path);
        std::fs::remove_file(&path).unwrap();
        result
    }

    #[test]
    fn reads_examples_single_spaced_and_ignores_other_fields() {
        let examples = read(
            "good",
            "{\"masked\": \"a [mask]\\u00a0 b\", \"answer\": \"x\", \"gold\": \"y\"}\n\n{\"masked\": \"[mask] c\", \"answer\": \" z\\tw \"}\n",
        )
        .unwrap();
        assert_eq!(
            examples,
            vec![
                PredictorExample {
                    masked: "a [mask] b".into(),
                    answer: "x".into()
                },
                PredictorExample {
                    masked: "[mask] c".into(),
                    answer: "z w".into()
                },
            ]
        );
    }

    #[test]
    fn a_bad_line_is_named_with_its_problem() {
        let error = |name, text| format!("{:#}", read(name, text).unwrap_err());
        let missing = error("missing", "{\"masked\": \"a [mask]\"}\n");
        assert!(
            missing.contains(".jsonl:1: not a predictor example"),
            "{missing}"
        );
        let no_mask = error(
            "no-mask",
            "{\"masked\": \"a [mask]\", \"answer\": \"b\"}\n{\"masked\": \"a b\", \"answer\": \"b\"}\n",
        );
        assert!(
            no_mask.contains(".jsonl:2: `masked` holds no [mask]"),
            "{no_mask}"
        );
        let empty_answer = error(
            "empty-answer",
            "{\"masked\": \"a [mask]\", \"answer\": \" \"}\n",
        );
        assert!(empty_answer.contains("`answer` is empty"), "{empty_answer}");
        let empty_file = error("empty-file", "\n");
        assert!(empty_file.contains("no predictor example"), "{empty_file}");
    }
}
