//! Corpus → paragraphs: the first stage of the pipeline.
//!
//! `reader` turns files of any supported format into documents (articles), with
//! malformed input counted and reported; `paragraphs` applies the segmentation rules;
//! `split` assigns whole articles to train or validation and shuffles with a seed.

pub mod paragraphs;
pub mod reader;
pub mod split;
pub mod stats;
pub mod tokenizer_training;

pub use paragraphs::{Paragraph, ParagraphRules};
pub use reader::{CorpusFormat, CorpusReader, Document, ReadWarnings};
pub use split::{ShuffleBuffer, Split, SplitRule};

use std::collections::VecDeque;
use std::path::PathBuf;

/// Where the paragraphs come from and how they are cut.
#[derive(Debug, Clone)]
pub struct CorpusSpec {
    /// A file or a folder (read recursively, in sorted order).
    pub path: PathBuf,
    /// `None`: detected per file.
    pub format: Option<CorpusFormat>,
    pub text_field: String,
    pub rules: ParagraphRules,
}

impl CorpusSpec {
    pub fn open(&self) -> std::io::Result<ParagraphStream> {
        Ok(ParagraphStream {
            reader: CorpusReader::open(&self.path, self.format.clone(), &self.text_field)?,
            rules: self.rules.clone(),
            pending: VecDeque::new(),
            articles: 0,
        })
    }
}

/// Paragraphs longer than this are skipped and reported: real prose paragraphs are a
/// few kilobytes (the longest line of the shared Wikipedia corpus is 3.8 KB).
pub const MAX_PARAGRAPH_BYTES: usize = 100_000;

/// Paragraphs of a corpus, streamed article by article.
pub struct ParagraphStream {
    reader: CorpusReader,
    rules: ParagraphRules,
    pending: VecDeque<Paragraph>,
    /// Articles that produced at least one paragraph so far.
    pub articles: u64,
}

impl ParagraphStream {
    pub fn warnings(&self) -> &ReadWarnings {
        &self.reader.warnings
    }
}

impl Iterator for ParagraphStream {
    type Item = Paragraph;

    fn next(&mut self) -> Option<Paragraph> {
        while self.pending.is_empty() {
            let document = self.reader.next()?;
            let mut paragraphs = self.rules.paragraphs(&document);
            // A runaway line (a dump without newlines, a binary file) would be one
            // paragraph of millions of words, and tokenizing it takes gigabytes.
            paragraphs.retain(|p| {
                let keep = p.text.len() <= MAX_PARAGRAPH_BYTES;
                if !keep {
                    self.reader.warnings.warn(format!(
                        "{}: paragraph {} skipped: {} bytes (longer than {MAX_PARAGRAPH_BYTES})",
                        p.article_id,
                        p.index,
                        p.text.len()
                    ));
                }
                keep
            });
            if !paragraphs.is_empty() {
                self.articles += 1;
            }
            self.pending.extend(paragraphs);
        }
        self.pending.pop_front()
    }
}
