//! Generating benchmark responses with a model: every prompt repeated `samples` times,
//! batched through the rollout engine (the same batching, seeds and decoding as
//! training), longest prompts first, cut at the first stop string.

use crate::eval::length_order::LengthOrder;
use crate::kernels::RewardStepBackend;

use crate::models::{Decoder, SamplingConfig, TextTokenizer};
use crate::rollout::RolloutEngine;

pub struct GenerationSettings {
    pub sampling: SamplingConfig,
    pub max_new_tokens: usize,
    pub batch_size: usize,
    /// Responses per prompt (the n of pass@k).
    pub samples: usize,
    pub seed: u64,
    pub stop_strings: Vec<String>,
}

/// `samples` responses for each prompt, in prompt order; `on_batch` gets the number of
/// responses done so far.
pub fn generate_responses<B: RewardStepBackend>(
    model: &Decoder<B>,
    tokenizer: &TextTokenizer,
    eos_token_ids: &[u32],
    prompts: &[String],
    settings: &GenerationSettings,
    device: &B::Device,
    mut on_batch: impl FnMut(usize),
) -> anyhow::Result<Vec<Vec<String>>> {
    let samples = settings.samples.max(1);
    let engine = RolloutEngine {
        model,
        tokenizer,
        eos_token_ids,
        sampling: settings.sampling.clone(),
        max_new_tokens: settings.max_new_tokens,
        batch_size: settings.batch_size.max(1),
        concurrent_batches: B::concurrent_pieces(),
        device,
    };
    let prompt_ids = prompts
        .iter()
        .map(|prompt| tokenizer.encode(prompt, false))
        .collect::<Result<Vec<_>, _>>()?;
    // Longest prompts first, so that each batch pads little (see `length_order`); a
    // prompt's samples stay side by side, where the engine prefills it once per batch.
    let order = LengthOrder::longest_first(prompt_ids.iter().map(Vec::len));
    let repeated: Vec<Vec<u32>> = order
        .arrange(&prompt_ids)
        .into_iter()
        .flat_map(|ids| std::iter::repeat_n(ids, samples))
        .collect();
    let mut flat = Vec::with_capacity(repeated.len());
    // Batches are fed one round at a time only to report progress.
    let mut batches_done = 0;
    for round in repeated.chunks(engine.round_len()) {
        let rollouts = engine.run_eval_round(
            round,
            &settings.stop_strings,
            settings.seed,
            &mut batches_done,
        )?;
        flat.extend(
            rollouts
                .into_iter()
                .map(|r| cut_at_stop(&r.response_text, &settings.stop_strings)),
        );
        on_batch(flat.len());
    }
    let per_prompt: Vec<Vec<String>> = flat.chunks(samples).map(<[String]>::to_vec).collect();
    Ok(order.restore(per_prompt))
}

/// The response up to the first stop string (which the generator keeps).
pub fn cut_at_stop(response: &str, stop_strings: &[String]) -> String {
    let end = stop_strings
        .iter()
        .filter_map(|s| response.find(s.as_str()))
        .min()
        .unwrap_or(response.len());
    response[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_at_the_earliest_stop_string() {
        let stops = vec!["\nQuestion:".to_string(), "\nProblem:".to_string()];
        assert_eq!(cut_at_stop("x\nProblem: y\nQuestion: z", &stops), "x");
        assert_eq!(cut_at_stop("no stop", &stops), "no stop");
    }
}
