//! `spans.jsonl`: every span a run's policy chose, one line per span, with how the
//! predictor group did on it.
//!
//! The metrics say how hard the spans were for the policy being trained, which moves
//! with it; scoring the logged spans again with a model that does not move (the base
//! model) tells whether the generator's choices themselves get harder over training.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::config::SpanPolicyKind;
use super::step::SpanRecord;

pub const SPANS_FILE: &str = "spans.jsonl";

/// One line of `spans.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanLogRow {
    pub step: usize,
    pub policy: SpanPolicyKind,
    pub span: SpanRecord,
}

/// The rows of a `spans.jsonl` file; a line that is not a row is an error naming the
/// file and the line.
pub fn read_span_log(path: &Path) -> anyhow::Result<Vec<SpanLogRow>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the span log", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).with_context(|| {
                format!(
                    "{}: line {}: not a span-log row ({{\"step\", \"policy\", \"span\"}})",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_and_a_bad_line_is_named() {
        let row = SpanLogRow {
            step: 3,
            policy: SpanPolicyKind::Pretrainzero,
            span: SpanRecord {
                context: "The [mask] sat.".into(),
                gold: "cat".into(),
                next_word: false,
                correct: 2,
                answers: 2,
                predicted: vec![Some("cat".into()), None],
            },
        };
        let dir = std::env::temp_dir().join(format!("span-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(SPANS_FILE);
        let line = serde_json::to_string(&row).unwrap();
        assert!(line.contains("\"policy\":\"pretrainzero\""), "{line}");
        std::fs::write(&path, format!("{line}\n\n{line}\n")).unwrap();
        assert_eq!(read_span_log(&path).unwrap(), vec![row.clone(), row]);
        std::fs::write(&path, format!("{line}\n{{\"step\": 1}}\n")).unwrap();
        let error = format!("{:#}", read_span_log(&path).unwrap_err());
        assert!(error.contains("spans.jsonl: line 2"), "{error}");
        // Logs written before the answers were recorded still read.
        let older = r#"{"step":1,"policy":"random-span","span":{"context":"c","gold":"g","next_word":false,"correct":0,"answers":8}}"#;
        std::fs::write(&path, format!("{older}\n")).unwrap();
        assert!(read_span_log(&path).unwrap()[0].span.predicted.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
