//! Data pipeline and training tests: readers (including malformed input), the
//! article-level split, the shuffle, the tokenizer trainer, one pretraining step, and
//! exact checkpoint resume.

#[path = "../common/mod.rs"]
mod common;

mod adamw;
mod copy_constraint;
mod data_parallel;
mod eval_order;
mod eval_responses;
mod fuzz_parsers;
mod grpo;
mod kill_campaign;
mod mixed_precision;
mod pretrain;
mod prompt_templates;
mod readers;
mod residual_dropout;
mod rl_loop;
mod rollout;
mod run_faults;
mod sharded_backward;
mod shared_prefix;
mod span_likelihood;
mod split;
mod tiny_qwen3;
mod tokenizer;

pub type Cpu = burn::backend::NdArray<f32>;

/// The Wikipedia sample shipped in the repository (held-out articles).
pub fn wikipedia_sample() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/wikipedia-sample")
}

/// The shipped Wikipedia sample, paragraphs of 12 to `max_words` words (the masked-span
/// evaluation's source in the tests).
pub fn sample_paragraphs(max_words: usize) -> pretrainzero::data::CorpusSpec {
    pretrainzero::data::CorpusSpec {
        path: wikipedia_sample(),
        format: None,
        text_field: "text".into(),
        rules: pretrainzero::data::ParagraphRules {
            min_words: 12,
            max_words: Some(max_words),
        },
    }
}

/// The `metrics.jsonl` lines of a run folder.
pub fn metrics(run: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
