//! Tokenizer training: round trip, declared special tokens, stable task markers.

use pretrainzero::data::tokenizer_training::{train_bpe_tokenizer, END_OF_TEXT, TASK_MARKERS};
use pretrainzero::data::{CorpusSpec, ParagraphRules};
use pretrainzero::models::TextTokenizer;

use crate::common::ScratchDir;

#[test]
fn trained_tokenizer_round_trips_and_keeps_markers_whole() {
    let spec = CorpusSpec {
        path: crate::wikipedia_sample(),
        format: None,
        text_field: "text".into(),
        rules: ParagraphRules::default(),
    };
    let texts: Vec<String> = spec.open().unwrap().take(400).map(|p| p.text).collect();
    let out = ScratchDir::new("bpe");
    train_bpe_tokenizer(texts.clone().into_iter(), 1000, &out.0).unwrap();
    let tokenizer = TextTokenizer::from_file(&out.0.join("tokenizer.json")).unwrap();
    assert_eq!(tokenizer.vocab_size(), 1000);
    assert_eq!(tokenizer.token_to_id(END_OF_TEXT), Some(0));

    for text in texts
        .iter()
        .take(50)
        .chain(std::iter::once(&"Ünïcödé — 東京 🙂".to_string()))
    {
        let ids = tokenizer.encode(text, false).unwrap();
        assert_eq!(&tokenizer.decode(&ids, false).unwrap(), text);
    }
    for marker in TASK_MARKERS {
        let id = tokenizer.token_to_id(marker).unwrap();
        for context in [
            format!("x{marker}y"),
            format!("The {marker} word"),
            format!("{marker}{marker}"),
        ] {
            let ids = tokenizer.encode(&context, false).unwrap();
            assert!(
                ids.contains(&id),
                "{marker} is one token in {context:?}: {ids:?}"
            );
            assert_eq!(tokenizer.decode(&ids, false).unwrap(), context);
        }
    }
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.0.join("tokenizer_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["eos_token"], END_OF_TEXT);
}
