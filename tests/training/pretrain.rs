//! One pretraining step lowers the loss on a fixed batch; an interrupted run resumed
//! from its checkpoint continues exactly like an uninterrupted one.

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::AdamWConfig;
use burn::tensor::{Int, Tensor};
use pretrainzero::data::tokenizer_training::train_bpe_tokenizer;
use pretrainzero::data::{CorpusSpec, ParagraphRules, SplitRule};
use pretrainzero::models::{
    random_decoder, score_sequence, ComputeDtype, Decoder, ModelConfig, PretrainedModel,
    TextTokenizer,
};
use pretrainzero::optim::BackwardShards;
use pretrainzero::policy::prompts::{PromptTemplates, MODEL_TEMPLATES_FILE};
use pretrainzero::pretrain::loss::next_token_loss;
use pretrainzero::pretrain::trainer::{train_step, ModelInit};
use pretrainzero::pretrain::{
    run_pretraining, GivenExamples, PackedTokenStream, PredictorExample, PretrainConfig,
    StreamPosition, TaskLoss, TaskMix, TokenChunk, DEFAULT_PREDICTOR_SHARE, REPEAT_WINDOW_WORDS,
};

use crate::common::ScratchDir;
use crate::{metrics, Cpu};

/// The shipped Wikipedia sample, default paragraph rules.
pub(crate) fn sample_corpus() -> CorpusSpec {
    CorpusSpec {
        path: crate::wikipedia_sample(),
        format: None,
        text_field: "text".into(),
        rules: ParagraphRules::default(),
    }
}

/// The article split the stream tests use (10 % of articles held out).
pub(crate) fn sample_split() -> SplitRule {
    SplitRule {
        seed: 9,
        validation_fraction: 0.1,
    }
}

fn sample_texts(n: usize) -> Vec<String> {
    sample_corpus()
        .open()
        .unwrap()
        .take(n)
        .map(|p| p.text)
        .collect()
}

/// A mix of `fraction` task examples whose loss counts `loss`, every other field as
/// the `pretrain` command's defaults set it: spans of 1–3 words, whole paragraphs as
/// context, an even split between the roles, no repeated paragraphs, examples packed
/// like plain text. A test about one field sets it with struct-update syntax.
pub(crate) fn task_mix(fraction: f64, loss: TaskLoss) -> TaskMix {
    TaskMix {
        fraction,
        max_span_words: 3,
        loss,
        context_words: None,
        predictor_share: DEFAULT_PREDICTOR_SHARE,
        repeat_fraction: 0.0,
        whole_examples: false,
    }
}

/// End-of-text in the streams of the stream tests.
pub(crate) const SAMPLE_EOS: u32 = 0;

/// A token stream of the sample corpus in 256-token sequences, with `SAMPLE_EOS`
/// between paragraphs and paragraph order `shuffle_seed`.
pub(crate) fn sample_stream(
    tokenizer: &TextTokenizer,
    mix: TaskMix,
    shuffle_seed: u64,
) -> PackedTokenStream<'_> {
    PackedTokenStream::new(
        sample_corpus(),
        sample_split(),
        tokenizer,
        SAMPLE_EOS,
        256,
        500,
        shuffle_seed,
        mix,
        StreamPosition::default(),
    )
}

/// The documents of a token stream (split at `SAMPLE_EOS`) but the last, which the end
/// of the stream may cut.
fn ended_documents(tokens: &[u32]) -> Vec<&[u32]> {
    let mut documents: Vec<&[u32]> = tokens.split(|&t| t == SAMPLE_EOS).collect();
    documents.pop();
    documents
}

pub(crate) fn small_tokenizer(dir: &Path) -> PathBuf {
    train_bpe_tokenizer(sample_texts(300).into_iter(), 512, dir).unwrap();
    dir.join("tokenizer.json")
}

#[test]
fn one_step_lowers_the_loss_on_a_fixed_batch() {
    let scratch = ScratchDir::new("one-step");
    let tokenizer = TextTokenizer::from_file(&small_tokenizer(&scratch.0)).unwrap();
    let config = ModelConfig::from_json(
        serde_json::json!({"model_type": "qwen3", "vocab_size": 512, "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
            "tie_word_embeddings": true}),
        Path::new("test"),
    )
    .unwrap();
    let device = Default::default();
    let model: Decoder<Autodiff<Cpu>> = random_decoder(&config, 3, &device);
    let ids: Vec<u32> = sample_texts(20)
        .iter()
        .flat_map(|t| tokenizer.encode(t, false).unwrap())
        .collect();
    let batch: Vec<TokenChunk> = ids
        .chunks_exact(33)
        .take(4)
        .map(|chunk| TokenChunk::scored_everywhere(chunk.to_vec()))
        .collect();
    let before = next_token_loss(&model, &batch, &device).into_scalar();
    // Untrained: close to uniform over the vocabulary.
    assert!(
        (before - (512f32).ln()).abs() < 0.5,
        "initial loss {before}"
    );
    let mut optimizer = AdamWConfig::new().init::<Autodiff<Cpu>, Decoder<Autodiff<Cpu>>>();
    let (model, outcome) = train_step(
        model,
        &mut optimizer,
        &[batch.clone()],
        BackwardShards::new(1),
        1e-2,
        1.0,
        &device,
    );
    assert!(
        (outcome.loss - before as f64).abs() < 1e-5,
        "the step reports the loss it trained on"
    );
    assert!(outcome.grad_norm > 0.0);
    let after = next_token_loss(&model, &batch, &device).into_scalar();
    assert!(after < before - 0.05, "loss {before} → {after}");
}

pub(crate) fn config(tokenizer: PathBuf) -> PretrainConfig {
    PretrainConfig {
        corpus: crate::wikipedia_sample(),
        min_words: 12,
        init: ModelInit::Preset {
            name: "tiny".into(),
            tokenizer,
        },
        seq_len: 32,
        batch_size: 2,
        grad_accumulation: 2,
        steps: 4,
        lr: 1e-3,
        warmup_steps: 1,
        min_lr_ratio: 0.1,
        weight_decay: 0.01,
        residual_dropout: 0.0,
        beta2: 0.95,
        max_grad_norm: 1.0,
        validation_fraction: 0.1,
        validation_paragraphs: 20,
        validate_every: 4,
        checkpoint_every: 2,
        keep_checkpoints: 5,
        shuffle_buffer: 500,
        task_mix: task_mix(0.5, TaskLoss::Whole),
        given_predictor_examples: None,
        prompt_templates: PromptTemplates::default(),
        seed: 9,
        data_seed: None,
        export_dtype: "float32".into(),
        dtype: ComputeDtype::F32,
        max_consecutive_nonfinite: 3,
        deterministic: false,
    }
}

#[test]
fn resumed_run_matches_uninterrupted_run() {
    let scratch = ScratchDir::new("resume");
    let tokenizer = small_tokenizer(&scratch.0.join("tokenizer"));
    let device = Default::default();
    let full = scratch.0.join("full");
    // Task examples in the suffix-first predictor format, which the exports must carry.
    let suffix_first = crate::prompt_templates::suffix_first();
    let run_config = PretrainConfig {
        prompt_templates: suffix_first.clone(),
        ..config(tokenizer.clone())
    };
    let summary = run_pretraining::<Cpu>(Some(run_config), &full, &device).unwrap();
    assert_eq!(summary.steps, 4);
    let full_metrics = metrics(&full);
    assert_eq!(full_metrics.len(), 4);

    // Simulate a crash right after step 2: its checkpoint exists, later ones do not.
    let interrupted = scratch.0.join("interrupted");
    std::fs::create_dir_all(interrupted.join("checkpoints")).unwrap();
    std::fs::copy(
        full.join("pretrain_config.json"),
        interrupted.join("pretrain_config.json"),
    )
    .unwrap();
    copy_dir(
        &full.join("checkpoints/step-0000002"),
        &interrupted.join("checkpoints/step-0000002"),
    );
    let first_two: Vec<String> = full_metrics[..2].iter().map(|m| m.to_string()).collect();
    std::fs::write(
        interrupted.join("metrics.jsonl"),
        first_two.join("\n") + "\n",
    )
    .unwrap();

    // A fresh run may not reuse the folder; --resume continues it.
    let refused =
        run_pretraining::<Cpu>(Some(config(tokenizer)), &interrupted, &device).unwrap_err();
    assert!(refused.to_string().contains("--resume"), "{refused}");
    run_pretraining::<Cpu>(None, &interrupted, &device).unwrap();
    let resumed = metrics(&interrupted);
    assert_eq!(resumed.len(), 4);
    // ndarray's multi-threaded reductions are not bitwise reproducible: two
    // uninterrupted runs already differ by ~1e-7 relative at step 2. "Same" is
    // therefore a 1e-5 relative tolerance; a resume that lost optimizer state, data
    // position or schedule would be off by orders of magnitude more.
    for step in 2..4 {
        assert_eq!(resumed[step]["lr"], full_metrics[step]["lr"]);
        for key in ["loss", "grad_norm", "val_loss"] {
            let (Some(a), Some(b)) = (
                resumed[step][key].as_f64(),
                full_metrics[step][key].as_f64(),
            ) else {
                assert_eq!(
                    resumed[step].get(key),
                    full_metrics[step].get(key),
                    "step {} {key}",
                    step + 1
                );
                continue;
            };
            assert!(
                (a - b).abs() <= 1e-5 * b.abs(),
                "step {} {key}: {a} vs {b}",
                step + 1
            );
        }
    }

    // Both exports are the same model, and the HF folder loads and scores.
    let a = PretrainedModel::<Cpu>::load(&full.join("final"), &device).unwrap();
    let b = PretrainedModel::<Cpu>::load(&interrupted.join("final"), &device).unwrap();
    for (x, y) in a.model.hf_tensors().iter().zip(b.model.hf_tensors()) {
        let worst = x
            .values
            .iter()
            .zip(&y.values)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max);
        assert!(worst <= 1e-5, "{} differs by {worst} after resume", x.name);
    }
    let ids = a
        .tokenizer
        .as_ref()
        .unwrap()
        .encode("The river flows to the sea.", false)
        .unwrap();
    let scores = score_sequence(&a.model, &ids, &device).unwrap();
    assert!(scores.mean_nll().is_finite());
    // Both exports carry the prompt format their task examples were trained in.
    for run in [&full, &interrupted] {
        assert!(run.join("final").join(MODEL_TEMPLATES_FILE).is_file());
        assert_eq!(
            PromptTemplates::for_model(&run.join("final")).unwrap(),
            suffix_first
        );
    }
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The stream's shuffle seed (`--data-seed`) alone reorders the training paragraphs;
/// the article split has its own seed, so a continued stage keeps its validation side.
#[test]
fn data_seed_reorders_training_paragraphs_only() {
    let scratch = ScratchDir::new("data-seed");
    let tokenizer = TextTokenizer::from_file(&small_tokenizer(&scratch.0)).unwrap();
    let (corpus, split) = (sample_corpus(), sample_split());
    let no_tasks = task_mix(0.0, TaskLoss::Whole);
    let first_chunks = |shuffle_seed: u64| {
        let mut stream = PackedTokenStream::new(
            corpus.clone(),
            split,
            &tokenizer,
            0,
            32,
            500,
            shuffle_seed,
            no_tasks,
            StreamPosition::default(),
        );
        (0..4)
            .map(|_| stream.next_chunk().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(first_chunks(9), first_chunks(9));
    assert_ne!(first_chunks(9), first_chunks(1));
}

/// The runs of scored tokens that an unscored token closes, as index ranges of the
/// joined stream (a run still open at its end is left out).
fn scored_runs(scored: &[bool]) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, &s) in scored.iter().enumerate() {
        match (s, start) {
            (true, None) => start = Some(i),
            (false, Some(from)) => {
                runs.push(from..i);
                start = None;
            }
            _ => {}
        }
    }
    runs
}

fn given_examples() -> Vec<PredictorExample> {
    vec![
        PredictorExample {
            masked: "The castle was built in the [mask] century by the king.".into(),
            answer: "twelfth".into(),
        },
        PredictorExample {
            masked: "Rivers flow into the [mask], which covers most of the planet.".into(),
            answer: "sea".into(),
        },
    ]
}

/// At a fraction of 1 every paragraph is replaced by the next given example, written
/// as the predictor's prompt and the file's answer (tokenized apart, as a drawn
/// predictor example is) and end-of-text, in the file's order and again from its start.
#[test]
fn given_predictor_examples_replace_paragraphs_in_order() {
    let scratch = ScratchDir::new("given-examples");
    let tokenizer = TextTokenizer::from_file(&small_tokenizer(&scratch.0)).unwrap();
    let templates = PromptTemplates::default();
    let expected: Vec<Vec<u32>> = given_examples()
        .iter()
        .map(|example| {
            let prompt = PromptTemplates::fill(&templates.predictor_direct, &example.masked);
            let answer = templates.predictor_answer(&example.answer, &example.masked);
            assert_eq!(answer, format!("{}}}", example.answer));
            let mut ids = tokenizer.encode(&prompt, false).unwrap();
            ids.extend(tokenizer.encode(&answer, false).unwrap());
            ids
        })
        .collect();
    let mut stream = sample_stream(&tokenizer, task_mix(0.0, TaskLoss::Whole), 3)
        .with_given_examples(1.0, given_examples());
    let tokens: Vec<u32> = (0..6)
        .flat_map(|_| stream.next_chunk().unwrap().tokens)
        .collect();
    let documents = ended_documents(&tokens);
    assert!(documents.len() >= 4, "{} documents", documents.len());
    for (index, document) in documents.iter().enumerate() {
        assert_eq!(
            *document,
            expected[index % 2].as_slice(),
            "document {index}"
        );
    }
    assert!(stream.position().given_consumed >= documents.len() as u64);
}

/// A stream restarted from its position continues with the same given examples as
/// the uninterrupted one, so a resumed run does not start the file over.
#[test]
fn given_predictor_examples_resume_where_they_stopped() {
    let scratch = ScratchDir::new("given-resume");
    let tokenizer = TextTokenizer::from_file(&small_tokenizer(&scratch.0)).unwrap();
    let mix = task_mix(0.5, TaskLoss::Whole);
    let mut stream = sample_stream(&tokenizer, mix, 4).with_given_examples(0.5, given_examples());
    for _ in 0..3 {
        stream.next_chunk().unwrap();
    }
    let position = stream.position().clone();
    assert!(position.given_consumed > 0, "no given example in 3 chunks");
    let uninterrupted: Vec<TokenChunk> = (0..3).map(|_| stream.next_chunk().unwrap()).collect();
    let mut resumed = PackedTokenStream::new(
        sample_corpus(),
        sample_split(),
        &tokenizer,
        SAMPLE_EOS,
        256,
        500,
        4,
        mix,
        position,
    )
    .with_given_examples(0.5, given_examples());
    let continued: Vec<TokenChunk> = (0..3).map(|_| resumed.next_chunk().unwrap()).collect();
    assert_eq!(uninterrupted, continued);
}

/// A run records its predictor-examples file by digest: resuming with the file as it
/// was continues, resuming after it changed is refused with the file named, and the
/// run's checkpoints are left as they were.
#[test]
fn a_changed_predictor_examples_file_is_refused_on_resume() {
    let scratch = ScratchDir::new("given-changed");
    let tokenizer = small_tokenizer(&scratch.0.join("tokenizer"));
    let file = scratch.0.join("examples.jsonl");
    let lines: Vec<String> = given_examples()
        .iter()
        .map(|e| format!("{{\"masked\": {:?}, \"answer\": {:?}}}", e.masked, e.answer))
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let run = scratch.0.join("run");
    let run_config = PretrainConfig {
        steps: 2,
        given_predictor_examples: Some(GivenExamples::record(&file, 0.5).unwrap()),
        ..config(tokenizer)
    };
    let device = Default::default();
    run_pretraining::<Cpu>(Some(run_config), &run, &device).unwrap();
    // Unchanged: the finished run resumes (and has nothing left to do).
    run_pretraining::<Cpu>(None, &run, &device).unwrap();
    let checkpoints = std::fs::read_dir(run.join("checkpoints")).unwrap().count();
    std::fs::write(&file, lines[..1].join("\n")).unwrap();
    let error = format!(
        "{:#}",
        run_pretraining::<Cpu>(None, &run, &device).unwrap_err()
    );
    assert!(
        error.contains("examples.jsonl: the predictor examples changed since the run started"),
        "{error}"
    );
    let after = std::fs::read_dir(run.join("checkpoints")).unwrap().count();
    assert_eq!(checkpoints, after);
}

/// The predictor share splits the task examples between the two formats: the
/// answers (scored alone under the answer-only loss) follow the predictor's opening
/// token `\boxed{` or the generator's `\mask{`, all of one kind at shares 1 and 0,
/// and both kinds at an even share.
#[test]
fn predictor_share_splits_task_examples_between_the_roles() {
    let scratch = ScratchDir::new("predictor-share");
    let tokenizer = TextTokenizer::from_file(&small_tokenizer(&scratch.0)).unwrap();
    let boxed = tokenizer.token_to_id("\\boxed{").unwrap();
    let mask = tokenizer.token_to_id("\\mask{").unwrap();
    let openings = |predictor_share: f64, chunks: usize| {
        let mix = TaskMix {
            predictor_share,
            ..task_mix(1.0, TaskLoss::Answer)
        };
        let mut stream = PackedTokenStream::new(
            sample_corpus(),
            sample_split(),
            &tokenizer,
            0,
            128,
            500,
            5,
            mix,
            StreamPosition::default(),
        );
        let chunks: Vec<_> = (0..chunks).map(|_| stream.next_chunk().unwrap()).collect();
        let tokens: Vec<u32> = chunks.iter().flat_map(|c| c.tokens.clone()).collect();
        let scored: Vec<bool> = chunks.iter().flat_map(|c| c.scored.clone()).collect();
        // The token before each scored run opens the answer.
        let (mut predictor, mut generator) = (0, 0);
        for run in scored_runs(&scored) {
            match tokens[run.start - 1] {
                t if t == boxed => predictor += 1,
                t if t == mask => generator += 1,
                other => panic!("an answer opened by token {other}"),
            }
        }
        (predictor, generator)
    };
    let (predictor, generator) = openings(1.0, 40);
    assert!(
        predictor >= 10 && generator == 0,
        "{predictor} / {generator}"
    );
    let (predictor, generator) = openings(0.0, 40);
    assert!(
        predictor == 0 && generator >= 10,
        "{predictor} / {generator}"
    );
    // An even share gives each role between 30 % and 70 % of some 60 examples (the
    // share read as 0.2 or 0.8 would fall outside).
    let (predictor, generator) = openings(0.5, 160);
    let total = predictor + generator;
    assert!(total >= 40, "{total} examples");
    assert!(
        (3 * total..=7 * total).contains(&(10 * predictor)),
        "{predictor} predictor examples of {total}"
    );
}

/// With every plain paragraph repeated, each document of the stream is a window of at
/// most `REPEAT_WINDOW_WORDS` consecutive words of a corpus paragraph, then the same
/// words again.
#[test]
fn repeated_paragraphs_are_a_window_of_their_words_written_twice() {
    let scratch = ScratchDir::new("repeat");
    let tokenizer = TextTokenizer::from_file(&small_tokenizer(&scratch.0)).unwrap();
    let mix = TaskMix {
        repeat_fraction: 1.0,
        ..task_mix(0.0, TaskLoss::Whole)
    };
    let mut stream = sample_stream(&tokenizer, mix, 3);
    let chunks: Vec<TokenChunk> = (0..12).map(|_| stream.next_chunk().unwrap()).collect();
    let tokens: Vec<u32> = chunks.into_iter().flat_map(|c| c.tokens).collect();
    let paragraphs: Vec<Vec<String>> = sample_corpus()
        .open()
        .unwrap()
        .map(|p| p.text.split_whitespace().map(str::to_string).collect())
        .collect();
    let whole = ended_documents(&tokens);
    assert!(whole.len() >= 10, "only {} documents", whole.len());
    for ids in whole {
        let text = tokenizer.decode(ids, false).unwrap();
        let words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        let half = words.len() / 2;
        assert!(
            words.len() % 2 == 0 && half <= REPEAT_WINDOW_WORDS,
            "{text}"
        );
        assert_eq!(words[..half], words[half..], "{text}");
        assert!(
            paragraphs
                .iter()
                .any(|p| p.windows(half).any(|w| w == &words[..half])),
            "not a window of a corpus paragraph: {text}"
        );
    }
}

/// Repeats change the plain paragraphs only: with the same seed, a stream with task
/// examples and every plain paragraph repeated has the task examples of the stream
/// without repeats, in the same places, and in place of each plain paragraph a window
/// of it written twice.
#[test]
fn repeats_leave_the_task_examples_in_place() {
    let scratch = ScratchDir::new("repeat-tasks");
    let tokenizer = TextTokenizer::from_file(&small_tokenizer(&scratch.0)).unwrap();
    let documents = |repeat_fraction: f64| {
        let mix = TaskMix {
            repeat_fraction,
            ..task_mix(0.5, TaskLoss::Whole)
        };
        let mut stream = sample_stream(&tokenizer, mix, 7);
        let tokens: Vec<u32> = (0..16)
            .flat_map(|_| stream.next_chunk().unwrap().tokens)
            .collect();
        ended_documents(&tokens)
            .into_iter()
            .map(|ids| tokenizer.decode(ids, false).unwrap())
            .collect::<Vec<String>>()
    };
    let (plain, repeated) = (documents(0.0), documents(1.0));
    let words = |text: &str| {
        text.split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (mut tasks, mut repeats) = (0, 0);
    for (before, after) in plain.iter().zip(&repeated) {
        if before.contains("\\boxed{") || before.contains("\\mask{") {
            assert_eq!(before, after);
            tasks += 1;
            continue;
        }
        let (paragraph, twice) = (words(before), words(after));
        let half = twice.len() / 2;
        assert_eq!(twice[..half], twice[half..], "{after}");
        assert!(
            paragraph.windows(half).any(|w| w == &twice[..half]),
            "{after} is not a window of {before}"
        );
        repeats += 1;
    }
    assert!(
        tasks >= 3 && repeats >= 3,
        "{tasks} task examples, {repeats} repeats"
    );
}

/// With whole examples, no task example is cut by the end of a sequence, and no text
/// is lost to keep them whole: each sequence, split at end-of-text, holds whole task
/// examples (a piece with the answer's opening token starts with the prompt's first
/// words and ends with end-of-text inside the sequence), some sequences open with an
/// example after one that ends in a cut plain paragraph (a gap was filled), and
/// without the task examples the stream is the corpus paragraphs, each whole, the
/// ones that filled a gap included. Under the answer-only loss the flags move with
/// their tokens: an example's prompt up to its opening token is unscored, everything
/// else scored. The same stream packed like plain text cuts examples.
#[test]
fn whole_examples_never_cross_a_sequence_end_and_lose_no_text() {
    let scratch = ScratchDir::new("whole-examples");
    let tokenizer = TextTokenizer::from_file(&small_tokenizer(&scratch.0)).unwrap();
    let openings = [
        tokenizer.token_to_id("\\boxed{").unwrap(),
        tokenizer.token_to_id("\\mask{").unwrap(),
    ];
    let templates = PromptTemplates::default();
    fn first_words(template: &str) -> Vec<&str> {
        template.split_whitespace().take(4).collect()
    }
    let prompt_starts = [
        first_words(&templates.predictor_direct),
        first_words(&templates.generator_direct),
    ];
    let paragraphs: std::collections::HashSet<String> = sample_corpus()
        .open()
        .unwrap()
        .map(|p| p.text.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let sequences = |whole_examples: bool| {
        let mix = TaskMix {
            whole_examples,
            ..task_mix(0.6, TaskLoss::Answer)
        };
        let mut stream = sample_stream(&tokenizer, mix, 4);
        (0..150)
            .map(|_| stream.next_chunk().unwrap())
            .collect::<Vec<_>>()
    };
    // Pieces of a sequence (tokens and flags): runs ended by end-of-text (kept), then
    // the unended tail.
    let pieces = |sequence: &TokenChunk| -> Vec<(Vec<u32>, Vec<bool>)> {
        let mut out = Vec::new();
        let mut start = 0;
        for (i, &t) in sequence.tokens.iter().enumerate() {
            if t == SAMPLE_EOS || i + 1 == sequence.tokens.len() {
                out.push((
                    sequence.tokens[start..=i].to_vec(),
                    sequence.scored[start..=i].to_vec(),
                ));
                start = i + 1;
            }
        }
        out
    };
    let is_example = |piece: &[u32]| piece.iter().any(|t| openings.contains(t));
    let is_whole_example = |piece: &[u32]| {
        let text = tokenizer.decode(piece, false).unwrap();
        let words: Vec<&str> = text.split_whitespace().collect();
        piece.last() == Some(&SAMPLE_EOS)
            && prompt_starts.iter().any(|start| words.starts_with(start))
    };

    let cut_examples = |sequences: &[TokenChunk]| {
        sequences
            .iter()
            .flat_map(|s| pieces(s))
            .filter(|(ids, _)| is_example(ids) && !is_whole_example(ids))
            .count()
    };
    let whole = sequences(true);
    let examples = whole
        .iter()
        .flat_map(|s| pieces(s))
        .filter(|(ids, _)| is_example(ids))
        .count();
    assert!(examples >= 10, "only {examples} task examples");
    assert_eq!(cut_examples(&whole), 0);
    assert!(
        cut_examples(&sequences(false)) >= 3,
        "packing like plain text cuts examples"
    );
    let filled_gaps = whole
        .windows(2)
        .filter(|pair| {
            let (before, after) = (pieces(&pair[0]), pieces(&pair[1]));
            let (last, _) = before.last().unwrap();
            let (first, _) = &after[0];
            !is_example(last) && last.last() != Some(&SAMPLE_EOS) && is_example(first)
        })
        .count();
    assert!(filled_gaps >= 3, "{filled_gaps} gaps filled");
    for (ids, scored) in whole.iter().flat_map(|s| pieces(s)) {
        let unscored = match ids.iter().position(|t| openings.contains(t)) {
            Some(opening) => opening + 1,
            None => 0,
        };
        assert!(
            scored[..unscored].iter().all(|&s| !s) && scored[unscored..].iter().all(|&s| s),
            "flags {scored:?} for a piece whose prompt has {unscored} tokens"
        );
    }

    // Drop the examples and join what is left: every document but the last (cut by
    // the end of the stream) is a corpus paragraph.
    let plain: Vec<u32> = whole
        .iter()
        .flat_map(|s| pieces(s))
        .filter(|(ids, _)| !is_example(ids))
        .flat_map(|(ids, _)| ids)
        .collect();
    let ended = ended_documents(&plain);
    assert!(ended.len() >= 10, "only {} plain documents", ended.len());
    for ids in ended {
        let text = tokenizer.decode(ids, false).unwrap();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(paragraphs.contains(&text), "not a corpus paragraph: {text}");
    }
}

/// A configuration saved before the predictor share existed reads as an even split,
/// the mix such runs trained with (and, like every run before the option, packs task
/// examples like plain text).
#[test]
fn a_task_mix_without_predictor_share_reads_as_an_even_split() {
    let mix: TaskMix = serde_json::from_str(r#"{"fraction": 0.6, "max_span_words": 3}"#).unwrap();
    assert_eq!(mix.predictor_share, 0.5);
    assert_eq!(mix.loss, TaskLoss::Whole);
    assert_eq!(mix.context_words, None);
    assert_eq!(mix.repeat_fraction, 0.0);
    assert!(!mix.whole_examples);
}

/// With the answer-only task loss the stream yields the same tokens as with the whole
/// loss, and scores exactly the answers: every scored run is a 1–3-word span, `}`
/// and end-of-text, and everything else (the prompts) is unscored.
#[test]
fn answer_only_task_loss_scores_the_answers_alone() {
    let scratch = ScratchDir::new("answer-loss");
    let tokenizer = TextTokenizer::from_file(&small_tokenizer(&scratch.0)).unwrap();
    let (corpus, split) = (sample_corpus(), sample_split());
    let eos = 0;
    let chunks = |loss: TaskLoss, context_words: Option<usize>| {
        let mix = TaskMix {
            context_words,
            ..task_mix(1.0, loss)
        };
        let mut stream = PackedTokenStream::new(
            corpus.clone(),
            split,
            &tokenizer,
            eos,
            128,
            500,
            5,
            mix,
            StreamPosition::default(),
        );
        (0..40)
            .map(|_| stream.next_chunk().unwrap())
            .collect::<Vec<_>>()
    };
    let whole = chunks(TaskLoss::Whole, None);
    let answer = chunks(TaskLoss::Answer, None);
    assert!(whole.iter().all(|c| c.scored.iter().all(|&s| s)));
    // The stream is one sequence cut into chunks: join them back.
    let tokens: Vec<u32> = answer.iter().flat_map(|c| c.tokens.clone()).collect();
    let scored: Vec<bool> = answer.iter().flat_map(|c| c.scored.clone()).collect();
    assert_eq!(
        tokens,
        whole
            .iter()
            .flat_map(|c| c.tokens.clone())
            .collect::<Vec<_>>()
    );
    let boxed = tokenizer.token_to_id("\\boxed{").unwrap();
    let mask = tokenizer.token_to_id("\\mask{").unwrap();
    let answers: Vec<(usize, &[u32])> = scored_runs(&scored)
        .into_iter()
        .map(|run| (run.start, &tokens[run]))
        .collect();
    assert!(answers.len() >= 10, "{} answers", answers.len());
    let scored_count = scored.iter().filter(|&&s| s).count();
    assert!(
        scored_count * 10 < scored.len(),
        "answers are a small part of the stream: {scored_count} of {}",
        scored.len()
    );
    for (from, ids) in answers {
        // Each scored run is one answer, ended by end-of-text, and the prompt before
        // it (unscored) ends with the format's opening token.
        let (&last, span) = ids.split_last().unwrap();
        assert_eq!(last, eos, "an answer ends with end-of-text");
        let before = tokens[from - 1];
        assert!(
            before == boxed || before == mask,
            "an answer follows the format's opening token, not {before}"
        );
        let text = tokenizer.decode(span, false).unwrap();
        let words = text
            .strip_suffix('}')
            .unwrap_or_else(|| panic!("answer {text:?} has no closing brace"))
            .split_whitespace()
            .count();
        assert!((1..=3).contains(&words), "answer {text:?}");
    }

    // With a context window, every example's paragraph has at most that many words.
    let windowed = chunks(TaskLoss::Whole, Some(10));
    let tokens: Vec<u32> = windowed.iter().flat_map(|c| c.tokens.clone()).collect();
    let text = tokenizer.decode(&tokens, false).unwrap();
    let paragraphs: Vec<&str> = text
        .split("Paragraph: ")
        .skip(1)
        .filter_map(|rest| rest.split_once("\n\n").map(|(paragraph, _)| paragraph))
        .collect();
    assert!(paragraphs.len() >= 10, "{} examples", paragraphs.len());
    for paragraph in paragraphs {
        let words = paragraph.split_whitespace().count();
        assert!((2..=10).contains(&words), "{words} words: {paragraph:?}");
    }
}

/// The pretraining loss with unscored targets is the mean cross-entropy of the scored
/// ones, checked against a log-softmax of the model's logits.
#[test]
fn next_token_loss_averages_the_scored_targets_only() {
    let device = Default::default();
    // Vocabulary of 64.
    let model: Decoder<Cpu> = crate::sharded_backward::small_model().valid();
    let chunks: Vec<TokenChunk> = (0..2)
        .map(|row| TokenChunk {
            tokens: (0..9).map(|i| ((i * 11 + row * 5) % 64) as u32).collect(),
            scored: (0..9).map(|i| (i + row) % 3 == 0).collect(),
        })
        .collect();
    let loss = next_token_loss(&model, &chunks, &device).into_scalar();

    let mut sum = 0.0f64;
    let mut count = 0;
    for chunk in &chunks {
        let inputs: Vec<i64> = chunk.tokens[..8].iter().map(|&t| t as i64).collect();
        let logits = model
            .forward(Tensor::<Cpu, 1, Int>::from_ints(inputs.as_slice(), &device).reshape([1, 8]));
        let logprobs = burn::tensor::activation::log_softmax(logits, 2)
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .unwrap();
        for t in 0..8 {
            if chunk.scored[t + 1] {
                sum -= logprobs[t * 64 + chunk.tokens[t + 1] as usize] as f64;
                count += 1;
            }
        }
    }
    let expected = sum / count as f64;
    assert!(
        (loss as f64 - expected).abs() < 1e-5,
        "loss {loss}, expected {expected}"
    );
}

/// A checkpoint written before the loss flags existed holds leftover tokens without
/// flags; resuming from it scores them all, as that run did.
#[test]
fn a_stream_position_without_loss_flags_resumes_scoring_its_carry() {
    let scratch = ScratchDir::new("old-position");
    let tokenizer = TextTokenizer::from_file(&small_tokenizer(&scratch.0)).unwrap();
    let position: StreamPosition =
        serde_json::from_str(r#"{"epoch": 0, "paragraphs_consumed": 3, "carry": [5, 6, 7]}"#)
            .unwrap();
    let mut stream = PackedTokenStream::new(
        sample_corpus(),
        sample_split(),
        &tokenizer,
        0,
        32,
        500,
        9,
        task_mix(0.0, TaskLoss::Answer),
        position,
    );
    let chunk = stream.next_chunk().unwrap();
    assert_eq!(&chunk.tokens[..3], &[5, 6, 7]);
    assert_eq!(chunk.scored.len(), chunk.tokens.len());
    assert!(
        chunk.scored.iter().all(|&s| s),
        "plain text counts everywhere"
    );
}
