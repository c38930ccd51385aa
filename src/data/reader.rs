//! Readers for WikiExtractor output, WikiText raw, plain text and JSONL corpora.
//!
//! Files are streamed line by line (gzip-compressed ones transparently), so memory
//! does not grow with the corpus. Malformed input — a truncated `<doc>`, invalid
//! UTF-8, an empty file, a JSONL line that is not an object with the text field — is
//! skipped with a warning that names the file and line; nothing panics and nothing
//! is dropped silently.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// An article (or whatever unit the format has) with its raw lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Stable identifier: the WikiExtractor `id`, the WikiText title, the JSONL `id`
    /// field (or file:line), or the file path for plain text.
    pub article_id: String,
    pub title: Option<String>,
    /// Source URL where the format has one (WikiExtractor), for attribution.
    pub url: Option<String>,
    /// Body lines, title line excluded; blank lines kept (they separate paragraphs
    /// in plain text and JSONL).
    pub lines: Vec<String>,
    /// WikiExtractor and WikiText write one paragraph per line; plain text and JSONL
    /// separate paragraphs by blank lines.
    pub line_per_paragraph: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorpusFormat {
    /// `<doc id=".." url=".." title="..">` … `</doc>` blocks (WikiExtractor).
    WikiExtractor,
    /// WikiText raw: ` = Title = ` starts an article, ` = = Section = = ` a section.
    WikiText,
    /// Plain text: one file is one document, paragraphs separated by blank lines.
    PlainText,
    /// One JSON object per line; the text is in `text_field`.
    Jsonl { text_field: String },
}

impl CorpusFormat {
    /// Guesses the format of one file from its name and first non-empty line.
    pub fn detect(path: &Path, text_field: &str) -> std::io::Result<Self> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let stem = name.strip_suffix(".gz").unwrap_or(name);
        if stem.ends_with(".jsonl") || stem.ends_with(".json") {
            return Ok(Self::Jsonl {
                text_field: text_field.to_string(),
            });
        }
        let mut reader = open_lines(path)?;
        let mut buf = Vec::new();
        for _ in 0..50 {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if line.starts_with("<doc ") {
                return Ok(Self::WikiExtractor);
            }
            if is_wikitext_heading(line).is_some() {
                return Ok(Self::WikiText);
            }
        }
        Ok(Self::PlainText)
    }
}

/// Counted warnings about skipped input; the first `KEEP` messages are kept verbatim.
#[derive(Debug, Default, Clone)]
pub struct ReadWarnings {
    pub count: usize,
    pub messages: Vec<String>,
}

impl ReadWarnings {
    const KEEP: usize = 20;

    pub fn warn(&mut self, message: String) {
        self.count += 1;
        if self.messages.len() < Self::KEEP {
            self.messages.push(message);
        }
    }

    pub fn summary(&self) -> Option<String> {
        if self.count == 0 {
            return None;
        }
        let mut text = format!("{} input problem(s) skipped:", self.count);
        for message in &self.messages {
            text.push_str("\n  ");
            text.push_str(message);
        }
        if self.count > self.messages.len() {
            text.push_str(&format!(
                "\n  ... and {} more",
                self.count - self.messages.len()
            ));
        }
        Some(text)
    }
}

/// All files under a path (recursively, sorted), read as one stream of documents.
pub struct CorpusReader {
    files: Vec<PathBuf>,
    /// `None`: detect per file.
    format: Option<CorpusFormat>,
    text_field: String,
    next_file: usize,
    current: Option<FileDocuments>,
    pub warnings: ReadWarnings,
}

impl CorpusReader {
    pub fn open(
        path: &Path,
        format: Option<CorpusFormat>,
        text_field: &str,
    ) -> std::io::Result<Self> {
        let files = list_files(path)?;
        if files.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}: no corpus files found", path.display()),
            ));
        }
        Ok(Self {
            files,
            format,
            text_field: text_field.to_string(),
            next_file: 0,
            current: None,
            warnings: ReadWarnings::default(),
        })
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl Iterator for CorpusReader {
    type Item = Document;

    fn next(&mut self) -> Option<Document> {
        loop {
            if let Some(current) = &mut self.current {
                if let Some(doc) = current.next_document(&mut self.warnings) {
                    return Some(doc);
                }
                if current.documents_read == 0 {
                    self.warnings.warn(format!(
                        "{}: no documents (empty file?)",
                        current.path.display()
                    ));
                }
                self.current = None;
            }
            let path = self.files.get(self.next_file)?.clone();
            self.next_file += 1;
            let format = match &self.format {
                Some(f) => Ok(f.clone()),
                None => CorpusFormat::detect(&path, &self.text_field),
            };
            match format.and_then(|format| FileDocuments::open(&path, format)) {
                Ok(file) => self.current = Some(file),
                Err(e) => self
                    .warnings
                    .warn(format!("{}: cannot read: {e}", path.display())),
            }
        }
    }
}

fn list_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let p = entry.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') || is_documentation(name) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Files that sit beside corpora but are not part of them (attribution, licences,
/// read-mes) are skipped when a folder is read; name them directly to read them.
fn is_documentation(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.ends_with(".MD")
        || [
            "README",
            "LICENSE",
            "LICENCE",
            "ATTRIBUTION",
            "PROVENANCE",
            "COPYING",
        ]
        .iter()
        .any(|prefix| upper.starts_with(prefix))
}

fn open_lines(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let file = File::open(path)?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    let read: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, read)))
}

/// ` = Title = ` → (1, "Title"); ` = = Section = = ` → (2, "Section").
fn is_wikitext_heading(line: &str) -> Option<(usize, &str)> {
    let trimmed = line.trim();
    if !(trimmed.starts_with("= ") && trimmed.ends_with(" =")) {
        return None;
    }
    let level = trimmed.split(' ').take_while(|t| *t == "=").count();
    let inner = trimmed
        .trim_start_matches(['=', ' '])
        .trim_end_matches(['=', ' ']);
    Some((level, inner))
}

/// Documents of one file, parsed lazily.
struct FileDocuments {
    path: PathBuf,
    format: CorpusFormat,
    lines: Box<dyn BufRead>,
    line_number: usize,
    documents_read: usize,
    /// WikiText: the heading line that opened the next article.
    pending_title: Option<String>,
    done: bool,
}

impl FileDocuments {
    fn open(path: &Path, format: CorpusFormat) -> std::io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            format,
            lines: open_lines(path)?,
            line_number: 0,
            documents_read: 0,
            pending_title: None,
            done: false,
        })
    }

    /// The next line, or `None` at end of file. Lines that are not UTF-8 are
    /// reported and skipped.
    fn next_line(&mut self, warnings: &mut ReadWarnings) -> Option<String> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match self.lines.read_until(b'\n', &mut buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {
                    self.line_number += 1;
                    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        buf.pop();
                    }
                    match String::from_utf8(std::mem::take(&mut buf)) {
                        Ok(line) => return Some(line),
                        Err(_) => warnings.warn(format!(
                            "{}:{}: invalid UTF-8, line skipped",
                            self.path.display(),
                            self.line_number
                        )),
                    }
                }
                Err(e) => {
                    warnings.warn(format!(
                        "{}:{}: read error: {e}",
                        self.path.display(),
                        self.line_number + 1
                    ));
                    self.done = true;
                    return None;
                }
            }
        }
    }

    fn next_document(&mut self, warnings: &mut ReadWarnings) -> Option<Document> {
        if self.done && self.pending_title.is_none() {
            return None;
        }
        let doc = match self.format.clone() {
            CorpusFormat::WikiExtractor => self.next_wikiextractor(warnings),
            CorpusFormat::WikiText => self.next_wikitext(warnings),
            CorpusFormat::PlainText => self.next_plain(warnings),
            CorpusFormat::Jsonl { text_field } => self.next_jsonl(&text_field, warnings),
        };
        if doc.is_some() {
            self.documents_read += 1;
        }
        doc
    }

    fn next_wikiextractor(&mut self, warnings: &mut ReadWarnings) -> Option<Document> {
        // Find the next opening tag.
        let (mut doc, mut start_line) = loop {
            let line = self.next_line(warnings)?;
            if line.starts_with("<doc ") {
                break (self.open_doc(&line), self.line_number);
            }
            if !line.trim().is_empty() {
                warnings.warn(format!(
                    "{}:{}: text outside <doc>, skipped",
                    self.path.display(),
                    self.line_number
                ));
            }
        };
        let mut first = true;
        loop {
            let Some(line) = self.next_line(warnings) else {
                warnings.warn(format!(
                    "{}:{}: <doc> opened here is never closed (truncated file), document skipped",
                    self.path.display(),
                    start_line
                ));
                return None;
            };
            if line.trim() == "</doc>" {
                return Some(doc);
            }
            if line.starts_with("<doc ") {
                warnings.warn(format!(
                    "{}:{}: <doc> opened here is not closed before the next one, document skipped",
                    self.path.display(),
                    start_line
                ));
                doc = self.open_doc(&line);
                start_line = self.line_number;
                first = true;
                continue;
            }
            // WikiExtractor repeats the title as the first line of the body.
            if first && doc.title.as_deref() == Some(line.trim()) {
                first = false;
                continue;
            }
            first = false;
            doc.lines.push(line);
        }
    }

    fn open_doc(&self, tag: &str) -> Document {
        let attribute = |key: &str| -> Option<String> {
            let pattern = format!("{key}=\"");
            let start = tag.find(&pattern)? + pattern.len();
            let end = tag[start..].find('"')? + start;
            Some(tag[start..end].to_string())
        };
        Document {
            article_id: attribute("id")
                .unwrap_or_else(|| format!("{}:{}", self.path.display(), self.line_number)),
            title: attribute("title"),
            url: attribute("url"),
            lines: Vec::new(),
            line_per_paragraph: true,
        }
    }

    fn next_wikitext(&mut self, warnings: &mut ReadWarnings) -> Option<Document> {
        let mut doc = match self.pending_title.take() {
            Some(title) => Document {
                article_id: title.clone(),
                title: Some(title),
                url: None,
                lines: Vec::new(),
                line_per_paragraph: true,
            },
            None => Document {
                article_id: format!("{}:{}", self.path.display(), self.line_number + 1),
                title: None,
                url: None,
                lines: Vec::new(),
                line_per_paragraph: true,
            },
        };
        while let Some(line) = self.next_line(warnings) {
            match is_wikitext_heading(&line) {
                Some((1, title)) => {
                    self.pending_title = Some(title.to_string());
                    if doc.title.is_some() || doc.lines.iter().any(|l| !l.trim().is_empty()) {
                        return Some(doc);
                    }
                    return self.next_wikitext(warnings);
                }
                Some(_) => doc.lines.push(String::new()), // section heading: a paragraph break
                None => doc.lines.push(detokenize_wikitext(&line)),
            }
        }
        (doc.title.is_some() || doc.lines.iter().any(|l| !l.trim().is_empty())).then_some(doc)
    }

    fn next_plain(&mut self, warnings: &mut ReadWarnings) -> Option<Document> {
        if self.done {
            return None;
        }
        let mut lines = Vec::new();
        while let Some(line) = self.next_line(warnings) {
            lines.push(line);
        }
        if lines.iter().all(|l| l.trim().is_empty()) {
            return None;
        }
        Some(Document {
            article_id: self.path.display().to_string(),
            title: None,
            url: None,
            lines,
            line_per_paragraph: false,
        })
    }

    fn next_jsonl(&mut self, text_field: &str, warnings: &mut ReadWarnings) -> Option<Document> {
        loop {
            let line = self.next_line(warnings)?;
            if line.trim().is_empty() {
                continue;
            }
            let location = format!("{}:{}", self.path.display(), self.line_number);
            let value: serde_json::Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(e) => {
                    warnings.warn(format!("{location}: invalid JSON ({e}), line skipped"));
                    continue;
                }
            };
            let Some(text) = value.get(text_field).and_then(|t| t.as_str()) else {
                warnings.warn(format!(
                    "{location}: no string field `{text_field}`, line skipped"
                ));
                continue;
            };
            let article_id = match value.get("id") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => location,
            };
            return Some(Document {
                article_id,
                title: value
                    .get("title")
                    .and_then(|t| t.as_str())
                    .map(str::to_string),
                url: value
                    .get("url")
                    .and_then(|t| t.as_str())
                    .map(str::to_string),
                lines: text.lines().map(str::to_string).collect(),
                line_per_paragraph: false,
            });
        }
    }
}

impl Document {
    /// The document in WikiExtractor format (title repeated as the first line).
    pub fn to_wikiextractor(&self) -> String {
        let escape = |s: &str| s.replace('"', "&quot;");
        let title = self
            .title
            .clone()
            .unwrap_or_else(|| self.article_id.clone());
        let mut out = format!(
            "<doc id=\"{}\" url=\"{}\" title=\"{}\">\n{}\n",
            escape(&self.article_id),
            escape(self.url.as_deref().unwrap_or("")),
            escape(&title),
            title
        );
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("</doc>\n");
        out
    }
}

/// WikiText escapes some punctuation as ` @-@ `, ` @,@ `, ` @.@ `; undo it.
fn detokenize_wikitext(line: &str) -> String {
    line.replace(" @-@ ", "-")
        .replace(" @,@ ", ",")
        .replace(" @.@ ", ".")
}
