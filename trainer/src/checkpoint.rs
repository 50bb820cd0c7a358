//! Checkpoints: weights, SN vectors, BN statistics and Adam moments in one safetensors file;
//! iteration, PA state, schedule state and optimiser step counters in a JSON file written
//! last. Both go through temp file + rename, so a crash never leaves a torn checkpoint.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::pa::PaState;

/// The JSON half of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Iterations completed.
    pub iter: u64,
    /// Safetensors file beside this JSON.
    pub weights_file: String,
    /// PA level and history.
    pub pa: PaState,
    /// The level-up rule's own state (e.g. KID history).
    pub schedule_state: serde_json::Value,
    /// G's Adam step counter.
    pub adam_g_step: u64,
    /// D's Adam step counter.
    pub adam_d_step: u64,
    /// RNG: every draw derives from (seed, iteration, stream), so these two are the whole state.
    pub seed: u64,
    /// Wall seconds spent training so far.
    pub train_seconds: f64,
}

/// The checkpoint folder of a run.
pub fn dir(run: &Path) -> PathBuf {
    run.join("checkpoints")
}

/// Path of the pointer to the newest checkpoint.
pub fn latest_path(run: &Path) -> PathBuf {
    dir(run).join("latest.json")
}

/// Writes tensors and meta atomically, then drops all but the newest `keep` weight files.
pub fn save(run: &Path, tensors: &[(String, Tensor)], meta: &CheckpointMeta, keep: usize) -> Result<()> {
    let d = dir(run);
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    let wpath = d.join(&meta.weights_file);
    let tmp = d.join(format!(".{}.tmp", meta.weights_file));
    Tensor::write_safetensors(tensors, &tmp).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &wpath).with_context(|| format!("renaming to {}", wpath.display()))?;
    let json = serde_json::to_vec_pretty(meta)?;
    pagan_shared::grid::write_atomic(&latest_path(run), &json)
        .with_context(|| format!("writing {}", latest_path(run).display()))?;
    prune(&d, &meta.weights_file, keep)
}

fn prune(d: &Path, newest: &str, keep: usize) -> Result<()> {
    let mut files: Vec<String> = std::fs::read_dir(d)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ckpt-") && n.ends_with(".safetensors"))
        .collect();
    files.sort();
    let n = files.len();
    for f in files.into_iter().take(n.saturating_sub(keep)) {
        if f != newest {
            let _ = std::fs::remove_file(d.join(f));
        }
    }
    Ok(())
}

/// File name of the weights at an iteration (zero-padded so names sort by iteration).
pub fn weights_name(iter: u64) -> String {
    format!("ckpt-{iter:09}.safetensors")
}

/// Reads the newest checkpoint: its meta and named tensors.
pub fn load_latest(run: &Path) -> Result<(CheckpointMeta, Vec<(String, Tensor)>)> {
    let lp = latest_path(run);
    let bytes = std::fs::read(&lp).with_context(|| {
        format!(
            "no checkpoint in {} (expected {}); was the run started with `pagan-train train`?",
            run.display(),
            lp.display()
        )
    })?;
    let meta: CheckpointMeta = serde_json::from_slice(&bytes)
        .with_context(|| format!("corrupt checkpoint meta {}", lp.display()))?;
    let wpath = dir(run).join(&meta.weights_file);
    if !wpath.exists() {
        bail!(
            "checkpoint {} names {}, which is missing",
            lp.display(),
            wpath.display()
        );
    }
    let tensors = Tensor::read_safetensors(&wpath).with_context(|| format!("reading {}", wpath.display()))?;
    Ok((meta, tensors))
}

/// Copies named tensors into `targets` (by name); every target must be present.
pub fn restore(targets: &[(String, Tensor)], saved: &[(String, Tensor)], what: &str) -> Result<()> {
    let map: std::collections::HashMap<&str, &Tensor> = saved.iter().map(|(n, t)| (n.as_str(), t)).collect();
    tch::no_grad(|| {
        for (name, t) in targets {
            let src = map
                .get(name.as_str())
                .with_context(|| format!("{what}: tensor {name} missing from checkpoint"))?;
            if src.size() != t.size() {
                bail!(
                    "{what}: {name} has shape {:?} in checkpoint, {:?} in the model",
                    src.size(),
                    t.size()
                );
            }
            let mut dst = t.shallow_clone();
            dst.f_copy_(src)
                .with_context(|| format!("{what}: copying {name}"))?;
        }
        Ok(())
    })
}
