//! Runs an image source through a feature extractor along the shared path
//! (`pagan_shared::features`), with a progress bar.

use std::time::Instant;

use anyhow::{Result, bail};
use pagan_shared::features::{FeatureExtractor, FeatureSink, Features, KeepRows};

use super::sources::ImageSource;

/// Images per Inception batch unless told otherwise.
pub const DEFAULT_BATCH: usize = 50;

/// How [`extract`] runs.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Images per Inception call.
    pub batch: usize,
    /// Which raw feature rows to keep besides the statistics.
    pub keep: KeepRows,
    /// Progress-bar label.
    pub label: String,
    /// No progress bar.
    pub quiet: bool,
}

/// Features of a whole image set, and how long they took.
#[derive(Debug)]
pub struct Extracted {
    /// Statistics and (kept) rows.
    pub features: Features,
    /// Wall seconds.
    pub seconds: f64,
}

impl Extracted {
    /// Images per second.
    pub fn rate(&self) -> f64 {
        self.features.n() as f64 / self.seconds.max(1e-9)
    }
}

/// Every image of `src` through `fx`, streamed into statistics.
pub fn extract(
    src: &mut dyn ImageSource,
    fx: &mut dyn FeatureExtractor,
    opts: &ExtractOptions,
) -> Result<Extracted> {
    let total = src.len();
    if total == 0 {
        bail!("no images to evaluate");
    }
    let bar = crate::progress::bar(total as u64, 0, "images", opts.quiet);
    bar.set_message(opts.label.clone());
    let start = Instant::now();
    let batch = opts.batch.max(1);
    let mut sink = FeatureSink::new(fx, batch, opts.keep)?.on_progress(|done| bar.set_position(done));
    loop {
        let images = src.next_batch(batch)?;
        if images.is_empty() {
            break;
        }
        for img in images {
            sink.push(img)?;
        }
    }
    let features = sink.finish()?;
    bar.finish_and_clear();
    Ok(Extracted {
        features,
        seconds: start.elapsed().as_secs_f64(),
    })
}
