//! Train paragraphs → token ids → fixed-length training sequences.
//!
//! Per epoch the train-split paragraphs are shuffled through a seeded buffer; each
//! paragraph becomes its tokens plus `<|endoftext|>`, and the concatenation is cut
//! into chunks of `seq_len + 1` (inputs and shifted targets). A fraction of the
//! paragraphs is replaced by a task example in the direct formats of DESIGN.md §2
//! with a uniformly random 1–3-word span — the small-model analogue of the paper's
//! cold start (it ran 100 steps of random masking on SmolLM3), so that a small base
//! model knows the formats before RL. Task examples are cut like plain text unless
//! [`TaskMix::whole_examples`] keeps each inside one sequence. Another fraction of
//! the plain paragraphs can be written twice (a window of their words, then the same
//! words again) to teach the model to copy from its context.
//!
//! Every token carries a flag saying whether predicting it counts in the loss. Plain
//! paragraphs count everywhere; a task example counts everywhere too, or, with
//! [`TaskLoss::Answer`], only on its answer (the span, the closing `}` and the
//! end-of-text token): supervised fine-tuning on the formats, where the instruction
//! and the paragraph the model already reads as plain text would otherwise be most of
//! the gradient.
//!
//! Predictor examples given in a file (see [`super::given_examples`]) can replace a
//! fraction of the paragraphs; each is written like a drawn predictor example, with
//! the file's answer in place of the hidden words.
//!
//! The position in the stream (epoch, paragraphs consumed, given examples used,
//! leftover tokens) is plain data, so a checkpoint can resume exactly where it
//! stopped.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::data::{CorpusSpec, Paragraph, ShuffleBuffer, Split, SplitRule};
use crate::models::TextTokenizer;
use crate::policy::prompts::PromptTemplates;
use crate::policy::random_span::random_word_span;

use super::given_examples::PredictorExample;
use super::task_mix::{TaskLoss, TaskMix, REPEAT_WINDOW_WORDS};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamPosition {
    pub epoch: u64,
    /// Paragraphs taken from this epoch's shuffled order.
    pub paragraphs_consumed: u64,
    /// Tokens produced but not yet emitted in a chunk.
    pub carry: Vec<u32>,
    /// Whether each carried token is a loss target. Checkpoints written before the
    /// flags existed have none here: every token of theirs counted.
    #[serde(default)]
    pub carry_scored: Vec<bool>,
    /// Given predictor examples written so far (all epochs).
    #[serde(default)]
    pub given_consumed: u64,
}

/// `seq_len + 1` tokens (inputs and shifted targets) and, per token, whether
/// predicting it from the tokens before counts in the loss (the first flag belongs
/// to a token that is only an input).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenChunk {
    pub tokens: Vec<u32>,
    pub scored: Vec<bool>,
}

impl TokenChunk {
    /// Plain text: every prediction counts.
    pub fn scored_everywhere(tokens: Vec<u32>) -> Self {
        let scored = vec![true; tokens.len()];
        Self { tokens, scored }
    }

    /// How many of the chunk's targets (tokens after the first) count.
    pub fn scored_targets(&self) -> usize {
        self.scored[1..].iter().filter(|&&s| s).count()
    }
}

/// A piece of training text and whether its tokens count in the loss.
struct TextPiece {
    text: String,
    scored: bool,
}

/// What one paragraph contributes to the stream.
struct TrainingText {
    pieces: Vec<TextPiece>,
    /// A task example (prompt, then answer), not plain text.
    task_example: bool,
}

/// Token ids and their loss flags: a tokenized text and its end-of-text, or a part
/// of one.
struct Tokenized {
    ids: Vec<u32>,
    scored: Vec<bool>,
}

pub struct PackedTokenStream<'a> {
    corpus: CorpusSpec,
    split: SplitRule,
    tokenizer: &'a TextTokenizer,
    eos: u32,
    seq_len: usize,
    shuffle_buffer: usize,
    seed: u64,
    task_mix: TaskMix,
    templates: PromptTemplates,
    given: Option<GivenStream>,
    position: StreamPosition,
    epoch_paragraphs: Option<EpochParagraphs>,
}

/// Given predictor examples and the fraction of paragraphs they replace.
struct GivenStream {
    fraction: f64,
    examples: Vec<PredictorExample>,
}

/// One epoch's shuffled train paragraphs.
struct EpochParagraphs {
    stream: crate::data::ParagraphStream,
    buffer: ShuffleBuffer<Paragraph>,
    drained: Option<std::vec::IntoIter<Paragraph>>,
    split: SplitRule,
}

impl Iterator for EpochParagraphs {
    type Item = Paragraph;

    fn next(&mut self) -> Option<Paragraph> {
        if self.drained.is_none() {
            for paragraph in self.stream.by_ref() {
                if self.split.split_of(&paragraph.article_id) != Split::Train {
                    continue;
                }
                if let Some(out) = self.buffer.push(paragraph) {
                    return Some(out);
                }
            }
            self.drained = Some(self.buffer.drain().into_iter());
        }
        self.drained.as_mut()?.next()
    }
}

impl<'a> PackedTokenStream<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        corpus: CorpusSpec,
        split: SplitRule,
        tokenizer: &'a TextTokenizer,
        eos: u32,
        seq_len: usize,
        shuffle_buffer: usize,
        seed: u64,
        task_mix: TaskMix,
        position: StreamPosition,
    ) -> Self {
        let mut position = position;
        // An older checkpoint's carry has no flags: all of it counted.
        position.carry_scored.resize(position.carry.len(), true);
        Self {
            corpus,
            split,
            tokenizer,
            eos,
            seq_len,
            shuffle_buffer,
            seed,
            task_mix,
            templates: PromptTemplates::default(),
            given: None,
            position,
            epoch_paragraphs: None,
        }
    }

    /// Task examples in these prompt formats (default: the built-in ones).
    pub fn with_templates(mut self, templates: PromptTemplates) -> Self {
        self.templates = templates;
        self
    }

    /// Replace `fraction` of the paragraphs by these predictor examples, in order and
    /// from the start again when they run out. A stream without them draws the same
    /// numbers as before the option existed.
    pub fn with_given_examples(mut self, fraction: f64, examples: Vec<PredictorExample>) -> Self {
        assert!(!examples.is_empty(), "no given predictor examples");
        self.given = Some(GivenStream { fraction, examples });
        self
    }

    pub fn position(&self) -> &StreamPosition {
        &self.position
    }

    fn open_epoch(&self) -> anyhow::Result<EpochParagraphs> {
        let mut paragraphs = EpochParagraphs {
            stream: self.corpus.open()?,
            buffer: ShuffleBuffer::new(
                self.shuffle_buffer,
                self.seed ^ self.position.epoch.wrapping_mul(0x9e37_79b9),
            ),
            drained: None,
            split: self.split,
        };
        // Resuming: skip what this epoch already gave.
        for _ in 0..self.position.paragraphs_consumed {
            paragraphs.next();
        }
        Ok(paragraphs)
    }

    fn next_paragraph(&mut self) -> anyhow::Result<Paragraph> {
        for _ in 0..2 {
            if self.epoch_paragraphs.is_none() {
                self.epoch_paragraphs = Some(self.open_epoch()?);
            }
            if let Some(p) = self.epoch_paragraphs.as_mut().and_then(Iterator::next) {
                self.position.paragraphs_consumed += 1;
                return Ok(p);
            }
            // Epoch finished: start the next one.
            self.position.epoch += 1;
            self.position.paragraphs_consumed = 0;
            self.epoch_paragraphs = None;
        }
        anyhow::bail!(
            "{}: no training paragraph: every paragraph is too short (--min-words) or on the validation side of the article split (--seed {}, --validation-fraction {}). A corpus that is itself a split's held-out side, like data/wikipedia-sample for seed 0, has no training side under that seed: choose another --seed",
            self.corpus.path.display(),
            self.split.seed,
            self.split.validation_fraction
        )
    }

    /// The text a paragraph contributes: itself, a task example built from it (prompt,
    /// then answer), or the next given predictor example in its place.
    fn training_text(&mut self, paragraph: &Paragraph) -> TrainingText {
        let key = self.seed
            ^ self.position.epoch.wrapping_mul(0x2545_f491_4f6c_dd1d)
            ^ self
                .position
                .paragraphs_consumed
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut rng = StdRng::seed_from_u64(key);
        if let Some(given) = &self.given {
            if rng.random_bool(given.fraction.min(1.0)) {
                let index = self.position.given_consumed % given.examples.len() as u64;
                let example = &given.examples[index as usize];
                let text = self.predictor_example(&example.masked, &example.answer);
                self.position.given_consumed += 1;
                return text;
            }
        }
        let plain = || TrainingText::plain(paragraph);
        if self.task_mix.fraction <= 0.0 || !rng.random_bool(self.task_mix.fraction.min(1.0)) {
            // Drawn only when repeats are asked for, so that a stream without them
            // draws the same numbers as streams did before the option existed.
            if self.task_mix.repeat_fraction > 0.0
                && rng.random_bool(self.task_mix.repeat_fraction.min(1.0))
            {
                let window = word_window(&paragraph.text, REPEAT_WINDOW_WORDS, &mut rng);
                return TrainingText::plain_text(format!("{window} {window}"));
            }
            return plain();
        }
        let context = match self.task_mix.context_words {
            Some(limit) => word_window(&paragraph.text, limit, &mut rng),
            None => paragraph.text.clone(),
        };
        let Some(masked) = random_word_span(&context, self.task_mix.max_span_words, &mut rng)
        else {
            return plain();
        };
        if rng.random_bool(self.task_mix.predictor_share) {
            self.predictor_example(&masked.masked, &masked.span)
        } else {
            self.task_example(
                PromptTemplates::fill(&self.templates.generator_direct, &context),
                masked.span + "}",
            )
        }
    }

    /// The predictor's prompt for `masked` and its answer `span`.
    fn predictor_example(&self, masked: &str, span: &str) -> TrainingText {
        self.task_example(
            PromptTemplates::fill(&self.templates.predictor_direct, masked),
            self.templates.predictor_answer(span, masked),
        )
    }

    fn task_example(&self, prompt: String, answer: String) -> TrainingText {
        // Prompt and answer are tokenized apart, as at inference, where the answer's
        // tokens follow the prompt's (the prompt ends in the added token `\boxed{` or
        // `\mask{`, so the joint encoding would split there too).
        TrainingText {
            pieces: vec![
                TextPiece {
                    text: prompt,
                    scored: self.task_mix.loss == TaskLoss::Whole,
                },
                TextPiece {
                    text: answer,
                    scored: true,
                },
            ],
            task_example: true,
        }
    }

    /// The pieces' tokens, then end-of-text.
    fn tokenize(&self, text: TrainingText) -> anyhow::Result<Tokenized> {
        let mut out = Tokenized {
            ids: Vec::new(),
            scored: Vec::new(),
        };
        for piece in text.pieces {
            let ids = self.tokenizer.encode(&piece.text, false)?;
            out.scored
                .resize(out.scored.len() + ids.len(), piece.scored);
            out.ids.extend(ids);
        }
        out.ids.push(self.eos);
        out.scored.push(true);
        Ok(out)
    }

    fn append(&mut self, tokens: Tokenized) {
        self.position.carry.extend(tokens.ids);
        self.position.carry_scored.extend(tokens.scored);
    }

    /// Fills the `space` tokens left in the current sequence with the following
    /// plain paragraphs and returns what did not fit of the last one.
    fn fill_with_plain_text(&mut self, mut space: usize) -> anyhow::Result<Tokenized> {
        loop {
            let paragraph = self.next_paragraph()?;
            let mut tokens = self.tokenize(TrainingText::plain(&paragraph))?;
            if tokens.ids.len() >= space {
                let rest = Tokenized {
                    ids: tokens.ids.split_off(space),
                    scored: tokens.scored.split_off(space),
                };
                self.append(tokens);
                return Ok(rest);
            }
            space -= tokens.ids.len();
            self.append(tokens);
        }
    }

    /// The next `seq_len + 1` tokens.
    pub fn next_chunk(&mut self) -> anyhow::Result<TokenChunk> {
        let chunk_len = self.seq_len + 1;
        while self.position.carry.len() < chunk_len {
            let paragraph = self.next_paragraph()?;
            let text = self.training_text(&paragraph);
            let task_example = text.task_example;
            let mut tokens = self.tokenize(text)?;
            if task_example && self.task_mix.whole_examples {
                if tokens.ids.len() > chunk_len {
                    tokens = self.tokenize(TrainingText::plain(&paragraph))?;
                } else {
                    // The carry is shorter than a sequence here, so its length is
                    // the position in the sequence being filled.
                    let space = chunk_len - self.position.carry.len();
                    if tokens.ids.len() > space {
                        let rest = self.fill_with_plain_text(space)?;
                        self.append(tokens);
                        tokens = rest;
                    }
                }
            }
            self.append(tokens);
        }
        let rest = self.position.carry.split_off(chunk_len);
        let rest_scored = self.position.carry_scored.split_off(chunk_len);
        Ok(TokenChunk {
            tokens: std::mem::replace(&mut self.position.carry, rest),
            scored: std::mem::replace(&mut self.position.carry_scored, rest_scored),
        })
    }
}

impl TrainingText {
    fn plain(paragraph: &Paragraph) -> Self {
        Self::plain_text(paragraph.text.clone())
    }

    /// Text scored everywhere, not a task example.
    fn plain_text(text: String) -> Self {
        Self {
            pieces: vec![TextPiece { text, scored: true }],
            task_example: false,
        }
    }
}

/// At most `limit` consecutive words of `text`, starting at a random word, joined by
/// single spaces (a paragraph is one line of text).
fn word_window(text: &str, limit: usize, rng: &mut impl Rng) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() <= limit {
        return text.to_string();
    }
    let start = rng.random_range(0..=words.len() - limit);
    words[start..start + limit].join(" ")
}

/// Validation chunks: the first `max_paragraphs` validation-split paragraphs in corpus
/// order, packed like training data (no task examples).
pub fn validation_chunks(
    corpus: &CorpusSpec,
    split: SplitRule,
    tokenizer: &TextTokenizer,
    eos: u32,
    seq_len: usize,
    max_paragraphs: usize,
) -> anyhow::Result<Vec<TokenChunk>> {
    let mut tokens = Vec::new();
    let stream = corpus.open()?;
    for paragraph in stream
        .filter(|p| split.split_of(&p.article_id) == Split::Validation)
        .take(max_paragraphs)
    {
        tokens.extend(tokenizer.encode(&paragraph.text, false)?);
        tokens.push(eos);
    }
    Ok(tokens
        .chunks_exact(seq_len + 1)
        .map(|chunk| TokenChunk::scored_everywhere(chunk.to_vec()))
        .collect())
}
