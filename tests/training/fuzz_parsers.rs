//! Mutation fuzzing, on stable Rust, of every parser that sees outside text: the
//! `\mask{}` / `\boxed{}` extraction and span rules, the answer extractors and
//! normalisers of every eval task, the benchmark JSONL loader, the corpus readers
//! (every format and format detection, plain, gzip and damaged gzip), the TOML run configuration with `--set`, the
//! model `config.json`, and a safetensors model file. Inputs are real examples
//! (repository files, plus the shared eval samples when present) mutated by a seeded
//! RNG: byte flips, insertions of syntax tokens, deletions, duplications and splices.
//! A parser may reject an input; it must never panic.
//!
//! CI runs 10,000 inputs per parser. The full run:
//!
//!     PRETRAINZERO_FUZZ_INPUTS=1000000 cargo test --release --test training fuzz -- --nocapture
//!
//! prints inputs, panics and time per parser; `PRETRAINZERO_FUZZ_SEED` changes the
//! inputs, `PRETRAINZERO_FUZZ_ONLY=name` runs one parser. A panicking input is written
//! to the scratch folder's `crash-<parser>-N` files and its hex printed.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use pretrainzero::data::{CorpusFormat, CorpusSpec, ParagraphRules};
use pretrainzero::eval::benchmarks::{load_benchmark, BenchmarkTask};
use pretrainzero::eval::choice::extract_choice;
use pretrainzero::eval::math_answer::{math_equal, normalize, numeric_value};
use pretrainzero::eval::numeric::{extract_gsm8k, gsm8k_gold, numbers_in, parse_number};
use pretrainzero::models::{ModelConfig, PretrainedModel};
use pretrainzero::policy::parse::last_braced;
use pretrainzero::policy::span_rules::SpanRules;
use pretrainzero::reward::exact_match;
use pretrainzero::train::TrainConfig;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::{shared_data_root, ScratchDir};
use crate::Cpu;

/// Pieces of syntax the parsers care about, inserted whole so that mutations reach
/// past the first byte of a tag.
const TOKENS: &[&str] = &[
    "\\mask{",
    "\\boxed{",
    "{",
    "}",
    "\\",
    "[mask]",
    "<doc id=\"1\" url=\"u\" title=\"T\">",
    "</doc>",
    "\n",
    " = ",
    " = = ",
    "\"",
    ":",
    ",",
    "[",
    "]",
    "=",
    ".",
    "$",
    "\\frac{",
    "\\dfrac",
    "\\text{",
    "-",
    "1e309",
    "0.",
    "####",
    "(A)",
    "answer is",
    "Answer: ",
    "\u{FFFD}",
    "é",
    "\u{200B}",
    "\0",
    "\r\n",
    "NaN",
    "inf",
    "-0",
    "99999999999999999999",
    "[optim]",
    "lr = ",
    "\"vocab_size\": ",
    "\"dtype\"",
    "{\"",
    "\"}",
];

struct Mutator {
    rng: StdRng,
    seeds: Vec<Vec<u8>>,
}

impl Mutator {
    fn next(&mut self) -> Vec<u8> {
        let mut input = self.seeds[self.rng.random_range(0..self.seeds.len())].clone();
        for _ in 0..self.rng.random_range(1..=8) {
            self.mutate(&mut input);
        }
        input
    }

    fn mutate(&mut self, input: &mut Vec<u8>) {
        let rng = &mut self.rng;
        let at = |rng: &mut StdRng, len: usize| rng.random_range(0..=len);
        match rng.random_range(0..7) {
            0 if !input.is_empty() => {
                let i = rng.random_range(0..input.len());
                input[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let i = at(rng, input.len());
                input.insert(i, rng.random());
            }
            2 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())].as_bytes();
                let i = at(rng, input.len());
                input.splice(i..i, token.iter().copied());
            }
            3 if !input.is_empty() => {
                let start = rng.random_range(0..input.len());
                let end = (start + rng.random_range(1..=64)).min(input.len());
                input.drain(start..end);
            }
            4 if !input.is_empty() => {
                let start = rng.random_range(0..input.len());
                let end = (start + rng.random_range(1..=64)).min(input.len());
                let copy = input[start..end].to_vec();
                let i = at(rng, input.len());
                input.splice(i..i, copy);
            }
            5 => {
                let other = &self.seeds[rng.random_range(0..self.seeds.len())];
                let from = at(rng, other.len());
                let i = at(rng, input.len());
                input.truncate(i);
                input.extend_from_slice(&other[from..]);
            }
            _ if !input.is_empty() => {
                // A "interesting" byte: a quote, a brace, a newline, a high byte.
                let i = rng.random_range(0..input.len());
                input[i] =
                    [b'"', b'{', b'}', b'\n', b'\\', 0xff, 0xc3, b'0'][rng.random_range(0..8)];
            }
            _ => {}
        }
    }
}

fn text(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

/// The first half of the input and the rest (two strings for two-argument parsers).
fn halves(input: &[u8]) -> (String, String) {
    let cut = input.len() / 2;
    (text(&input[..cut]), text(&input[cut..]))
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn lines_of(path: &Path, limit: usize) -> Vec<Vec<u8>> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .take(limit)
                .map(|l| l.as_bytes().to_vec())
                .collect()
        })
        .unwrap_or_default()
}

/// Up to `limit` lines of a shared eval sample, when the shared data is present.
fn shared_lines(file: &str, limit: usize) -> Vec<Vec<u8>> {
    lines_of(&shared_data_root().join("eval").join(file), limit)
}

struct Target {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    run: Box<dyn Fn(&[u8])>,
}

fn targets(scratch: &Path) -> Vec<Target> {
    let paragraphs = lines_of(&repo("data/wikipedia-sample/heldout.wikiextractor"), 40);
    let wiki_doc = std::fs::read(repo("data/wikipedia-sample/heldout.wikiextractor"))
        .map(|bytes| bytes[..bytes.len().min(4000)].to_vec())
        .unwrap();
    let answers: Vec<Vec<u8>> = [
        "Let me think. \\mask{the river Thames}",
        "\\mask{Paris}",
        "\\boxed{42}",
        "so the answer is \\boxed{\\frac{1}{2}}",
        "The answer is (B).",
        "Answer: C",
        "#### 1,234",
        "$3.50 each, so 7",
        "\\boxed{\\text{(A)}}",
        "x = \\dfrac12 and 0.5",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain(paragraphs.iter().take(5).cloned())
    .collect();
    let benchmark_seeds: Vec<Vec<u8>> = [
        r#"{"id": "m1", "subject": "s", "question": "q?", "choices": ["a", "b", "c", "d"], "answer": 1, "answer_letter": "B"}"#,
        r#"{"question_id": 1, "question": "q", "options": ["a", "b", "c"], "answer": "C", "answer_index": 2, "category": "c"}"#,
        r#"{"uuid": "u", "question": "q", "options": ["a", "b"], "answer": "b", "answer_letter": "B", "field": "f"}"#,
        r#"{"id": "a1", "question": {"stem": "s", "choices": [{"text": "t", "label": "A"}, {"text": "u", "label": "B"}]}, "answerKey": "B"}"#,
        r#"{"id": "g1", "question": "q", "answer": "so 3 + 4 = <<3+4=7>>7\n#### 7"}"#,
        r#"{"unique_id": "p1", "problem": "p", "solution": "\\boxed{\\frac{1}{2}}", "answer": "\\frac{1}{2}"}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain(
        [
            "mmlu.sample.jsonl", "mmlu_pro.sample.jsonl", "supergpqa.sample.jsonl",
            "arc_challenge.sample.jsonl", "gsm8k.sample.jsonl", "math500.sample.jsonl",
        ]
        .iter()
        .flat_map(|f| shared_lines(f, 3)),
    )
    .collect();
    let corpus_seeds = vec![
        wiki_doc.clone(),
        b" = Title = \n\n A first paragraph of the article with words .\n = = Section = = \n Another one here .\n".to_vec(),
        b"Plain text paragraph one with some words.\n\nParagraph two.\n".to_vec(),
        b"{\"id\": \"a\", \"text\": \"One paragraph.\\n\\nAnother paragraph here.\"}\n{\"text\": \"x\"}\n".to_vec(),
    ];
    let config_toml = std::fs::read(repo("configs/tiny-cpu.toml")).unwrap();
    let config_json = std::fs::read(repo("models/pretrainzero-wiki-tiny/config.json")).unwrap();
    let model_seed = tiny_model_folder(&scratch.join("seed-model"));

    let scratch = scratch.to_path_buf();
    let file = move |name: &str, bytes: &[u8]| {
        let path = scratch.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let corpus_file = file.clone();
    let benchmark_file = file.clone();
    let model_dir = model_seed.parent().unwrap().join("fuzzed-model");
    std::fs::create_dir_all(&model_dir).unwrap();
    std::fs::copy(
        model_seed.join("config.json"),
        model_dir.join("config.json"),
    )
    .unwrap();
    let safetensors_seed = std::fs::read(model_seed.join("model.safetensors")).unwrap();

    vec![
        Target {
            name: "mask/boxed extraction + span rules",
            seeds: answers.clone(),
            run: Box::new(|input| {
                let (paragraph, response) = halves(input);
                let _ = last_braced(&response, "mask");
                let _ = last_braced(&response, "boxed");
                let rules = SpanRules {
                    whole_words: input.len() % 2 == 0,
                    ..SpanRules::default()
                };
                let _ = rules.mask_from_response(&paragraph, &response);
                let _ = exact_match(&paragraph, &response, input.len() % 3 == 0);
            }),
        },
        Target {
            name: "multiple-choice extraction",
            seeds: answers.clone(),
            run: Box::new(|input| {
                let response = text(input);
                for options in [1, 4, 10, 26] {
                    let _ = extract_choice(&response, options);
                }
            }),
        },
        Target {
            name: "gsm8k numbers",
            seeds: answers.clone(),
            run: Box::new(|input| {
                let response = text(input);
                let _ = extract_gsm8k(&response);
                let _ = gsm8k_gold(&response);
                for number in numbers_in(&response) {
                    let _ = parse_number(&number);
                }
            }),
        },
        Target {
            name: "math answer normalise/equal",
            seeds: answers,
            run: Box::new(|input| {
                let (a, b) = halves(input);
                let _ = normalize(&a);
                let _ = numeric_value(&b);
                let _ = math_equal(&a, &b);
            }),
        },
        Target {
            name: "benchmark jsonl (6 tasks)",
            seeds: benchmark_seeds,
            run: Box::new(move |input| {
                let path = benchmark_file("bench.jsonl", input);
                for task in [
                    BenchmarkTask::Mmlu,
                    BenchmarkTask::MmluPro,
                    BenchmarkTask::Supergpqa,
                    BenchmarkTask::Arc,
                    BenchmarkTask::Gsm8k,
                    BenchmarkTask::Math500,
                ] {
                    let _ = load_benchmark(task, &path);
                }
            }),
        },
        corpus_target(
            "corpus: wikiextractor",
            "c.wikiextractor",
            Some(CorpusFormat::WikiExtractor),
            &corpus_seeds,
            corpus_file.clone(),
        ),
        corpus_target(
            "corpus: wikitext",
            "c.raw",
            Some(CorpusFormat::WikiText),
            &corpus_seeds,
            corpus_file.clone(),
        ),
        corpus_target(
            "corpus: plain text",
            "c.txt",
            Some(CorpusFormat::PlainText),
            &corpus_seeds,
            corpus_file.clone(),
        ),
        corpus_target(
            "corpus: jsonl",
            "c.jsonl",
            Some(CorpusFormat::Jsonl {
                text_field: "text".into(),
            }),
            &corpus_seeds,
            corpus_file.clone(),
        ),
        corpus_target(
            "corpus: format detection",
            "c.detect",
            None,
            &corpus_seeds,
            corpus_file,
        ),
        Target {
            name: "run config TOML + --set",
            seeds: vec![config_toml],
            run: Box::new(|input| {
                let (toml, set) = halves(input);
                let _ = TrainConfig::from_toml(&text(input), "fuzz.toml", &[]);
                let _ = TrainConfig::from_toml(&toml, "fuzz.toml", &[set]);
            }),
        },
        Target {
            name: "model config.json",
            seeds: vec![config_json],
            run: Box::new(|input| {
                if let Ok(value) = serde_json::from_slice(input) {
                    let _ = ModelConfig::from_json(value, Path::new("fuzz/config.json"));
                }
            }),
        },
        Target {
            name: "safetensors model file",
            seeds: vec![safetensors_seed],
            run: Box::new(move |input| {
                std::fs::write(model_dir.join("model.safetensors"), input).unwrap();
                let _ = PretrainedModel::<Cpu>::load(&model_dir, &Default::default());
            }),
        },
    ]
}

/// One corpus reader: every input is written as `name` and read to the end; every
/// second input gzipped (`name.gz`), every tenth as damaged gzip.
fn corpus_target(
    title: &'static str,
    name: &'static str,
    format: Option<CorpusFormat>,
    seeds: &[Vec<u8>],
    write: impl Fn(&str, &[u8]) -> PathBuf + 'static,
) -> Target {
    let count = std::cell::Cell::new(0usize);
    Target {
        name: title,
        seeds: seeds.to_vec(),
        run: Box::new(move |input| {
            let n = count.get();
            count.set(n + 1);
            let path = if n % 2 == 0 {
                write(name, input)
            } else {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(input).unwrap();
                let mut gzipped = gz.finish().unwrap();
                if n % 10 == 1 {
                    let i = input.len() % gzipped.len();
                    gzipped[i] ^= 0x5a;
                }
                write(&format!("{name}.gz"), &gzipped)
            };
            let spec = CorpusSpec {
                path,
                format: format.clone(),
                text_field: "text".into(),
                rules: ParagraphRules::default(),
            };
            if let Ok(paragraphs) = spec.open() {
                paragraphs.for_each(drop);
            }
        }),
    }
}

/// A model folder (config.json + model.safetensors) small enough to load a million
/// times.
fn tiny_model_folder(dir: &Path) -> PathBuf {
    let config = ModelConfig::from_json(
        serde_json::json!({"model_type": "qwen3", "vocab_size": 16, "hidden_size": 8,
            "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 1, "head_dim": 4, "tie_word_embeddings": true}),
        Path::new("fuzz"),
    )
    .unwrap();
    let model = pretrainzero::models::random_decoder::<Cpu>(&config, 1, &Default::default());
    pretrainzero::models::save_pretrained(
        &model,
        &config,
        None,
        dir,
        pretrainzero::models::WeightDtype::F32,
    )
    .unwrap();
    dir.to_path_buf()
}

#[test]
fn fuzz_parsers_never_panic() {
    let inputs: usize = std::env::var("PRETRAINZERO_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let seed: u64 = std::env::var("PRETRAINZERO_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let only = std::env::var("PRETRAINZERO_FUZZ_ONLY").ok();
    let scratch = ScratchDir::new("fuzz");
    // The seeds are valid inputs, so mutations start from inputs that parse (a target
    // whose every input is rejected at the first byte would test little).
    TrainConfig::load(&repo("configs/tiny-cpu.toml"), &[]).unwrap();
    ModelConfig::from_file(&repo("models/pretrainzero-wiki-tiny/config.json")).unwrap();
    let seed_model = tiny_model_folder(&scratch.0.join("check-model"));
    PretrainedModel::<Cpu>::load(&seed_model, &Default::default()).unwrap();
    println!("fuzzing {inputs} inputs per parser, seed {seed}");
    println!("| parser | seeds | inputs | panics | seconds |");
    println!("|---|---:|---:|---:|---:|");
    let mut total_panics = 0;
    for (index, target) in targets(&scratch.0).into_iter().enumerate() {
        if only
            .as_deref()
            .is_some_and(|name| !target.name.contains(name))
        {
            continue;
        }
        let mut mutator = Mutator {
            rng: StdRng::seed_from_u64(seed ^ (index as u64) << 32),
            seeds: target.seeds.clone(),
        };
        let started = Instant::now();
        let mut panics = 0;
        for _ in 0..inputs {
            let input = mutator.next();
            if catch_unwind(AssertUnwindSafe(|| (target.run)(&input))).is_err() {
                let crash = scratch.0.join(format!("crash-{index}-{panics}"));
                std::fs::write(&crash, &input).unwrap();
                eprintln!("{}: panic on input {:02x?}", target.name, input);
                panics += 1;
                if panics == 5 {
                    break;
                }
            }
        }
        println!(
            "| {} | {} | {inputs} | {panics} | {:.1} |",
            target.name,
            target.seeds.len(),
            started.elapsed().as_secs_f64()
        );
        total_panics += panics;
    }
    assert_eq!(total_panics, 0, "parsers panicked (inputs above)");
}
