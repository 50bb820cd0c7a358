//! `metrics.jsonl`: one JSON line per `--log-every` iterations (and per evaluation), means
//! over the iterations since the previous line.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One line of `metrics.jsonl`.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct MetricsLine {
    /// Iterations completed.
    pub iter: u64,
    /// D loss (its loss on reals plus on fakes; the penalty is not included).
    pub d_loss: f64,
    /// G loss (against the flipped PA label).
    pub g_loss: f64,
    /// D accuracy on reals against their PA targets.
    pub d_acc_real: f64,
    /// D accuracy on fakes against their PA targets.
    pub d_acc_fake: f64,
    /// PA level.
    pub pa_level: i64,
    /// P(newest bit = 1).
    pub pa_p: f64,
    /// Wall seconds per iteration over the window.
    pub sec_per_iter: f64,
    /// KID of generated vs training images, on lines where an evaluation ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<f64>,
    /// Standard deviation of that KID over subsets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid_std: Option<f64>,
    /// FID vs the configured reference, on lines where an evaluation ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<f64>,
    /// Precision/recall/density/coverage of the evaluation (with `--eval-prdc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prdc: Option<pagan_shared::prdc::Prdc>,
    /// What the evaluation's numbers were computed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<pagan_shared::provenance::Provenance>,
    /// Wall seconds the evaluation took (not counted in `sec_per_iter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_seconds: Option<f64>,
}

/// A run's metrics file.
#[derive(Debug, Clone)]
pub struct MetricsLog {
    path: PathBuf,
}

/// Appends lines to a metrics file (each line is written whole with one `write` call).
pub struct MetricsWriter {
    file: std::fs::File,
    path: PathBuf,
}

impl MetricsWriter {
    /// Appends one line.
    pub fn append(&mut self, line: &MetricsLine) -> Result<()> {
        let mut text = serde_json::to_string(line)?;
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Flushes to the OS.
    pub fn flush(&mut self) -> Result<()> {
        self.file
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

impl MetricsLog {
    /// The metrics file at `path`.
    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens it for appending (created if missing).
    pub fn writer(&self) -> Result<MetricsWriter> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        Ok(MetricsWriter {
            file,
            path: self.path.clone(),
        })
    }

    /// Every line; a missing file is no lines.
    pub fn read(&self) -> Result<Vec<MetricsLine>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.path.display())),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).with_context(|| format!("bad line in {}: {l}", self.path.display()))
            })
            .collect()
    }

    /// Drops lines past `iter` (written after the checkpoint a resume starts from), and a
    /// torn last line a kill may have left.
    pub fn truncate_after(&self, iter: u64) -> Result<()> {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return Ok(());
        };
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| serde_json::from_str::<MetricsLine>(l).is_ok_and(|m| m.iter <= iter))
            .collect();
        let mut out = kept.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        pagan_shared::fs::write_atomic(&self.path, out.as_bytes())
            .with_context(|| format!("rewriting {}", self.path.display()))
    }
}
