//! The Qwen3 tokenizer reproduces the reference encodings of HF `tokenizers`.

use pretrainzero::models::TextTokenizer;

use crate::require_shared;

#[test]
fn qwen3_tokenizer_matches_reference_encodings() {
    let dir = require_shared!("tokenizers/qwen3");
    let tokenizer = TextTokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    let lines = std::fs::read_to_string(dir.join("reference_encodings.jsonl")).unwrap();
    let mut checked = 0;
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = record["text"].as_str().unwrap();
        let expected: Vec<u32> = record["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let ids = tokenizer.encode(text, false).unwrap();
        assert_eq!(ids, expected, "encoding of {text:?}");
        assert_eq!(
            tokenizer.decode(&ids, false).unwrap(),
            text,
            "byte-level BPE decodes back"
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} reference lines");
}
