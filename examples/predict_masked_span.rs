//! Library tour: load the shipped model, hide a span of a paragraph with the span
//! rules, and let the model answer as the mask predictor (direct prompt).
//!
//!     cargo run --release --example predict_masked_span -- "Paris" "Paris is the capital and most populous city of France."

use burn::backend::NdArray;
use pretrainzero::models::{generate, GenerationConfig, PretrainedModel, SamplingConfig};
use pretrainzero::policy::parse::last_braced;
use pretrainzero::policy::prompts::PromptTemplates;
use pretrainzero::policy::span_rules::SpanRules;
use pretrainzero::reward::exact_match;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let span = args.next().unwrap_or_else(|| "Stockholm".into());
    let paragraph = args.next().unwrap_or_else(|| {
        "Stockholm is the capital and most populous city of Sweden. The city stretches across fourteen islands \
         where Lake Mälaren flows into the Baltic Sea."
            .into()
    });
    let device = Default::default();
    let model_dir = std::path::Path::new("models/pretrainzero-wiki-tiny");
    let model = PretrainedModel::<NdArray<f32>>::load(model_dir, &device)?;
    let tokenizer = model
        .tokenizer
        .as_ref()
        .expect("the shipped model has a tokenizer");

    let mask = SpanRules::default()
        .apply(&paragraph, &span)
        .map_err(|why| anyhow::anyhow!("cannot mask {span:?}: {why:?}"))?;
    // The prompt format the model was trained on (its prompt_templates.json, if any).
    let templates = PromptTemplates::for_model(model_dir)?;
    let prompt = PromptTemplates::fill(&templates.predictor_direct, &mask.masked);
    let prompt_ids = tokenizer.encode(&prompt, false)?;
    let config = GenerationConfig {
        max_new_tokens: 8,
        sampling: SamplingConfig {
            temperature: 0.7,
            top_p: 1.0,
            top_k: 0,
        },
        eos_token_ids: model.config.eos_token_ids.clone(),
        stop_strings: vec!["}".into()],
        seed: 0,
    };
    println!("masked: {}", mask.masked);
    let answers = generate(
        &model.model,
        &vec![prompt_ids; 8],
        &config,
        Some(tokenizer),
        &device,
    )?;
    for answer in answers {
        let text = tokenizer.decode(&answer.tokens, true)?;
        let extracted = last_braced(&format!("\\boxed{{{text}"), "boxed");
        let correct = extracted
            .as_deref()
            .is_some_and(|a| exact_match(a, &mask.span, false));
        println!(
            "{:>5}  {:?}",
            if correct { "✓" } else { "✗" },
            extracted.unwrap_or(text)
        );
    }
    Ok(())
}
