//! The clipped policy-gradient objective with clip-higher (DAPO): per token,
//! `−min(ratio · A, clip(ratio, 1 − ε_low, 1 + ε_high) · A)`, plus an optional k3 KL
//! penalty to a frozen reference, aggregated by per-token weights.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossAggregation {
    /// Mean over all response tokens of the batch (DAPO; the default).
    TokenMean,
    /// Mean over sequences of each sequence's token mean.
    SeqMeanTokenMean,
}

impl LossAggregation {
    /// Weight of each token of a sequence of `len` tokens in a batch of `sequences`
    /// sequences and `tokens` response tokens, so that the weighted sum is the mean.
    pub fn token_weight(self, len: usize, sequences: usize, tokens: usize) -> f32 {
        match self {
            Self::TokenMean => 1.0 / tokens.max(1) as f32,
            Self::SeqMeanTokenMean => 1.0 / (len.max(1) * sequences.max(1)) as f32,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PolicyLossConfig {
    pub eps_low: f64,
    pub eps_high: f64,
    pub kl_coef: f64,
}

impl Default for PolicyLossConfig {
    fn default() -> Self {
        Self {
            eps_low: 0.2,
            eps_high: 0.28,
            kl_coef: 0.0,
        }
    }
}

/// Loss of one batch and how often each side of the clip was active.
pub struct TokenLoss<B: Backend> {
    pub loss: Tensor<B, 1>,
    /// Share of weighted tokens with `A < 0` and `ratio < 1 − ε_low`.
    pub clip_low_fraction: Tensor<B, 1>,
    /// Share of weighted tokens with `A > 0` and `ratio > 1 + ε_high`.
    pub clip_high_fraction: Tensor<B, 1>,
}

/// All inputs are per token, same shape; `weights` is 0 outside responses.
pub fn grpo_token_loss<B: Backend, const D: usize>(
    logp_new: Tensor<B, D>,
    logp_old: Tensor<B, D>,
    advantages: Tensor<B, D>,
    weights: Tensor<B, D>,
    logp_ref: Option<Tensor<B, D>>,
    config: &PolicyLossConfig,
) -> TokenLoss<B> {
    let ratio = (logp_new.clone() - logp_old).exp();
    let clipped = ratio
        .clone()
        .clamp(1.0 - config.eps_low, 1.0 + config.eps_high);
    let surrogate = (ratio.clone() * advantages.clone()).min_pair(clipped * advantages.clone());
    let mut per_token = surrogate.neg();
    if let (Some(logp_ref), true) = (logp_ref, config.kl_coef > 0.0) {
        // k3 estimator of KL(π ‖ π_ref): exp(ref − new) − (ref − new) − 1 ≥ 0.
        let delta = logp_ref - logp_new;
        per_token = per_token + (delta.clone().exp() - delta - 1.0) * config.kl_coef;
    }
    let total_weight = weights.clone().sum().clamp_min(1e-12);
    let low = ratio.clone().lower_elem(1.0 - config.eps_low).float()
        * advantages.clone().lower_elem(0.0).float();
    let high =
        ratio.greater_elem(1.0 + config.eps_high).float() * advantages.greater_elem(0.0).float();
    TokenLoss {
        loss: (per_token * weights.clone()).sum(),
        clip_low_fraction: (low * weights.clone()).sum() / total_weight.clone(),
        clip_high_fraction: (high * weights).sum() / total_weight,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type B = burn::backend::NdArray<f32>;

    fn t(values: &[f32]) -> Tensor<B, 1> {
        Tensor::from_floats(values, &Default::default())
    }

    #[test]
    fn clipped_loss_on_a_hand_made_batch() {
        // ratios: e^0.5 ≈ 1.6487 (clipped high at 1.28 for A>0), e^-0.5 ≈ 0.6065
        // (clipped low at 0.8 for A<0), 1.0 (inside), e^0.5 with A<0 (min picks unclipped).
        let old = t(&[0.0, 0.0, 0.0, 0.0]);
        let new = t(&[0.5, -0.5, 0.0, 0.5]);
        let adv = t(&[1.0, -1.0, 2.0, -1.0]);
        let w = t(&[0.25, 0.25, 0.25, 0.25]);
        let out = grpo_token_loss(new, old, adv, w, None, &PolicyLossConfig::default());
        let r = 0.5f32.exp();
        // Per token: −min(r·1, 1.28) = −1.28; −min(−0.6065, −0.8) = 0.8; −2; −min(−r, −1.28) = r.
        let expected = 0.25 * (-1.28 + 0.8 - 2.0 + r);
        assert!((out.loss.into_scalar() - expected).abs() < 1e-5);
        assert!((out.clip_high_fraction.into_scalar() - 0.25).abs() < 1e-6);
        assert!((out.clip_low_fraction.into_scalar() - 0.25).abs() < 1e-6);
    }

    #[test]
    fn token_mean_and_seq_mean_weights() {
        // Sequences of 1 and 3 tokens: token-mean weighs every token 1/4;
        // seq-mean-token-mean weighs the lone token 1/2 and the others 1/6.
        assert_eq!(LossAggregation::TokenMean.token_weight(1, 2, 4), 0.25);
        assert_eq!(LossAggregation::SeqMeanTokenMean.token_weight(1, 2, 4), 0.5);
        assert!((LossAggregation::SeqMeanTokenMean.token_weight(3, 2, 4) - 1.0 / 6.0).abs() < 1e-7);
        // Loss values 1 (seq A) and 0,0,0 (seq B) at ratio 1 with A = −value:
        let adv = t(&[-1.0, 0.0, 0.0, 0.0]);
        let zeros = t(&[0.0; 4]);
        let token_mean = grpo_token_loss(
            zeros.clone(),
            zeros.clone(),
            adv.clone(),
            t(&[0.25; 4]),
            None,
            &PolicyLossConfig::default(),
        );
        let seq_mean = grpo_token_loss(
            zeros.clone(),
            zeros,
            adv,
            t(&[0.5, 1.0 / 6.0, 1.0 / 6.0, 1.0 / 6.0]),
            None,
            &PolicyLossConfig::default(),
        );
        assert!((token_mean.loss.into_scalar() - 0.25).abs() < 1e-6);
        assert!((seq_mean.loss.into_scalar() - 0.5).abs() < 1e-6);
    }

    #[test]
    fn kl_penalty_is_zero_at_the_reference_and_positive_away() {
        let zeros = t(&[0.0, 0.0]);
        let cfg = PolicyLossConfig {
            kl_coef: 1.0,
            ..PolicyLossConfig::default()
        };
        let at_ref = grpo_token_loss(
            zeros.clone(),
            zeros.clone(),
            zeros.clone(),
            t(&[0.5, 0.5]),
            Some(zeros.clone()),
            &cfg,
        );
        assert!(at_ref.loss.into_scalar().abs() < 1e-7);
        let away = grpo_token_loss(
            zeros.clone(),
            zeros.clone(),
            zeros,
            t(&[0.5, 0.5]),
            Some(t(&[-1.0, 1.0])),
            &cfg,
        );
        // k3 at δ = ∓1: e^-1 + 1 − 1 and e − 1 − 1 → mean (0.3679 + 0.7183) / 2.
        let expected = 0.5 * ((-1f32).exp() + 1f32.exp() - 2.0);
        assert!((away.loss.into_scalar() - expected).abs() < 1e-5);
    }
}
