//! What the pretraining stream mixes into plain text: task examples in the RL
//! formats (how many, which role's, which of their tokens count in the loss, whether
//! each is kept inside one training sequence) and paragraphs written twice.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TaskMix {
    /// Fraction of paragraphs turned into task examples (0 disables).
    pub fraction: f64,
    pub max_span_words: usize,
    /// Which tokens of a task example the loss counts.
    #[serde(default)]
    pub loss: TaskLoss,
    /// Build each task example from a random window of at most this many words of
    /// its paragraph (`None`: the whole paragraph). Short windows make an example
    /// cheap, so a step holds several times more answers.
    #[serde(default)]
    pub context_words: Option<usize>,
    /// Of the task examples, the fraction in the predictor's format; the rest are the
    /// generator's. The held-out masked-span score measures the predictor alone,
    /// while the generator's copy format is learned from far fewer examples.
    #[serde(default = "default_predictor_share")]
    pub predictor_share: f64,
    /// Fraction of the plain paragraphs written twice: a window of at most
    /// [`REPEAT_WINDOW_WORDS`] of their words, then the same words again. The second
    /// copy is predictable only by copying from the context, the skill (induction
    /// heads) that the predictor needs to read the words after `[mask]` and the
    /// generator needs to copy a span, and that a small model trained on a few million
    /// tokens of plain text does not form. 0 leaves the stream as before.
    #[serde(default)]
    pub repeat_fraction: f64,
    /// Keep every task example inside one training sequence. Packing cuts the stream
    /// wherever a sequence is full, so an example that straddles a cut has its answer
    /// predicted without the start of its prompt in view: the instruction and, in the
    /// window format, the text after the mask. With this on, an example that does not
    /// fit in the space left opens the next sequence, the space is filled with the
    /// following paragraphs as plain text (the last one cut, its rest coming after the
    /// example), and an example longer than a sequence is written as its plain
    /// paragraph instead. Nothing is padded and no text is dropped, but the paragraphs
    /// that fill gaps are plain whatever their draw, so fewer paragraphs than
    /// `fraction` become task examples (in 512-token sequences at a fraction of 0.6,
    /// about 40 %).
    #[serde(default)]
    pub whole_examples: bool,
}

/// Words in a repeated window: twice ~40 words is ~110 tokens, less than half of a
/// 256-token training sequence. Documents are packed across sequence boundaries, so
/// where one is cut, part of its second copy is predicted without the first in view;
/// short windows keep that part small.
pub const REPEAT_WINDOW_WORDS: usize = 40;

/// An even split between the roles: the mix of every run before the share could be
/// chosen, and the default of `pretrain --task-predictor-share`.
pub const DEFAULT_PREDICTOR_SHARE: f64 = 0.5;

fn default_predictor_share() -> f64 {
    DEFAULT_PREDICTOR_SHARE
}

/// Which tokens of a task example are loss targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TaskLoss {
    /// Every token, as for plain text.
    #[default]
    Whole,
    /// The answer only: the span, `}` and end-of-text.
    Answer,
}
