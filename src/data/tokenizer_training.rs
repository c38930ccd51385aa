//! Training a byte-level BPE tokenizer on corpus paragraphs with the HuggingFace
//! `tokenizers` crate, written as a `tokenizer.json` the model loader reads.
//!
//! Declared tokens: `<|endoftext|>` (end of sequence and padding, id 0, special) and
//! the task markers `[mask]`, `\mask{`, `\boxed{` as added tokens, so that each is
//! always one token whatever surrounds it (and decodes back to itself).

use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::byte_level::ByteLevel as ByteLevelProcessor;
use tokenizers::{AddedToken, TokenizerBuilder};

pub const END_OF_TEXT: &str = "<|endoftext|>";
/// Markers of the PretrainZero task formats (DESIGN.md §2).
pub const TASK_MARKERS: [&str; 3] = ["[mask]", "\\mask{", "\\boxed{"];

/// Trains on `texts` and writes `tokenizer.json` and `tokenizer_config.json` in `out_dir`.
pub fn train_bpe_tokenizer(
    texts: impl Iterator<Item = String> + Send,
    vocab_size: usize,
    out_dir: &Path,
) -> anyhow::Result<()> {
    if vocab_size < 300 {
        anyhow::bail!("--vocab-size must be at least 300 (256 bytes + special tokens + merges)");
    }
    // The task markers are added after training, so the final size is `vocab_size`.
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size - TASK_MARKERS.len())
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut tokenizer = TokenizerBuilder::new()
        .with_model(BPE::default())
        .with_normalizer(Some(NFC))
        .with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)))
        .with_post_processor(Some(ByteLevelProcessor::default().trim_offsets(false)))
        .with_decoder(Some(ByteLevelDecoder::default()))
        .build()
        .map_err(|e| anyhow::anyhow!("building tokenizer: {e}"))?;
    tokenizer
        .train(&mut trainer, texts)
        .map_err(|e| anyhow::anyhow!("training tokenizer: {e}"))?;
    tokenizer
        .add_tokens(TASK_MARKERS.iter().map(|m| AddedToken::from(*m, false)))
        .map_err(|e| anyhow::anyhow!("adding task markers: {e}"))?;

    std::fs::create_dir_all(out_dir)?;
    let path = out_dir.join("tokenizer.json");
    tokenizer
        .save(&path, false)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let config = serde_json::json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": END_OF_TEXT,
        "pad_token": END_OF_TEXT,
        "bos_token": null,
        "add_bos_token": false,
        "model_max_length": 2048,
        "clean_up_tokenization_spaces": false,
    });
    std::fs::write(
        out_dir.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&config)?,
    )?;
    Ok(())
}
