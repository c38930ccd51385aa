//! `pretrainzero data stats` and `pretrainzero tokenizer train`.

use std::path::PathBuf;

use anyhow::Context;

use crate::data::stats::CorpusStats;
use crate::data::tokenizer_training::train_bpe_tokenizer;
use crate::data::{CorpusFormat, CorpusSpec, ParagraphRules, Split, SplitRule};
use crate::models::TextTokenizer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Auto,
    Wikiextractor,
    Wikitext,
    Text,
    Jsonl,
}

/// The corpus options shared by every command that reads paragraphs.
#[derive(Debug, Clone, clap::Args)]
pub struct CorpusArgs {
    /// A corpus file or folder (WikiExtractor, WikiText raw, plain text, JSONL; .gz read transparently).
    #[arg(long)]
    pub corpus: PathBuf,
    #[command(flatten)]
    pub reading: ReadingArgs,
}

/// How a corpus is read into paragraphs (shared by every command that reads one).
#[derive(Debug, Clone, clap::Args)]
pub struct ReadingArgs {
    /// Corpus format.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: FormatArg,
    /// JSONL: the field holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Paragraphs with fewer words are dropped.
    #[arg(long, default_value_t = ParagraphRules::default().min_words)]
    pub min_words: usize,
    /// Paragraphs with more words are dropped.
    #[arg(long)]
    pub max_words: Option<usize>,
}

impl CorpusArgs {
    pub fn spec(&self) -> CorpusSpec {
        self.reading.spec(&self.corpus)
    }
}

impl ReadingArgs {
    pub fn spec(&self, path: &std::path::Path) -> CorpusSpec {
        let format = match self.format {
            FormatArg::Auto => None,
            FormatArg::Wikiextractor => Some(CorpusFormat::WikiExtractor),
            FormatArg::Wikitext => Some(CorpusFormat::WikiText),
            FormatArg::Text => Some(CorpusFormat::PlainText),
            FormatArg::Jsonl => Some(CorpusFormat::Jsonl {
                text_field: self.text_field.clone(),
            }),
        };
        CorpusSpec {
            path: path.to_path_buf(),
            format,
            text_field: self.text_field.clone(),
            rules: ParagraphRules {
                min_words: self.min_words,
                max_words: self.max_words,
            },
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    #[command(subcommand)]
    pub what: DataCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum DataCommand {
    /// Articles, paragraphs, words, tokens and the paragraph length distribution.
    Stats(StatsArgs),
    /// Write the articles of one side of the train/validation split (WikiExtractor format).
    Split(SplitArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct SplitArgs {
    #[command(flatten)]
    pub corpus: CorpusArgs,
    #[arg(long, default_value_t = 0.05)]
    pub validation_fraction: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Which side to write.
    #[arg(long, value_enum, default_value = "validation")]
    pub side: SideArg,
    /// Output file; refuses to overwrite.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SideArg {
    Train,
    Validation,
}

fn split(args: SplitArgs) -> anyhow::Result<()> {
    if args.out.exists() {
        anyhow::bail!(
            "{}: already exists; choose another --out",
            args.out.display()
        );
    }
    let spec = args.corpus.spec();
    let rule = SplitRule {
        seed: args.seed,
        validation_fraction: args.validation_fraction,
    };
    let wanted = match args.side {
        SideArg::Train => Split::Train,
        SideArg::Validation => Split::Validation,
    };
    let mut reader =
        crate::data::CorpusReader::open(&spec.path, spec.format.clone(), &spec.text_field)?;
    let mut text = String::new();
    let mut articles = 0;
    for document in reader.by_ref() {
        if rule.split_of(&document.article_id) == wanted
            && !spec.rules.paragraphs(&document).is_empty()
        {
            text.push_str(&document.to_wikiextractor());
            articles += 1;
        }
    }
    if let Some(summary) = reader.warnings.summary() {
        eprintln!("warning: {summary}");
    }
    crate::models::pretrained::write_atomically(&args.out, text.as_bytes())?;
    println!("wrote {articles} articles to {}", args.out.display());
    Ok(())
}

#[derive(Debug, Clone, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// A tokenizer.json (or a model folder holding one) to count tokens with.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Also report the train/validation split of this seed and fraction.
    #[arg(long, default_value_t = 0.05)]
    pub validation_fraction: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run_data(args: DataArgs) -> anyhow::Result<()> {
    match args.what {
        DataCommand::Stats(args) => stats(args),
        DataCommand::Split(args) => split(args),
    }
}

pub fn load_tokenizer(path: &std::path::Path) -> anyhow::Result<TextTokenizer> {
    let file = if path.is_dir() {
        path.join("tokenizer.json")
    } else {
        path.to_path_buf()
    };
    Ok(TextTokenizer::from_file(&file)?)
}

fn stats(args: StatsArgs) -> anyhow::Result<()> {
    let tokenizer = args.tokenizer.as_deref().map(load_tokenizer).transpose()?;
    let split = SplitRule {
        seed: args.seed,
        validation_fraction: args.validation_fraction,
    };
    let mut stream = args
        .corpus
        .spec()
        .open()
        .with_context(|| format!("opening corpus {}", args.corpus.corpus.display()))?;
    let mut stats = CorpusStats::default();
    let mut validation_paragraphs = 0u64;
    let mut validation_articles = std::collections::HashSet::new();
    for paragraph in stream.by_ref() {
        let tokens = match &tokenizer {
            Some(t) => Some(t.encode(&paragraph.text, false)?.len()),
            None => None,
        };
        if split.split_of(&paragraph.article_id) == Split::Validation {
            validation_paragraphs += 1;
            validation_articles.insert(paragraph.article_id.clone());
        }
        stats.add_paragraph(&paragraph, tokens);
    }
    stats.articles = stream.articles;
    print!("{}", stats.report());
    println!(
        "validation split (seed {}, fraction {}): {} articles, {} paragraphs",
        args.seed,
        args.validation_fraction,
        validation_articles.len(),
        validation_paragraphs
    );
    if let Some(summary) = stream.warnings().summary() {
        eprintln!("warning: {summary}");
    }
    Ok(())
}

#[derive(Debug, Clone, clap::Args)]
pub struct TokenizerArgs {
    #[command(subcommand)]
    pub what: TokenizerCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum TokenizerCommand {
    /// Train a byte-level BPE tokenizer on the corpus paragraphs.
    Train(TrainTokenizerArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct TrainTokenizerArgs {
    #[command(flatten)]
    pub corpus: CorpusArgs,
    #[arg(long)]
    pub vocab_size: usize,
    /// Output folder; refuses to overwrite an existing tokenizer.json.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run_tokenizer(args: TokenizerArgs) -> anyhow::Result<()> {
    let TokenizerCommand::Train(args) = args.what;
    let target = args.out.join("tokenizer.json");
    if target.exists() {
        anyhow::bail!(
            "{}: already exists; choose another --out or remove it",
            target.display()
        );
    }
    let mut stream = args.corpus.spec().open()?;
    let texts: Vec<String> = stream.by_ref().map(|p| p.text).collect();
    if let Some(summary) = stream.warnings().summary() {
        eprintln!("warning: {summary}");
    }
    if texts.is_empty() {
        anyhow::bail!(
            "{}: no paragraphs to train on",
            args.corpus.corpus.display()
        );
    }
    let count = texts.len();
    train_bpe_tokenizer(texts.into_iter(), args.vocab_size, &args.out)?;
    let tokenizer = load_tokenizer(&args.out)?;
    println!(
        "trained on {count} paragraphs: {} tokens → {}",
        tokenizer.vocab_size(),
        target.display()
    );
    Ok(())
}
