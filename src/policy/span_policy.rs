//! Span policies: how a paragraph becomes prediction tasks. `pretrainzero` asks the
//! model itself (the generator role); the baselines choose without it, so all of them
//! run through the same loop (DESIGN.md §6).

use crate::kernels::RewardStepBackend;
use rand::Rng;

use super::random_span::random_word_span;
use crate::models::{Decoder, TextTokenizer};
use crate::update::token_logprobs::{response_token_scores, ResponseBatch};

/// Something for the predictor to recover.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionTask {
    pub paragraph: usize,
    /// The text shown to the predictor (masked paragraph, or a prefix for NTP).
    pub context: String,
    pub gold: String,
    /// True for next-word tasks (they use the next-word templates).
    pub next_word: bool,
}

/// `random-span`: `count` uniformly random word spans.
pub fn random_span_tasks(
    paragraph_index: usize,
    paragraph: &str,
    count: usize,
    max_words: usize,
    rng: &mut impl Rng,
) -> Vec<PredictionTask> {
    (0..count)
        .filter_map(|_| random_word_span(paragraph, max_words, rng))
        .map(|m| PredictionTask {
            paragraph: paragraph_index,
            context: m.masked,
            gold: m.span,
            next_word: false,
        })
        .collect()
}

/// Splits a paragraph before word `index` (0-based) into (prefix, next word).
fn cut_before_word(paragraph: &str, index: usize) -> Option<(String, String)> {
    let words: Vec<&str> = paragraph.split_whitespace().collect();
    let word = words
        .get(index)?
        .trim_matches(|c: char| !c.is_alphanumeric());
    if word.is_empty() || index == 0 {
        return None;
    }
    Some((words[..index].join(" "), word.to_string()))
}

/// `random-ntp`: `count` random cut points, predict the next word.
pub fn random_ntp_tasks(
    paragraph_index: usize,
    paragraph: &str,
    count: usize,
    rng: &mut impl Rng,
) -> Vec<PredictionTask> {
    let words = paragraph.split_whitespace().count();
    if words < 2 {
        return Vec::new();
    }
    (0..count)
        .filter_map(|_| cut_before_word(paragraph, rng.random_range(1..words)))
        .map(|(context, gold)| PredictionTask {
            paragraph: paragraph_index,
            context,
            gold,
            next_word: true,
        })
        .collect()
}

/// `entropy-ntp` (RPT-style): cut before words whose first token is among the
/// `top_fraction` highest-entropy positions of the paragraph under the current model.
pub fn entropy_ntp_tasks<B: RewardStepBackend>(
    model: &Decoder<B>,
    tokenizer: &TextTokenizer,
    paragraph_index: usize,
    paragraph: &str,
    count: usize,
    top_fraction: f64,
    rng: &mut impl Rng,
    device: &B::Device,
) -> anyhow::Result<Vec<PredictionTask>> {
    let words: Vec<&str> = paragraph.split_whitespace().collect();
    if words.len() < 2 {
        return Ok(Vec::new());
    }
    // Token ids word by word, so every word start has a known token position.
    let mut ids = Vec::new();
    let mut word_start_token = Vec::with_capacity(words.len());
    for (i, word) in words.iter().enumerate() {
        word_start_token.push(ids.len());
        let piece = if i == 0 {
            word.to_string()
        } else {
            format!(" {word}")
        };
        ids.extend(tokenizer.encode(&piece, false)?);
    }
    // The entropy of the distribution that predicts token t sits at position t − 1.
    let batch = ResponseBatch::<B>::new(&[(&ids[..1], &ids[1..])], device);
    let (_, entropy) = response_token_scores(model, &batch, crate::kernels::RowChunking::default());
    let entropy: Vec<f32> = entropy
        .into_data()
        .convert::<f32>()
        .into_vec()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut candidates: Vec<(f32, usize)> = (1..words.len())
        .map(|w| (entropy[word_start_token[w] - 1], w))
        .collect();
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
    let keep = ((candidates.len() as f64 * top_fraction).ceil() as usize).max(1);
    candidates.truncate(keep);
    Ok((0..count)
        .filter_map(|_| {
            let (_, word) = candidates[rng.random_range(0..candidates.len())];
            cut_before_word(paragraph, word)
        })
        .map(|(context, gold)| PredictionTask {
            paragraph: paragraph_index,
            context,
            gold,
            next_word: true,
        })
        .collect())
}
