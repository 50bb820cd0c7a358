//! The report's figures: FID, KID and loss curves (PNG and SVG; mean over seeds with a
//! min-max band, PA level timeline below) and the final sample grids side by side.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::load::{RunData, group};
use super::table::mean_std;
use crate::run_dir::{LATEST_SAMPLES, MetricsLine, SAMPLES_DIR};

/// Size of the FID, KID and loss charts in pixels (the SVGs have the same viewport).
pub const CHART_SIZE: (u32, u32) = (1000, 700);
/// Font the plots are drawn with (Debian fonts-dejavu-core); PAGAN_REPORT_FONT overrides.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// Tab10 colours, one per variant.
pub(super) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Registers the TTF the plots are drawn with, once per process.
pub(super) fn ensure_font() -> Result<()> {
    static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let path = std::env::var("PAGAN_REPORT_FONT").unwrap_or_else(|_| DEFAULT_FONT.into());
        let bytes = std::fs::read(&path).map_err(|e| {
            format!(
                "the report draws text with {path} ({e}); install it with `apt-get install fonts-dejavu-core` \
                 (done by `make setup`) or point PAGAN_REPORT_FONT at another .ttf"
            )
        })?;
        // plotters keeps fonts for the whole process; one leaked copy is the intended use.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{path} is not a usable TrueType font"))
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

pub(super) fn draw_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing the plot: {e}")
}

/// One line of a chart: a variant's mean, with its min/max band when pooled over seeds.
pub(super) struct Line {
    pub(super) label: String,
    pub(super) color: RGBColor,
    pub(super) points: Vec<(f64, f64)>,
    pub(super) band: Vec<(f64, f64, f64)>,
    /// Evaluation curves: thick, with a marker at each evaluation (lines only interpolate).
    /// Loss curves have a point every few iterations: thin, unmarked.
    pub(super) evals: bool,
}

/// Pools runs of each variant: at every iteration any of them reports, mean and min/max.
fn pooled(runs: &[RunData], f: impl Fn(&MetricsLine) -> Option<f64> + Copy) -> Vec<Line> {
    let mut lines = Vec::new();
    for (k, (v, idx)) in group(runs).into_iter().enumerate() {
        let per_run: Vec<Vec<(f64, f64)>> = idx.iter().map(|&i| runs[i].points(f)).collect();
        let mut xs: Vec<f64> = per_run.iter().flatten().map(|p| p.0).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let mut points = Vec::new();
        let mut band = Vec::new();
        for x in xs {
            let ys: Vec<f64> = per_run
                .iter()
                .filter_map(|r| r.iter().find(|p| p.0 == x).map(|p| p.1))
                .collect();
            points.push((x, mean_std(&ys).0));
            let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            band.push((x, lo, hi));
        }
        if points.is_empty() {
            continue;
        }
        let n = idx.len();
        lines.push(Line {
            label: if n > 1 {
                format!("{v} (mean of {n} seeds)")
            } else {
                v
            },
            color: PALETTE[k % PALETTE.len()],
            points,
            band: if n > 1 { band } else { Vec::new() },
            evals: true,
        });
    }
    lines
}

/// y range covering the lines (and bands), padded by 5%.
fn y_range(lines: &[Line]) -> (f64, f64) {
    let ys = lines.iter().flat_map(|l| {
        l.points
            .iter()
            .map(|p| p.1)
            .chain(l.band.iter().flat_map(|b| [b.1, b.2]))
    });
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1.0) * 0.1
    };
    (lo - pad, hi + pad)
}

/// Iteration axis labels: 2500, 10k, 100k.
fn iter_label(x: f64) -> String {
    if x >= 10_000.0 && x % 1000.0 == 0.0 {
        format!("{:.0}k", x / 1000.0)
    } else {
        format!("{x:.0}")
    }
}

fn x_max(runs: &[RunData]) -> f64 {
    runs.iter()
        .map(|r| r.last_iter().max(r.cfg.iters))
        .max()
        .unwrap_or(1)
        .max(1) as f64
}

/// Draws `lines` in `area` with a legend; `empty` is shown when there is nothing to draw.
pub(super) fn line_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lines: &[Line],
    caption: &str,
    y_desc: &str,
    x_max: f64,
    empty: &str,
) -> DrawResult<(), DB> {
    let (lo, hi) = y_range(lines);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, lo..hi)?;
    chart
        .configure_mesh()
        .y_desc(y_desc)
        .x_label_formatter(&|x| iter_label(*x))
        .draw()?;
    if lines.is_empty() {
        area.draw_text(empty, &("sans-serif", 18).into_font().color(&BLACK), (90, 80))?;
        return Ok(());
    }
    for l in lines {
        if !l.band.is_empty() {
            let mut poly: Vec<(f64, f64)> = l.band.iter().map(|b| (b.0, b.1)).collect();
            poly.extend(l.band.iter().rev().map(|b| (b.0, b.2)));
            chart.draw_series(std::iter::once(Polygon::new(poly, l.color.mix(0.2))))?;
        }
        let color = l.color;
        let width = if l.evals { 2 } else { 1 };
        let series = chart.draw_series(LineSeries::new(l.points.clone(), color.stroke_width(width)))?;
        if !l.label.is_empty() {
            series
                .label(l.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        if l.evals {
            chart.draw_series(l.points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()?;
    Ok(())
}

/// The PA level of every run as a step line, coloured by variant.
fn level_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    runs: &[RunData],
    x_max: f64,
) -> DrawResult<(), DB> {
    let top = runs
        .iter()
        .flat_map(|r| r.metrics.iter().map(|m| m.pa_level))
        .max()
        .unwrap_or(0);
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, -0.3f64..top as f64 + 0.6)?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .x_label_formatter(&|x| iter_label(*x))
        .y_desc("PA level")
        .y_labels((top + 1) as usize)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for (k, (_, idx)) in group(runs).into_iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        for &i in &idx {
            // Each metrics line carries the level its window trained at: a step per window.
            let mut pts = Vec::new();
            let mut prev = 0.0;
            for m in &runs[i].metrics {
                // Variants are nudged apart so identical timelines do not hide each other.
                let y = m.pa_level as f64 + 0.06 * k as f64;
                pts.push((prev, y));
                pts.push((m.iter as f64, y));
                prev = m.iter as f64;
            }
            chart.draw_series(LineSeries::new(pts, color.stroke_width(2)))?;
        }
    }
    Ok(())
}

/// FID or KID chart: the metric on top, the PA level timeline below on the same x axis.
pub(super) fn metric_figure<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    runs: &[RunData],
    what: &str,
    f: impl Fn(&MetricsLine) -> Option<f64> + Copy,
) -> DrawResult<(), DB> {
    root.fill(&WHITE)?;
    let xm = x_max(runs);
    let (top, bottom) = root.split_vertically(CHART_SIZE.1 * 7 / 10);
    let lines = pooled(runs, f);
    let empty = format!("no {what} evaluations in these runs (train with --eval-every N)");
    line_chart(&top, &lines, &format!("{what} vs iteration"), what, xm, &empty)?;
    level_panel(&bottom, runs, xm)?;
    root.present()
}

/// D and G losses of every run (not pooled: their noise is the point), one panel each.
pub(super) fn loss_figure<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    runs: &[RunData],
) -> DrawResult<(), DB> {
    root.fill(&WHITE)?;
    let xm = x_max(runs);
    let (top, bottom) = root.split_vertically(CHART_SIZE.1 / 2);
    for (area, what, f) in [
        (
            &top,
            "D loss",
            (|m: &MetricsLine| Some(m.d_loss)) as fn(&MetricsLine) -> Option<f64>,
        ),
        (&bottom, "G loss", |m: &MetricsLine| Some(m.g_loss)),
    ] {
        let mut lines = Vec::new();
        for (k, (v, idx)) in group(runs).into_iter().enumerate() {
            for (j, &i) in idx.iter().enumerate() {
                lines.push(Line {
                    // One legend entry per variant.
                    label: if j == 0 { v.clone() } else { String::new() },
                    color: PALETTE[k % PALETTE.len()],
                    points: runs[i].points(f),
                    band: Vec::new(),
                    evals: false,
                });
            }
        }
        lines.retain(|l| !l.points.is_empty());
        line_chart(area, &lines, what, what, xm, "no metrics lines")?;
    }
    root.present()
}

/// Final sample grids side by side: one row per variant, one column per seed, labelled.
pub(super) fn samples_figure(runs: &[RunData], path: &Path) -> Result<()> {
    let groups = group(runs);
    let tiles: Vec<Option<image::RgbImage>> = runs
        .iter()
        .map(|r| {
            image::open(r.dir.join(SAMPLES_DIR).join(LATEST_SAMPLES))
                .ok()
                .map(|i| i.to_rgb8())
        })
        .collect();
    let (tw0, th0) = tiles
        .iter()
        .flatten()
        .fold((64, 64), |(w, h), t| (w.max(t.width()), h.max(t.height())));
    // MNIST-sized grids (242 px) are small on screen: enlarge by an integer factor.
    let scale = (360 / tw0).max(1);
    let (tw, th) = (tw0 * scale, th0 * scale);
    let (pad, label_h) = (12u32, 44u32);
    let cols = groups.iter().map(|g| g.1.len()).max().unwrap_or(1) as u32;
    let (cw, ch) = (tw + pad, th + label_h + pad);
    let (w, h) = (pad + cols * cw, pad + groups.len() as u32 * ch);
    let mut canvas = image::RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    let mut labels = Vec::new();
    for (row, (v, idx)) in groups.iter().enumerate() {
        for (col, &i) in idx.iter().enumerate() {
            let (x, y) = (pad + col as u32 * cw, pad + row as u32 * ch);
            let r = &runs[i];
            let fid = r
                .final_fid()
                .map_or(String::new(), |(_, f)| format!(", FID {f:.2}"));
            labels.push((
                (x as i32, y as i32),
                format!("{v}, seed {}", r.cfg.seed),
                format!("iteration {}{fid}", r.last_iter()),
            ));
            match &tiles[i] {
                Some(t) => {
                    let t = image::imageops::resize(
                        t,
                        t.width() * scale,
                        t.height() * scale,
                        image::imageops::FilterType::Nearest,
                    );
                    image::imageops::overlay(&mut canvas, &t, x as i64, (y + label_h) as i64);
                }
                None => labels.push((
                    (x as i32, (y + label_h + th / 2) as i32),
                    "no samples/latest.png".into(),
                    String::new(),
                )),
            }
        }
    }
    {
        // Text goes straight onto the composed pixels.
        let root = BitMapBackend::with_buffer(&mut canvas, (w, h)).into_drawing_area();
        let font = ("sans-serif", 16).into_font().color(&BLACK);
        for ((x, y), a, b) in &labels {
            root.draw_text(a, &font, (*x, *y)).map_err(draw_err)?;
            root.draw_text(b, &font, (*x, *y + 20)).map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    canvas
        .save(path)
        .with_context(|| format!("writing {}", path.display()))
}
