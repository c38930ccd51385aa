//! Each reader on fixtures written here, good and malformed.

use std::io::Write;

use pretrainzero::data::{CorpusFormat, CorpusReader, CorpusSpec, ParagraphRules};

use crate::common::ScratchDir;

const LONG_A: &str = "The river rises in the northern hills and flows south through three counties before it reaches the sea near the old harbour town.";
const LONG_B: &str = "Its valley was settled early, and the mills built along its banks in the eighteenth century made the region wealthy for a time.";

fn rules() -> ParagraphRules {
    ParagraphRules {
        min_words: 8,
        max_words: None,
    }
}

fn read_all(
    path: &std::path::Path,
    format: Option<CorpusFormat>,
) -> (Vec<pretrainzero::data::Document>, CorpusReader) {
    let mut reader = CorpusReader::open(path, format, "text").unwrap();
    let docs: Vec<_> = reader.by_ref().collect();
    (docs, reader)
}

#[test]
fn wikiextractor_documents_headings_and_debris() {
    let dir = ScratchDir::new("wikiextractor");
    let text = format!(
        "<doc id=\"7\" url=\"http://x/7\" title=\"River\">\nRiver\n\n{LONG_A}\nGeography.\n* a list item that is long enough to pass the word count rule easily\n{LONG_B}\n</doc>\n\
         <doc id=\"8\" url=\"http://x/8\" title=\"Hill\">\nHill\n{LONG_B}\n</doc>\n"
    );
    std::fs::write(dir.0.join("wiki_00"), text).unwrap();
    let (docs, reader) = read_all(&dir.0, None);
    assert_eq!(reader.warnings.count, 0, "{:?}", reader.warnings.messages);
    assert_eq!(docs.len(), 2);
    assert_eq!(
        (docs[0].article_id.as_str(), docs[0].title.as_deref()),
        ("7", Some("River"))
    );
    let paragraphs = rules().paragraphs(&docs[0]);
    // The title line, the heading "Geography." (too short) and the list item are dropped.
    let texts: Vec<&str> = paragraphs.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(texts, vec![LONG_A, LONG_B]);
    assert_eq!(
        (paragraphs[1].article_id.as_str(), paragraphs[1].index),
        ("7", 1)
    );
}

#[test]
fn truncated_doc_invalid_utf8_and_empty_file_are_counted() {
    let dir = ScratchDir::new("malformed");
    let mut bytes = format!("<doc id=\"1\" url=\"\" title=\"A\">\nA\n{LONG_A}\n").into_bytes();
    bytes.extend_from_slice(b"bad \xff\xfe bytes\n");
    bytes.extend_from_slice(
        format!("</doc>\n<doc id=\"2\" url=\"\" title=\"B\">\nB\n{LONG_B}\n").as_bytes(),
    );
    std::fs::write(dir.0.join("a_truncated"), bytes).unwrap();
    std::fs::write(dir.0.join("b_empty"), "").unwrap();
    let (docs, reader) = read_all(&dir.0, Some(CorpusFormat::WikiExtractor));
    assert_eq!(docs.len(), 1, "only the closed document survives");
    assert_eq!(
        docs[0].lines,
        vec![LONG_A.to_string()],
        "the invalid line is skipped"
    );
    let messages = reader.warnings.messages.join("\n");
    assert_eq!(reader.warnings.count, 3, "{messages}");
    assert!(
        messages.contains("a_truncated:4: invalid UTF-8"),
        "{messages}"
    );
    assert!(
        messages.contains("a_truncated:6: <doc> opened here is never closed"),
        "{messages}"
    );
    assert!(messages.contains("b_empty: no documents"), "{messages}");
}

#[test]
fn wikitext_articles_and_sections() {
    let dir = ScratchDir::new("wikitext");
    let text = format!(
        " = Robert Boulter = \n\n {LONG_A} \n\n = = Career = = \n\n Boulter was born in 1980 @-@ ish and he played football for a local club for several years . \n\n = Second Article = \n\n {LONG_B} \n"
    );
    std::fs::write(dir.0.join("wiki.test.raw"), text).unwrap();
    let (docs, reader) = read_all(&dir.0.join("wiki.test.raw"), None);
    assert_eq!(reader.warnings.count, 0);
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].article_id, "Robert Boulter");
    let paragraphs = rules().paragraphs(&docs[0]);
    assert_eq!(paragraphs.len(), 2);
    assert!(
        paragraphs[1].text.contains("1980-ish"),
        "WikiText escapes undone: {}",
        paragraphs[1].text
    );
    assert_eq!(rules().paragraphs(&docs[1])[0].text, LONG_B);
}

#[test]
fn plain_text_and_gzip() {
    let dir = ScratchDir::new("plain");
    // LONG_A broken over two lines at a space.
    let cut = LONG_A[..60].rfind(' ').unwrap();
    let text = format!("{}\n{}\n\n\n{LONG_B}\n", &LONG_A[..cut], &LONG_A[cut + 1..]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    std::fs::write(dir.0.join("notes.txt.gz"), gz.finish().unwrap()).unwrap();
    let (docs, _) = read_all(&dir.0, None);
    assert_eq!(docs.len(), 1);
    let paragraphs = rules().paragraphs(&docs[0]);
    let texts: Vec<&str> = paragraphs.iter().map(|p| p.text.as_str()).collect();
    // Lines of one block are joined; the blank lines separate paragraphs.
    assert_eq!(texts, vec![LONG_A, LONG_B]);
}

#[test]
fn jsonl_with_custom_field_and_bad_lines() {
    let dir = ScratchDir::new("jsonl");
    let lines = [
        serde_json::json!({"id": "a1", "body": format!("{LONG_A}\n\n{LONG_B}")}).to_string(),
        "{not json".to_string(),
        serde_json::json!({"id": "a2", "text": "no body field"}).to_string(),
        serde_json::json!({"id": 3, "body": LONG_B}).to_string(),
    ];
    std::fs::write(dir.0.join("corpus.jsonl"), lines.join("\n")).unwrap();
    let spec = CorpusSpec {
        path: dir.0.join("corpus.jsonl"),
        format: Some(CorpusFormat::Jsonl {
            text_field: "body".into(),
        }),
        text_field: "body".into(),
        rules: rules(),
    };
    let mut stream = spec.open().unwrap();
    let paragraphs: Vec<_> = stream.by_ref().collect();
    assert_eq!(paragraphs.len(), 3);
    assert_eq!(
        (paragraphs[1].article_id.as_str(), paragraphs[1].index),
        ("a1", 1)
    );
    assert_eq!(paragraphs[2].article_id, "3");
    let messages = stream.warnings().messages.join("\n");
    assert_eq!(stream.warnings().count, 2, "{messages}");
    assert!(
        messages.contains("corpus.jsonl:2: invalid JSON"),
        "{messages}"
    );
    assert!(
        messages.contains("corpus.jsonl:3: no string field `body`"),
        "{messages}"
    );
}

#[test]
fn missing_corpus_is_an_error_naming_it() {
    let error = CorpusReader::open(std::path::Path::new("/no/such/corpus"), None, "text")
        .err()
        .unwrap();
    assert!(error.to_string().contains("/no/such/corpus"));
}

#[test]
fn a_runaway_paragraph_is_skipped_and_reported() {
    let dir = ScratchDir::new("runaway");
    // A 50,000-word "paragraph" (about 250 KB, one line) between two real ones.
    let runaway = vec!["word"; 50_000].join(" ");
    std::fs::write(
        dir.0.join("corpus.txt"),
        format!("{LONG_A}\n\n{runaway}\n\n{LONG_B}\n"),
    )
    .unwrap();
    let spec = CorpusSpec {
        path: dir.0.join("corpus.txt"),
        format: None,
        text_field: "text".into(),
        rules: rules(),
    };
    let mut stream = spec.open().unwrap();
    let texts: Vec<String> = stream.by_ref().map(|p| p.text).collect();
    assert_eq!(texts, [LONG_A, LONG_B]);
    let messages = stream.warnings().messages.join("\n");
    assert_eq!(stream.warnings().count, 1, "{messages}");
    assert!(
        messages.contains("paragraph 1 skipped: 249999 bytes (longer than 100000)"),
        "{messages}"
    );
}
