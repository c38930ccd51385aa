//! Paragraph segmentation. Every rule that decides what counts as a paragraph is in
//! this file, applied in this order:
//!
//! 1. Split the document body into candidate paragraphs: one per line for
//!    WikiExtractor/WikiText, runs of non-blank lines (joined by a space) otherwise.
//!    Titles never reach this point (readers drop them); WikiText section headings
//!    become paragraph breaks.
//! 2. Collapse runs of whitespace to one space and trim.
//! 3. Drop list, table and markup debris: lines starting with `*`, `#`, `|`, `!`,
//!    `{`, `}`, `;`, `:`, `<` or `=`.
//! 4. Drop fragments with fewer than `min_words` words — this also removes
//!    WikiExtractor's section headings ("Early life.") — and, when set, paragraphs
//!    longer than `max_words`.
//! 5. Drop paragraphs in which letters are under half of the non-space characters
//!    (tables of numbers, coordinates, leftovers of templates).
//!
//! Each kept paragraph carries its article id and its index among the article's
//! kept paragraphs.

use serde::{Deserialize, Serialize};

use super::reader::Document;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paragraph {
    pub article_id: String,
    /// Index among the kept paragraphs of the article (0-based).
    pub index: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParagraphRules {
    pub min_words: usize,
    pub max_words: Option<usize>,
}

impl Default for ParagraphRules {
    fn default() -> Self {
        Self {
            min_words: 12,
            max_words: None,
        }
    }
}

const DEBRIS_PREFIXES: &[char] = &['*', '#', '|', '!', '{', '}', ';', ':', '<', '='];

impl ParagraphRules {
    pub fn paragraphs(&self, document: &Document) -> Vec<Paragraph> {
        let candidates: Vec<String> = if document.line_per_paragraph {
            document.lines.clone()
        } else {
            document
                .lines
                .split(|line| line.trim().is_empty())
                .filter(|block| !block.is_empty())
                .map(|block| block.join(" "))
                .collect()
        };
        candidates
            .iter()
            .map(|text| collapse_whitespace(text))
            .filter(|text| self.keeps(text))
            .enumerate()
            .map(|(index, text)| Paragraph {
                article_id: document.article_id.clone(),
                index,
                text,
            })
            .collect()
    }

    /// Rules 3–5 on a whitespace-collapsed candidate.
    pub fn keeps(&self, text: &str) -> bool {
        if text.is_empty() || text.starts_with(DEBRIS_PREFIXES) {
            return false;
        }
        let words = text.split(' ').count();
        if words < self.min_words || self.max_words.is_some_and(|max| words > max) {
            return false;
        }
        let visible = text.chars().filter(|c| !c.is_whitespace()).count();
        let letters = text.chars().filter(|c| c.is_alphabetic()).count();
        2 * letters >= visible
    }
}

pub fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Merges consecutive paragraphs of the same article while the merged text stays
/// within `max_tokens` (as counted by `count_tokens`); the merged paragraph keeps
/// the index of its first part. Paragraphs already over the limit pass unchanged.
pub fn pack_neighbours(
    paragraphs: Vec<Paragraph>,
    max_tokens: usize,
    mut count_tokens: impl FnMut(&str) -> usize,
) -> Vec<Paragraph> {
    let mut packed: Vec<(Paragraph, usize)> = Vec::new();
    for paragraph in paragraphs {
        let tokens = count_tokens(&paragraph.text);
        if let Some((last, last_tokens)) = packed.last_mut() {
            if last.article_id == paragraph.article_id {
                let joined = format!("{}\n{}", last.text, paragraph.text);
                let joined_tokens = count_tokens(&joined);
                if joined_tokens <= max_tokens && *last_tokens + tokens <= max_tokens {
                    last.text = joined;
                    *last_tokens = joined_tokens;
                    continue;
                }
            }
        }
        packed.push((paragraph, tokens));
    }
    packed.into_iter().map(|(p, _)| p).collect()
}
