//! Corpus statistics computed in one streaming pass (memory bounded by the number
//! of distinct paragraph lengths, not by the corpus).

use std::collections::BTreeMap;

use super::paragraphs::Paragraph;

#[derive(Debug, Default, Clone)]
pub struct CorpusStats {
    pub articles: u64,
    pub paragraphs: u64,
    pub words: u64,
    pub tokens: Option<u64>,
    /// Words per paragraph → number of paragraphs.
    pub length_histogram: BTreeMap<usize, u64>,
}

impl CorpusStats {
    pub fn add_article(&mut self) {
        self.articles += 1;
    }

    pub fn add_paragraph(&mut self, paragraph: &Paragraph, tokens: Option<usize>) {
        let words = paragraph.text.split(' ').count();
        self.paragraphs += 1;
        self.words += words as u64;
        *self.length_histogram.entry(words).or_default() += 1;
        if let Some(t) = tokens {
            *self.tokens.get_or_insert(0) += t as u64;
        }
    }

    /// The smallest length `l` such that at least `q` of the paragraphs have ≤ `l` words.
    pub fn quantile(&self, q: f64) -> usize {
        let target = (q * self.paragraphs as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (&len, &count) in &self.length_histogram {
            seen += count;
            if seen >= target {
                return len;
            }
        }
        0
    }

    pub fn report(&self) -> String {
        let mut out = format!(
            "articles    {}\nparagraphs  {}\nwords       {}\n",
            self.articles, self.paragraphs, self.words
        );
        if let Some(tokens) = self.tokens {
            out.push_str(&format!(
                "tokens      {tokens}  ({:.2} per word)\n",
                tokens as f64 / self.words.max(1) as f64
            ));
        }
        out.push_str("words per paragraph:\n");
        for (label, q) in [
            ("min", 0.0),
            ("p10", 0.1),
            ("p50", 0.5),
            ("p90", 0.9),
            ("p99", 0.99),
            ("max", 1.0),
        ] {
            out.push_str(&format!("  {label:<4} {}\n", self.quantile(q)));
        }
        let buckets = [16, 32, 64, 128, 256, 512, usize::MAX];
        let mut lower = 0;
        for upper in buckets {
            let count: u64 = self
                .length_histogram
                .range(lower..upper)
                .map(|(_, c)| c)
                .sum();
            let label = if upper == usize::MAX {
                format!("{lower}+")
            } else {
                format!("{lower}-{}", upper - 1)
            };
            out.push_str(&format!("  {label:>8} words: {count}\n"));
            lower = upper;
        }
        out
    }
}
