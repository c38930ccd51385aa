//! The report page: a self-contained HTML file (inline CSS, no scripts) beside the
//! PNGs it links, with a run summary, the charts and, at a few steps, paragraphs with
//! the chosen span highlighted and the predictor's answers scored against it.

use std::fmt::Write;

use super::plots::{Measured, Quantity, RUN_CHARTS};
use super::run::{display_toml, ExampleRecord, RunData};
use crate::policy::span_rules::MASK_TOKEN;
use crate::reward::exact_match;

/// Examples shown per selected step.
const EXAMPLES_PER_STEP: usize = 3;
/// Config strings longer than this (the prompt templates) are shortened in the table.
const MAX_CONFIG_VALUE_CHARS: usize = 120;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;\
padding:0 1em;color:#222;line-height:1.45}\
table{border-collapse:collapse;margin:.5em 0 1.5em}\
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
img{max-width:100%;display:block;margin:.5em 0 1.5em}\
mark{background:#ffe066;padding:0 .1em}\
.example{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:.8em 0}\
.paragraph{margin:.3em 0 .6em}\
.correct{color:#1a7f37}.incorrect{color:#b42318}\
code{background:#f4f4f4;padding:0 .2em}";

/// Extra update-side quantities for the summary table (not charted).
const SUMMARY_EXTRAS: &[Quantity] = &[
    Quantity::new("loss", "loss", Measured::Update),
    Quantity::new("grad_norm", "grad norm", Measured::Update),
    Quantity::new("clip_low_fraction", "clip-low fraction", Measured::Update),
    Quantity::new("clip_high_fraction", "clip-high fraction", Measured::Update),
    Quantity::new(
        "response_clipped_fraction",
        "responses cut at max length",
        Measured::Always,
    ),
    Quantity::new("step_seconds", "seconds per step", Measured::Always),
];

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The paragraph with every masked occurrence of the span wrapped in `<mark>`.
///
/// The masked positions come from `context` (each `[mask]` is one hidden occurrence,
/// so the OneMask ablation highlights only the one it hid); when the context does not
/// rebuild the paragraph, every occurrence of the span in the paragraph is marked.
pub fn highlighted_paragraph(example: &ExampleRecord) -> String {
    let marked = format!("<mark>{}</mark>", escape(&example.gold));
    let pieces: Vec<&str> = example.context.split(MASK_TOKEN).collect();
    if pieces.len() > 1 && pieces.join(&example.gold) == example.paragraph {
        return pieces
            .iter()
            .map(|piece| escape(piece))
            .collect::<Vec<_>>()
            .join(&marked);
    }
    if example.gold.is_empty() {
        return escape(&example.paragraph);
    }
    example
        .paragraph
        .split(example.gold.as_str())
        .map(escape)
        .collect::<Vec<_>>()
        .join(&marked)
}

/// Up to five steps spread over the run (first, ~25 %, ~50 %, ~75 %, last) among
/// those that logged examples.
pub fn example_steps(examples: &[(usize, ExampleRecord)]) -> Vec<usize> {
    let mut steps: Vec<usize> = examples.iter().map(|(step, _)| *step).collect();
    steps.sort_unstable();
    steps.dedup();
    if steps.is_empty() {
        return steps;
    }
    let last = steps.len() - 1;
    let mut chosen: Vec<usize> = [0, 1, 2, 3, 4]
        .iter()
        .map(|quarter| steps[(last * quarter + 2) / 4])
        .collect();
    chosen.dedup();
    chosen
}

/// Statistics of one quantity over the steps it was measured on.
struct Summary {
    first: f64,
    last: f64,
    mean: f64,
    min: f64,
    max: f64,
}

fn summarize(points: &[(f64, f64)]) -> Option<Summary> {
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    Some(Summary {
        first: *values.first()?,
        last: *values.last()?,
        mean: values.iter().sum::<f64>() / values.len() as f64,
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

fn number(value: f64) -> String {
    if value == value.trunc() && value.abs() < 1e9 {
        format!("{value:.0}")
    } else if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.4}")
    }
}

/// Every quantity the single-run report charts, then the summary-only ones.
fn summary_quantities() -> Vec<Quantity> {
    let mut quantities: Vec<Quantity> = Vec::new();
    for chart in RUN_CHARTS {
        for q in chart.quantities {
            if !quantities.iter().any(|known| known.key == q.key) {
                quantities.push(*q);
            }
        }
    }
    quantities.extend_from_slice(SUMMARY_EXTRAS);
    quantities
}

fn metrics_table(html: &mut String, run: &RunData) {
    html.push_str(
        "<table><tr><th>metric</th><th>first</th><th>last</th><th>mean</th>\
         <th>min</th><th>max</th></tr>\n",
    );
    for q in summary_quantities() {
        let Some(s) = summarize(&q.points(&run.metrics)) else {
            continue;
        };
        let _ = writeln!(
            html,
            "<tr><td><code>{}</code></td><td class=num>{}</td><td class=num>{}</td>\
             <td class=num>{}</td><td class=num>{}</td><td class=num>{}</td></tr>",
            escape(q.key),
            number(s.first),
            number(s.last),
            number(s.mean),
            number(s.min),
            number(s.max)
        );
    }
    html.push_str("</table>\n");
}

/// `section.key` → value for every scalar (and array) of the config.
fn flatten_config(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten_config(&name, inner, out),
            other => out.push((name, display_toml(other))),
        }
    }
}

fn shortened(text: &str) -> String {
    if text.chars().count() <= MAX_CONFIG_VALUE_CHARS {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX_CONFIG_VALUE_CHARS).collect();
        format!("{head}…")
    }
}

fn run_overview(html: &mut String, run: &RunData) {
    let steps = match (run.metrics.first(), run.metrics.last()) {
        (Some(first), Some(last)) => format!(
            "{} logged (steps {}–{})",
            run.metrics.len(),
            first.step,
            last.step
        ),
        _ => "none logged".to_string(),
    };
    let seconds: f64 = run
        .metrics
        .iter()
        .filter_map(|row| row.get("step_seconds"))
        .sum();
    let mut rows = vec![
        ("run folder".to_string(), run.dir.display().to_string()),
        (
            "policy".to_string(),
            run.policy().unwrap_or_else(|| "?".to_string()),
        ),
        ("steps".to_string(), steps),
        ("training time".to_string(), format!("{:.0} s", seconds)),
    ];
    for key in [
        "model",
        "data.corpus",
        "optim.steps",
        "optim.lr",
        "rollout.paragraphs_per_step",
        "policy.masks_per_paragraph",
        "policy.answers_per_mask",
        "policy.prompt_style",
        "seed",
    ] {
        if let Some(value) = run.config_value(key) {
            rows.push((key.to_string(), display_toml(&value)));
        }
    }
    html.push_str("<table>\n");
    for (key, value) in rows {
        let _ = writeln!(
            html,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(&key),
            escape(&value)
        );
    }
    html.push_str("</table>\n");
}

fn config_details(html: &mut String, run: &RunData) {
    let Some(config) = &run.config else {
        return;
    };
    let mut entries = Vec::new();
    flatten_config("", config, &mut entries);
    html.push_str("<details><summary>Full configuration (<code>train_config.toml</code>)</summary>\n<table>\n");
    for (key, value) in entries {
        let _ = writeln!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td></tr>",
            escape(&key),
            escape(&shortened(&value))
        );
    }
    html.push_str("</table></details>\n");
}

fn example_block(html: &mut String, example: &ExampleRecord, case_insensitive: bool) {
    let verdicts: Vec<bool> = example
        .answers
        .iter()
        .map(|answer| {
            answer
                .as_deref()
                .is_some_and(|a| exact_match(a, &example.gold, case_insensitive))
        })
        .collect();
    let correct = verdicts.iter().filter(|&&v| v).count();
    let _ = writeln!(
        html,
        "<div class=example>\n<div class=paragraph>{}</div>\n\
         <div>span: <mark>{}</mark> — {} of {} answers correct</div>\n<ol>",
        highlighted_paragraph(example),
        escape(&example.gold),
        correct,
        verdicts.len()
    );
    for (answer, correct) in example.answers.iter().zip(&verdicts) {
        let (class, sign) = if *correct {
            ("correct", "✓")
        } else {
            ("incorrect", "✗")
        };
        let text = match answer {
            Some(a) => format!("<code>{}</code>", escape(a)),
            None => "<em>no \\boxed{} answer</em>".to_string(),
        };
        let _ = writeln!(html, "<li class={class}>{sign} {text}</li>");
    }
    html.push_str("</ol>\n</div>\n");
}

fn examples_section(html: &mut String, run: &RunData) {
    html.push_str("<h2>Examples</h2>\n");
    let steps = example_steps(&run.examples);
    if steps.is_empty() {
        html.push_str("<p>No examples were logged (<code>examples.jsonl</code>).</p>\n");
        return;
    }
    html.push_str(
        "<p>Paragraphs with the masked span highlighted, and the predictor's answers \
         compared with it by exact match (as the reward does).</p>\n",
    );
    let case_insensitive = run.case_insensitive();
    for step in steps {
        let _ = writeln!(html, "<h3>Step {step}</h3>");
        for (_, example) in run
            .examples
            .iter()
            .filter(|(s, _)| *s == step)
            .take(EXAMPLES_PER_STEP)
        {
            example_block(html, example, case_insensitive);
        }
    }
}

fn page_start(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n\
         <title>{0}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{0}</h1>\n",
        escape(title)
    )
}

fn images(html: &mut String, files: &[String]) {
    for file in files {
        let _ = writeln!(
            html,
            "<img src=\"{0}\" alt=\"{0}\" width=900 height=500>",
            escape(file)
        );
    }
}

/// The single-run report; `plot_files` are PNG names in the same folder.
pub fn run_page(run: &RunData, plot_files: &[String]) -> String {
    let mut html = page_start(&format!("PretrainZero run: {}", run.name()));
    run_overview(&mut html, run);
    config_details(&mut html, run);
    html.push_str("<h2>Metrics</h2>\n");
    metrics_table(&mut html, run);
    html.push_str(
        "<h2>Charts</h2>\n<p>One point per step. The generator reward is drawn only on \
         steps with generator rollouts (the PretrainZero policy; the baselines choose \
         spans by a fixed rule), the entropy only on steps whose update ran.</p>\n",
    );
    images(&mut html, plot_files);
    examples_section(&mut html, run);
    html.push_str("</body>\n</html>\n");
    html
}

/// The comparison page: final and mean values per run, then the overlaid charts.
pub fn comparison_page(runs: &[RunData], plot_files: &[String]) -> String {
    let mut html = page_start("PretrainZero runs compared");
    let quantities = summary_quantities();
    html.push_str("<table><tr><th>metric</th>");
    for run in runs {
        let _ = write!(
            html,
            "<th>{}<br>({})</th>",
            escape(&run.name()),
            escape(&run.policy().unwrap_or_else(|| "?".to_string()))
        );
    }
    html.push_str("</tr>\n");
    let _ = write!(html, "<tr><td>steps</td>");
    for run in runs {
        let _ = write!(html, "<td class=num>{}</td>", run.metrics.len());
    }
    html.push_str("</tr>\n");
    for q in &quantities {
        let _ = write!(
            html,
            "<tr><td><code>{}</code> last / mean</td>",
            escape(q.key)
        );
        for run in runs {
            let cell = summarize(&q.points(&run.metrics))
                .map(|s| format!("{} / {}", number(s.last), number(s.mean)))
                .unwrap_or_else(|| "—".to_string());
            let _ = write!(html, "<td class=num>{cell}</td>");
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n<h2>Charts</h2>\n");
    images(&mut html, plot_files);
    html.push_str("</body>\n</html>\n");
    html
}
