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
        // A run stopped while writing leaves a last line without its newline: that one is
        // skipped (resume removes it); a bad line anywhere else is an error.
        let torn_tail = !text.ends_with('\n');
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .collect();
        let mut out = Vec::with_capacity(lines.len());
        for (k, &(no, l)) in lines.iter().enumerate() {
            match serde_json::from_str(l) {
                Ok(m) => out.push(m),
                Err(_) if torn_tail && k + 1 == lines.len() => tracing::warn!(
                    "{}: skipping its unfinished last line (the run stopped while writing it; \
                     `pagan-train resume` removes it)",
                    self.path.display()
                ),
                Err(e) => {
                    let shown: String = l.chars().take(120).collect();
                    anyhow::bail!("{} line {}: {e}: {shown}", self.path.display(), no + 1)
                }
            }
        }
        Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn line(iter: u64) -> String {
        format!(
            "{{\"iter\":{iter},\"d_loss\":1.0,\"g_loss\":1.0,\"d_acc_real\":0.5,\"d_acc_fake\":0.5,\
             \"pa_level\":0,\"pa_p\":0.0,\"sec_per_iter\":0.1}}"
        )
    }

    #[test]
    fn an_unfinished_last_line_is_skipped_and_a_bad_line_elsewhere_is_named() {
        let tmp = tempfile::tempdir().expect("tmp");
        let log = MetricsLog::at(tmp.path().join("metrics.jsonl"));
        let (a, b) = (line(100), line(200));
        std::fs::write(log.path(), format!("{a}\n{b}\n{{\"iter\":300,\"d_lo")).expect("write");
        let read = log.read().expect("a torn tail is not an error");
        assert_eq!(read.iter().map(|m| m.iter).collect::<Vec<_>>(), [100, 200]);
        // The same text with its newline was written whole: broken, and named by line.
        std::fs::write(log.path(), format!("{a}\n{{\"iter\":300,\"d_lo\n{b}\n")).expect("write");
        let err = log.read().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("line 2"), "{err}");
    }
}
