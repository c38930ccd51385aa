//! PNG line charts of the per-step metrics, drawn with plotters.
//!
//! Text is rendered by plotters' pure-Rust `ab_glyph` path with a font compiled into
//! the binary (`assets/fonts/DejaVuSans.ttf`), so a report needs no fontconfig,
//! freetype or system fonts: CI and fresh machines draw the same labels.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;
use plotters::prelude::*;

use super::run::{MetricsRow, RunData};

pub const WIDTH: u32 = 900;
pub const HEIGHT: u32 = 500;
const FONT: &str = "sans-serif";
/// Distinct, print-safe line colours (the "tab10" set).
const LINE_COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];
const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Which steps a metric is meaningful on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measured {
    /// Every step.
    Always,
    /// Steps with generator rollouts (absent for the fixed-rule baselines).
    Generator,
    /// Steps whose update ran (skipped updates report zeros).
    Update,
}

/// One `metrics.jsonl` field as a plotted line.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    pub key: &'static str,
    pub label: &'static str,
    pub measured: Measured,
}

impl Quantity {
    pub const fn new(key: &'static str, label: &'static str, measured: Measured) -> Self {
        Self {
            key,
            label,
            measured,
        }
    }

    /// (step, value) for every row on which this quantity was measured.
    pub fn points(&self, rows: &[MetricsRow]) -> Vec<(f64, f64)> {
        rows.iter()
            .filter(|row| match self.measured {
                Measured::Always => true,
                Measured::Generator => row.has_generator(),
                Measured::Update => row.has_update(),
            })
            .filter_map(|row| Some((row.step as f64, row.get(self.key)?)))
            .collect()
    }
}

/// One PNG of the single-run report: several quantities on shared axes.
#[derive(Debug, Clone, Copy)]
pub struct ChartSpec {
    /// File name inside the report folder.
    pub file: &'static str,
    pub title: &'static str,
    pub y_label: &'static str,
    /// Fixed y range for fractions and rewards; `None` fits the data.
    pub y_range: Option<(f64, f64)>,
    pub quantities: &'static [Quantity],
}

const GENERATOR_REWARD: Quantity = Quantity::new(
    "generator_reward_mean",
    "generator reward (1 - acc)",
    Measured::Generator,
);
const PREDICTOR_ACCURACY: Quantity = Quantity::new(
    "predictor_accuracy",
    "predictor accuracy (= reward)",
    Measured::Always,
);
const REWARD_MEAN: Quantity = Quantity::new("reward_mean", "mean of all rewards", Measured::Always);
const VALID_MASK: Quantity = Quantity::new(
    "valid_mask_fraction",
    "valid-mask fraction",
    Measured::Always,
);
const ZERO_VARIANCE: Quantity = Quantity::new(
    "zero_variance_fraction",
    "zero-variance groups",
    Measured::Always,
);
const ALL_ZERO: Quantity = Quantity::new(
    "predictor_all_zero_fraction",
    "masks nobody predicts",
    Measured::Always,
);
const ALL_ONE: Quantity = Quantity::new(
    "predictor_all_one_fraction",
    "masks everybody predicts",
    Measured::Always,
);
const DISTINCT_SPANS: Quantity =
    Quantity::new("distinct_span_fraction", "distinct spans", Measured::Always);
const TOP_SPAN: Quantity = Quantity::new(
    "top_span_share",
    "most frequent span's share",
    Measured::Always,
);
const TOP_FIRST_WORD: Quantity = Quantity::new(
    "top_first_word_share",
    "most frequent first word's share",
    Measured::Always,
);
const TOP_ANSWER: Quantity = Quantity::new(
    "top_answer_share",
    "predictor's most frequent answer's share",
    Measured::Always,
);
const STOP_WORD_SPANS: Quantity = Quantity::new(
    "stop_word_span_fraction",
    "stop-word-only spans",
    Measured::Always,
);
const SPAN_WORDS: Quantity = Quantity::new("mask_words_mean", "words", Measured::Always);
const SPAN_TOKENS: Quantity = Quantity::new("mask_tokens_mean", "tokens", Measured::Always);
const ENTROPY: Quantity = Quantity::new("entropy", "entropy", Measured::Update);
const RESPONSE_MEAN: Quantity = Quantity::new("response_length_mean", "mean", Measured::Always);
const RESPONSE_MAX: Quantity = Quantity::new("response_length_max", "max", Measured::Always);

/// The single-run charts, in the order the report shows them.
pub const RUN_CHARTS: &[ChartSpec] = &[
    ChartSpec {
        file: "rewards.png",
        title: "Rewards",
        y_label: "mean reward",
        y_range: Some((0.0, 1.0)),
        quantities: &[GENERATOR_REWARD, PREDICTOR_ACCURACY, REWARD_MEAN],
    },
    ChartSpec {
        file: "valid_mask.png",
        title: "Valid-mask fraction",
        y_label: "fraction of generator rollouts",
        y_range: Some((0.0, 1.0)),
        quantities: &[VALID_MASK],
    },
    ChartSpec {
        file: "zero_variance.png",
        title: "Groups without signal",
        y_label: "fraction",
        y_range: Some((0.0, 1.0)),
        quantities: &[ZERO_VARIANCE, ALL_ZERO, ALL_ONE],
    },
    ChartSpec {
        file: "span_diversity.png",
        title: "Span and answer diversity",
        y_label: "fraction of spans or answers",
        y_range: Some((0.0, 1.0)),
        quantities: &[
            DISTINCT_SPANS,
            TOP_SPAN,
            TOP_FIRST_WORD,
            STOP_WORD_SPANS,
            TOP_ANSWER,
        ],
    },
    ChartSpec {
        file: "span_length.png",
        title: "Masked span length",
        y_label: "mean length",
        y_range: None,
        quantities: &[SPAN_WORDS, SPAN_TOKENS],
    },
    ChartSpec {
        file: "entropy.png",
        title: "Policy entropy (response tokens)",
        y_label: "nats per token",
        y_range: None,
        quantities: &[ENTROPY],
    },
    ChartSpec {
        file: "response_length.png",
        title: "Response length",
        y_label: "tokens",
        y_range: None,
        quantities: &[RESPONSE_MEAN, RESPONSE_MAX],
    },
];

/// The comparison charts: one PNG per quantity, one line per run.
pub const COMPARISON_CHARTS: &[ChartSpec] = &[
    ChartSpec {
        file: "generator_reward.png",
        title: "Generator reward",
        y_label: "mean reward",
        y_range: Some((0.0, 1.0)),
        quantities: &[GENERATOR_REWARD],
    },
    ChartSpec {
        file: "predictor_accuracy.png",
        title: "Predictor accuracy",
        y_label: "accuracy",
        y_range: Some((0.0, 1.0)),
        quantities: &[PREDICTOR_ACCURACY],
    },
    ChartSpec {
        file: "valid_mask.png",
        title: "Valid-mask fraction",
        y_label: "fraction of generator rollouts",
        y_range: Some((0.0, 1.0)),
        quantities: &[VALID_MASK],
    },
    ChartSpec {
        file: "zero_variance.png",
        title: "Zero-variance groups",
        y_label: "fraction of groups",
        y_range: Some((0.0, 1.0)),
        quantities: &[ZERO_VARIANCE],
    },
    ChartSpec {
        file: "top_span_share.png",
        title: "Most frequent span's share",
        y_label: "fraction of spans",
        y_range: Some((0.0, 1.0)),
        quantities: &[TOP_SPAN],
    },
    ChartSpec {
        file: "span_words.png",
        title: "Masked span length",
        y_label: "words",
        y_range: None,
        quantities: &[SPAN_WORDS],
    },
    ChartSpec {
        file: "span_tokens.png",
        title: "Masked span length",
        y_label: "tokens",
        y_range: None,
        quantities: &[SPAN_TOKENS],
    },
    ChartSpec {
        file: "entropy.png",
        title: "Policy entropy (response tokens)",
        y_label: "nats per token",
        y_range: None,
        quantities: &[ENTROPY],
    },
    ChartSpec {
        file: "response_length.png",
        title: "Mean response length",
        y_label: "tokens",
        y_range: None,
        quantities: &[RESPONSE_MEAN],
    },
];

/// A chart ready to draw. A series keeps its colour by position, so a run (or
/// quantity) with no points leaves a gap instead of shifting the others' colours.
pub struct Chart {
    pub title: String,
    pub y_label: String,
    pub y_range: Option<(f64, f64)>,
    pub series: Vec<Series>,
}

/// One line of a chart: its legend label and (step, value) points.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

impl Chart {
    /// The quantities of `spec` for one run.
    pub fn for_run(spec: &ChartSpec, run: &RunData) -> Self {
        Self {
            title: spec.title.to_string(),
            y_label: spec.y_label.to_string(),
            y_range: spec.y_range,
            series: spec
                .quantities
                .iter()
                .map(|q| Series {
                    label: q.label.to_string(),
                    points: q.points(&run.metrics),
                })
                .collect(),
        }
    }

    /// The quantities of `spec` for each run, labelled `folder (policy)` (and the
    /// quantity when `spec` has several).
    pub fn across_runs(spec: &ChartSpec, runs: &[RunData]) -> Self {
        let mut series = Vec::new();
        for run in runs {
            let name = match run.policy() {
                Some(policy) => format!("{} ({policy})", run.name()),
                None => run.name(),
            };
            for q in spec.quantities {
                let label = if spec.quantities.len() == 1 {
                    name.clone()
                } else {
                    format!("{name}: {}", q.label)
                };
                series.push(Series {
                    label,
                    points: q.points(&run.metrics),
                });
            }
        }
        Self {
            title: spec.title.to_string(),
            y_label: spec.y_label.to_string(),
            y_range: spec.y_range,
            series,
        }
    }
}

/// Registers the bundled font under the family name every chart uses.
fn register_bundled_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    anyhow::ensure!(
        ok,
        "the bundled font assets/fonts/DejaVuSans.ttf does not parse"
    );
    Ok(())
}

/// The axis range covering `values`, padded by 5 %; starts at 0 for non-negative data.
fn fitted_range(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (mut low, mut high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    if from_zero && low >= 0.0 {
        low = 0.0;
    }
    let pad = ((high - low) * 0.05).max(1e-6);
    if high - low < 1e-9 {
        high = low + 1.0;
    } else {
        high += pad;
    }
    (low, high)
}

/// Draws `chart` as a `WIDTH`×`HEIGHT` PNG at `path`, via a temporary file and a rename.
pub fn draw_chart(chart: &Chart, path: &Path) -> anyhow::Result<()> {
    register_bundled_font()?;
    // The encoder picks the format from the extension, so the temporary name keeps `.png`.
    let tmp = path.with_extension("tmp.png");
    draw_to(chart, &tmp)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("drawing {}", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Pads a range by `fraction` of its span on both sides, so that points on the
/// limits (accuracy 1.0, the first step) stay clear of the axes.
fn padded((low, high): (f64, f64), fraction: f64) -> (f64, f64) {
    let pad = (high - low) * fraction;
    (low - pad, high + pad)
}

/// Tick labels with as many decimals as the axis span needs.
fn tick_label(value: f64, span: f64) -> String {
    if span >= 20.0 {
        format!("{value:.0}")
    } else if span >= 2.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

const LEGEND_ROW: u32 = 24;
const LEGEND_SWATCH: i32 = 26;
const LEGEND_LEFT: i32 = 90;

/// Where each legend entry goes, flowing left to right under the plot: (x, row).
fn legend_layout(widths: &[u32]) -> Vec<(i32, u32)> {
    let right = WIDTH as i32 - 16;
    let (mut x, mut row) = (LEGEND_LEFT, 0);
    let mut places = Vec::with_capacity(widths.len());
    for &width in widths {
        let entry = LEGEND_SWATCH + 6 + width as i32 + 24;
        if x > LEGEND_LEFT && x + entry > right {
            x = LEGEND_LEFT;
            row += 1;
        }
        places.push((x, row));
        x += entry;
    }
    places
}

fn draw_to(chart: &Chart, path: &PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let all_points = || chart.series.iter().flat_map(|series| series.points.iter());
    let (x_low, x_high) = padded(fitted_range(all_points().map(|p| p.0), false), 0.02);
    let (y_low, y_high) = match chart.y_range {
        Some(range) => padded(range, 0.03),
        None => fitted_range(all_points().map(|p| p.1), true),
    };

    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    // The legend sits under the plot rather than over the lines.
    let legend_font = TextStyle::from((FONT, 16).into_font()).color(&BLACK);
    let visible: Vec<(usize, &Series)> = chart
        .series
        .iter()
        .enumerate()
        .filter(|(_, series)| !series.points.is_empty())
        .collect();
    let mut label_widths = Vec::new();
    for (_, series) in &visible {
        label_widths.push(root.estimate_text_size(&series.label, &legend_font)?.0);
    }
    let places = legend_layout(&label_widths);
    let legend_height = match places.last() {
        Some((_, row)) => (row + 1) * LEGEND_ROW + 8,
        None => 0,
    };
    let (plot_area, legend_area) = root.split_vertically(HEIGHT - legend_height);

    let mut plot = ChartBuilder::on(&plot_area)
        .caption(&chart.title, (FONT, 26))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x_low..x_high, y_low..y_high)?;
    let y_span = y_high - y_low;
    plot.configure_mesh()
        .x_desc("step")
        .y_desc(&chart.y_label)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        // Steps are integers: at most one tick per step on short runs.
        .x_labels(((x_high - x_low).round() as usize + 1).clamp(2, 12))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| tick_label(*y, y_span))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;

    for ((index, series), (x, row)) in visible.iter().zip(&places) {
        let (label, points) = (&series.label, &series.points);
        let color = LINE_COLORS[index % LINE_COLORS.len()];
        // Markers only while they do not merge into a solid band.
        let marker = if points.len() <= 60 { 3 } else { 0 };
        plot.draw_series(
            LineSeries::new(points.iter().copied(), color.stroke_width(2)).point_size(marker),
        )?;
        let top = (row * LEGEND_ROW) as i32;
        // ab_glyph places text about 8 px above the anchor's nominal top at this size.
        let middle = top + LEGEND_ROW as i32 / 2;
        legend_area.draw(&PathElement::new(
            vec![(*x, middle), (x + LEGEND_SWATCH, middle)],
            color.stroke_width(3),
        ))?;
        legend_area.draw(&Text::new(
            label.as_str(),
            (x + LEGEND_SWATCH + 6, middle - 2),
            legend_font.clone(),
        ))?;
    }
    if visible.is_empty() {
        plot_area.draw(&Text::new(
            "no data",
            ((WIDTH / 2) as i32 - 30, (HEIGHT / 2) as i32),
            (FONT, 20),
        ))?;
    }
    root.present()?;
    Ok(())
}
