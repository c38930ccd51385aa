//! Incremental decoding with the KV cache equals recomputing the whole sequence, and
//! batching prompts of different lengths (left padding) changes nothing; both on the
//! two CPU backends (burn-flex runs its own attention over the cache's views).

use burn::prelude::*;
use pretrainzero::models::decoder::AttentionMask;
use pretrainzero::models::generate::padding_mask;
use pretrainzero::models::{
    generate, score_sequence, GenerationConfig, PretrainedModel, SamplingConfig,
};

use crate::reference::{max_abs_diff, Reference};
use burn::backend::Flex;
use pretrainzero::kernels::FusedLayerBackend;

use crate::{require_shared, Cpu};

fn to_vec<B: Backend>(t: Tensor<B, 3>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().unwrap()
}

#[test]
fn cached_decoding_matches_full_recompute() {
    let dir = require_shared!("models/tiny-random-qwen3");
    check_cached_decoding::<Cpu>(&dir);
    check_cached_decoding::<Flex>(&dir);
}

fn check_cached_decoding<B: FusedLayerBackend>(dir: &std::path::Path) {
    let device = Default::default();
    let model = PretrainedModel::<B>::load(dir, &device).unwrap().model;
    let ids: Vec<i64> = Reference::load(dir)
        .unwrap()
        .input_ids
        .iter()
        .map(|&i| i as i64)
        .collect();
    let len = ids.len();
    let prefix = 10;
    let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids.clone(), [1, len]), &device);
    let full = model.forward(tokens.clone());
    let vocab = model.vocab_size();

    let mut cache = model.new_cache(1, len, &device);
    let no_padding = Tensor::<B, 1, Int>::zeros([1], &device);
    let mut chunks = vec![(0, prefix)];
    chunks.extend((prefix..len).map(|t| (t, 1)));
    let mut worst = 0.0f32;
    for (start, size) in chunks {
        let chunk = tokens.clone().slice([0..1, start..start + size]);
        let positions = Tensor::<B, 1, Int>::arange(start as i64..(start + size) as i64, &device)
            .reshape([1, size]);
        let mask = padding_mask(&no_padding, start, size, start + size);
        let hidden = model.hidden_states(
            chunk,
            Some(positions),
            &AttentionMask::Explicit(mask),
            Some(&mut cache),
        );
        let cached = to_vec(model.logits(hidden));
        let expected = to_vec(full.clone().slice([0..1, start..start + size, 0..vocab]));
        worst = worst.max(max_abs_diff(&cached, &expected));
    }
    assert_eq!(cache.len(), len);
    assert!(
        worst <= 1e-5,
        "cached logits differ from full recompute by {worst}"
    );
}

#[test]
fn batched_prompts_of_different_lengths_match_single_runs() {
    let dir = require_shared!("models/stories260K-hf");
    check_batched_prompts::<Cpu>(&dir);
    check_batched_prompts::<Flex>(&dir);
}

fn check_batched_prompts<B: FusedLayerBackend>(dir: &std::path::Path) {
    let device = Default::default();
    let model = PretrainedModel::<B>::load(dir, &device).unwrap().model;
    let ids = Reference::load(dir).unwrap().input_ids;
    let prompts: Vec<Vec<u32>> = [3usize, 11, 7, 16]
        .iter()
        .map(|&n| ids[..n].to_vec())
        .collect();
    let config = GenerationConfig::fixed_length(12, SamplingConfig::greedy(), 0);
    let batched = generate(&model, &prompts, &config, None, &device).unwrap();
    for (prompt, together) in prompts.iter().zip(&batched) {
        let alone = generate(&model, std::slice::from_ref(prompt), &config, None, &device).unwrap();
        assert_eq!(
            together.tokens,
            alone[0].tokens,
            "prompt of {} tokens",
            prompt.len()
        );
        let diff = max_abs_diff(&together.logprobs, &alone[0].logprobs);
        assert!(diff <= 1e-4, "log-probs differ by {diff}");
    }
}

#[test]
fn sampling_is_seeded_and_respects_eos_and_top_k() {
    let dir = require_shared!("models/stories260K-hf");
    let device = Default::default();
    let pretrained = PretrainedModel::<Cpu>::load(&dir, &device).unwrap();
    let prompt = vec![vec![1u32, 403, 407]];
    let config = |seed: u64, top_k: usize| GenerationConfig {
        max_new_tokens: 40,
        sampling: SamplingConfig {
            temperature: 1.0,
            top_p: 0.9,
            top_k,
        },
        eos_token_ids: vec![2],
        stop_strings: Vec::new(),
        seed,
    };
    let a = generate(&pretrained.model, &prompt, &config(7, 0), None, &device).unwrap();
    let b = generate(&pretrained.model, &prompt, &config(7, 0), None, &device).unwrap();
    assert_eq!(a[0].tokens, b[0].tokens, "same seed, same tokens");
    // top-k = 1 is greedy whatever the seed.
    let greedy = GenerationConfig {
        sampling: SamplingConfig::greedy(),
        ..config(0, 0)
    };
    let k1 = generate(&pretrained.model, &prompt, &config(99, 1), None, &device).unwrap();
    let argmax = generate(&pretrained.model, &prompt, &greedy, None, &device).unwrap();
    assert_eq!(k1[0].tokens, argmax[0].tokens);
    for seq in a.iter().chain(&k1) {
        assert!(seq.logprobs.iter().all(|&lp| lp <= 0.0 && lp.is_finite()));
        if let Some(pos) = seq.tokens.iter().position(|&t| t == 2) {
            assert_eq!(
                pos + 1,
                seq.tokens.len(),
                "generation stops right after EOS"
            );
        }
    }
}

/// A batch that repeats prompts (a GRPO group) prefills each distinct prompt once and
/// shares its cache rows. Every sampled row must still be an honest sample of its own
/// prompt: its reported log-probs equal a teacher-forced rescoring of prompt + response
/// (computed without any cache), and rows of one prompt differ (their draws differ).
#[test]
fn repeated_prompts_share_their_prefill_and_stay_exact() {
    let dir = require_shared!("models/stories260K-hf");
    let device = Default::default();
    let model = PretrainedModel::<Cpu>::load(&dir, &device).unwrap().model;
    let ids = Reference::load(&dir).unwrap().input_ids;
    let short = ids[..4].to_vec();
    let long = ids[..13].to_vec();
    let prompts = vec![
        long.clone(),
        short.clone(),
        long.clone(),
        long.clone(),
        short.clone(),
    ];
    let config = GenerationConfig::fixed_length(10, SamplingConfig::with_temperature(1.0), 3);
    let generated = generate(&model, &prompts, &config, None, &device).unwrap();
    for (prompt, row) in prompts.iter().zip(&generated) {
        let full: Vec<u32> = prompt.iter().chain(&row.tokens).copied().collect();
        let scores = score_sequence(&model, &full, &device).unwrap();
        let rescored = &scores.target_logprobs[prompt.len() - 1..];
        let diff = max_abs_diff(&row.logprobs, rescored);
        assert!(
            diff <= 1e-4,
            "sampled log-probs differ from rescoring by {diff}"
        );
    }
    assert_ne!(
        generated[0].tokens, generated[2].tokens,
        "two samples of one prompt drew the same 10 tokens"
    );
}
