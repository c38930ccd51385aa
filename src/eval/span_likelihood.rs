//! The continuous held-out metric: the mean per-token log-likelihood of the gold span
//! under the direct predictor prompt, teacher-forced as `\boxed{gold}` (the closing
//! brace included: knowing where the span ends is part of knowing it). Exact match
//! moves in steps of one item; this moves with every bit of probability the model
//! puts on the right answer.

use crate::eval::length_order::LengthOrder;
use crate::eval::masked_span::MaskedSpanItem;
use crate::kernels::{RewardStepBackend, RowChunking};
use crate::models::{Decoder, TextTokenizer};
use crate::policy::prompts::PromptTemplates;
use crate::update::token_logprobs::{response_token_scores, ResponseBatch};

/// Per item, the mean log-probability per token of the answer `gold}` (after the
/// templates' answer lead) following the direct predictor prompt (which ends with the
/// forced `\boxed{`), in batches of `batch_size`.
pub fn gold_span_loglik<B: RewardStepBackend>(
    model: &Decoder<B>,
    tokenizer: &TextTokenizer,
    templates: &PromptTemplates,
    items: &[MaskedSpanItem],
    batch_size: usize,
    device: &B::Device,
) -> anyhow::Result<Vec<f64>> {
    let pairs = items
        .iter()
        .map(|item| {
            let prompt = PromptTemplates::fill(&templates.predictor_direct, &item.masked_paragraph);
            Ok((
                tokenizer.encode(&prompt, false)?,
                tokenizer.encode(
                    &templates.predictor_answer(&item.gold, &item.masked_paragraph),
                    false,
                )?,
            ))
        })
        .collect::<anyhow::Result<Vec<(Vec<u32>, Vec<u32>)>>>()?;
    // Longest sequences first, so that each batch pads little (see `length_order`).
    let order = LengthOrder::longest_first(
        pairs
            .iter()
            .map(|(prompt, response)| prompt.len() + response.len()),
    );
    let mut means = Vec::with_capacity(items.len());
    for batch in order.arrange(&pairs).chunks(batch_size.max(1)) {
        let views: Vec<(&[u32], &[u32])> = batch.iter().map(|(p, r)| (&p[..], &r[..])).collect();
        let scores = response_token_scores(
            model,
            &ResponseBatch::<B>::new(&views, device),
            RowChunking::default(),
        )
        .0
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .map_err(|e| anyhow::anyhow!("reading log-probabilities: {e:?}"))?;
        let mut offset = 0;
        for (_, response) in batch {
            let tokens = &scores[offset..offset + response.len()];
            means.push(tokens.iter().sum::<f64>() / tokens.len().max(1) as f64);
            offset += response.len();
        }
    }
    Ok(order.restore(means))
}
