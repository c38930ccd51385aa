//! Per-position scores of a token sequence under the model: the log-probability of
//! each next token and the log-sum-exp of each position's logits.

use burn::prelude::*;

use crate::decoder::Decoder;
use crate::error::{ModelError, Result};
use crate::row_ops::row_logsumexp;
use pretrainzero_kernels::FusedLayerBackend;

#[derive(Debug, Clone, serde::Serialize)]
pub struct SequenceScores {
    /// `target_logprobs[t] = log p(ids[t + 1] | ids[..=t])`, length `len - 1`.
    pub target_logprobs: Vec<f32>,
    /// Log-sum-exp of the logits at every position, length `len`.
    pub logsumexp: Vec<f32>,
}

impl SequenceScores {
    pub fn mean_nll(&self) -> f64 {
        let n = self.target_logprobs.len().max(1) as f64;
        -self.target_logprobs.iter().map(|&v| v as f64).sum::<f64>() / n
    }
}

pub fn score_sequence<B: FusedLayerBackend>(
    model: &Decoder<B>,
    ids: &[u32],
    device: &B::Device,
) -> Result<SequenceScores> {
    let vocab = model.vocab_size();
    if ids.len() < 2 {
        return Err(ModelError::Input(
            "scoring needs at least two tokens".into(),
        ));
    }
    if let Some(&bad) = ids.iter().find(|&&id| id as usize >= vocab) {
        return Err(ModelError::Input(format!(
            "token id {bad} is outside the vocabulary of {vocab}"
        )));
    }
    let len = ids.len();
    let tokens = Tensor::<B, 2, Int>::from_data(
        TensorData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, len]),
        device,
    );
    let logits = model
        .forward(tokens)
        .reshape([len, vocab])
        .cast(burn::tensor::FloatDType::F32);
    let logsumexp = row_logsumexp(logits.clone());
    let targets = Tensor::<B, 2, Int>::from_data(
        TensorData::new(
            ids[1..].iter().map(|&i| i as i64).collect::<Vec<_>>(),
            [len - 1, 1],
        ),
        device,
    );
    let target_logits = logits.slice([0..len - 1, 0..vocab]).gather(1, targets);
    let target_logprobs = target_logits - logsumexp.clone().slice([0..len - 1, 0..1]);
    let to_vec = |t: Tensor<B, 2>| -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("converted tensor data is f32")
    };
    Ok(SequenceScores {
        target_logprobs: to_vec(target_logprobs),
        logsumexp: to_vec(logsumexp),
    })
}
