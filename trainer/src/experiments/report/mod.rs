//! `pagan-train report`: plots (PNG + SVG) and a Markdown results table from run folders'
//! `metrics.jsonl`, `config.json` and `samples/latest.png`. Runs of one variant (sweep
//! folders `<variant>-s<seed>`) are pooled: mean line with a min/max band, mean ± std.
//! `load` reads the runs, `table` writes results.md, `plots` draws the figures; `semi`
//! reports semi-supervised runs (`pagan-train ssgan`): test accuracy instead of FID/KID.

mod load;
mod plots;
mod semi;
mod table;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use plotters::prelude::*;

pub use load::{Collected, RunData, collect_runs};
pub use plots::{CHART_SIZE, DEFAULT_FONT};
pub use table::{fmt_mean_std, mean_std};

use plots::{draw_err, ensure_font, loss_figure, metric_figure, samples_figure};
use table::results_md;

/// What `pagan-train report` draws from where.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Run folders, or sweep folders.
    pub inputs: Vec<PathBuf>,
    /// Folder for the plots and results.md.
    pub out: PathBuf,
    /// Heading of results.md (default: the sweep's `[report] title`, else "Results").
    pub title: Option<String>,
}

/// Renders a chart to `<stem>.png` (bitmap encoded with `image`) and `<stem>.svg`.
macro_rules! png_and_svg {
    ($out:expr, $stem:expr, |$root:ident| $draw:expr) => {{
        let (w, h) = CHART_SIZE;
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let $root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            $draw.map_err(draw_err)?;
        }
        let png = $out.join(format!("{}.png", $stem));
        image::RgbImage::from_raw(w, h, buf)
            .context("plot buffer size")?
            .save(&png)
            .with_context(|| format!("writing {}", png.display()))?;
        let svg = $out.join(format!("{}.svg", $stem));
        {
            let $root = SVGBackend::new(&svg, (w, h)).into_drawing_area();
            $draw.map_err(draw_err)?;
        }
    }};
}

/// Entry point of `pagan-train report`.
pub fn run(a: ReportOptions) -> Result<()> {
    ensure_font()?;
    let semi_runs = semi::collect(&a.inputs)?;
    if !semi_runs.is_empty() {
        let out = &a.out;
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        png_and_svg!(out, "accuracy", |root| semi::accuracy_figure(root, &semi_runs));
        let md = semi::results_md(&semi_runs, a.title.as_deref().unwrap_or("Semi-supervised GAN"));
        let md_path = out.join("results.md");
        std::fs::write(&md_path, md).with_context(|| format!("writing {}", md_path.display()))?;
        println!(
            "wrote {} (accuracy as .png/.svg) for {} semi-supervised runs",
            md_path.display(),
            semi_runs.len()
        );
        return Ok(());
    }
    let Collected {
        runs,
        title: sweep_title,
        left_out,
    } = collect_runs(&a.inputs)?;
    if runs.is_empty() {
        let why: Vec<String> = left_out
            .iter()
            .map(|(d, e)| format!("{}: {e}", d.display()))
            .collect();
        bail!(
            "no runs to report on{}",
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({})", why.join("; "))
            }
        );
    }
    let out = &a.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    png_and_svg!(out, "fid", |root| metric_figure(root, &runs, "FID", |m| m.fid));
    png_and_svg!(out, "kid", |root| metric_figure(root, &runs, "KID", |m| m.kid));
    png_and_svg!(out, "losses", |root| loss_figure(root, &runs));
    samples_figure(&runs, &out.join("samples.png"))?;
    let title = a.title.or(sweep_title).unwrap_or_else(|| "Results".into());
    let mut md = results_md(&runs, &title);
    if !left_out.is_empty() {
        // Said in the report itself: a variant's mean then covers fewer seeds.
        md.push_str(
            "\n## Left out\n\nThese run folders could not be read and are not in the tables or plots:\n\n",
        );
        for (dir, why) in &left_out {
            md.push_str(&format!("- `{}`: {why}\n", dir.display()));
        }
    }
    let md_path = out.join("results.md");
    std::fs::write(&md_path, md).with_context(|| format!("writing {}", md_path.display()))?;
    let left = match left_out.len() {
        0 => String::new(),
        n => format!(" ({n} left out: see results.md)"),
    };
    println!(
        "wrote {} (fid, kid, losses as .png/.svg, samples.png) for {} runs{left}",
        md_path.display(),
        runs.len()
    );
    Ok(())
}
