//! Span policies: how a step's paragraphs become prediction tasks. `pretrainzero`
//! asks the model itself (the generator role, `pretrainzero.rs`); the baselines choose
//! without it (`random_span.rs`, `random_ntp.rs`, `entropy_ntp.rs`). All of them are a
//! [`SpanPolicy`], so the rollout is one loop for every policy (DESIGN.md §6) and a
//! schedule of policies (a cold start) needs nothing special.

use crate::kernels::RewardStepBackend;
use rand::rngs::StdRng;

use crate::models::{Decoder, TextTokenizer};
use crate::rollout::{Rollout, RolloutEngine};

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

/// The generator role's own rollouts: one per requested span, each with the task its
/// response produced (`None`: no valid mask, reward 0).
pub struct GeneratorRollouts {
    pub rollouts: Vec<Rollout>,
    pub task_of: Vec<Option<usize>>,
}

/// What a policy chose for one step's paragraphs.
pub struct ChosenSpans {
    pub tasks: Vec<PredictionTask>,
    /// For a policy that is itself trained (`pretrainzero`): its rollouts.
    pub generator: Option<GeneratorRollouts>,
}

/// What a policy may use to choose spans.
pub struct SpanContext<'a, B: RewardStepBackend> {
    /// The current policy model (entropy-selected cuts score with it).
    pub model: &'a Decoder<B>,
    pub tokenizer: &'a TextTokenizer,
    /// Generation with the generator role's sampling settings.
    pub generator: &'a RolloutEngine<'a, B>,
    pub device: &'a B::Device,
    /// The step's seed.
    pub seed: u64,
}

/// Paragraphs in, prediction tasks out.
pub trait SpanPolicy<B: RewardStepBackend> {
    /// Up to `spans_per_paragraph` (G_m) tasks per paragraph, in paragraph order;
    /// `rng` is the step's generator of random choices.
    fn choose(
        &self,
        context: &SpanContext<'_, B>,
        paragraphs: &[String],
        spans_per_paragraph: usize,
        rng: &mut StdRng,
    ) -> anyhow::Result<ChosenSpans>;
}

/// A next-word task: the paragraph cut before word `index` (0-based), the word (edge
/// punctuation stripped) to predict. `None` for the first word or a word that is
/// only punctuation.
pub(super) fn next_word_task(
    paragraph_index: usize,
    paragraph: &str,
    index: usize,
) -> Option<PredictionTask> {
    let words: Vec<&str> = paragraph.split_whitespace().collect();
    let word = words
        .get(index)?
        .trim_matches(|c: char| !c.is_alphanumeric());
    if word.is_empty() || index == 0 {
        return None;
    }
    Some(PredictionTask {
        paragraph: paragraph_index,
        context: words[..index].join(" "),
        gold: word.to_string(),
        next_word: true,
    })
}
