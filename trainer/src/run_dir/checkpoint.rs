//! Checkpoints: weights, SN vectors, BN statistics and Adam moments in one safetensors file;
//! iteration, PA state, schedule state and optimiser step counters in a JSON file written
//! last. Both go through temp file + rename, so a crash never leaves a torn checkpoint.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::objective::pa::PaState;

/// The pointer to the newest checkpoint, inside the checkpoint folder.
pub const LATEST_FILE: &str = "latest.json";

/// A checkpoint as read back: its meta and its named tensors.
pub type Saved = (CheckpointMeta, Vec<(String, Tensor)>);

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

/// Writes tensors and meta atomically, then drops all but the newest `keep` weight files.
pub(crate) fn save(d: &Path, tensors: &[(String, Tensor)], meta: &CheckpointMeta, keep: usize) -> Result<()> {
    std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    let wpath = d.join(&meta.weights_file);
    pagan_shared::fs::persist_atomic(&wpath, |tmp| {
        Tensor::write_safetensors(tensors, tmp).map_err(std::io::Error::other)
    })
    .with_context(|| format!("writing {}", wpath.display()))?;
    let json = serde_json::to_vec_pretty(meta)?;
    let latest = d.join(LATEST_FILE);
    pagan_shared::fs::write_atomic(&latest, &json)
        .with_context(|| format!("writing {}", latest.display()))?;
    prune(d, &meta.weights_file, keep)
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

/// The newest checkpoint's meta in the checkpoint folder `d`, or `None` when there is none.
pub(crate) fn read_meta(d: &Path) -> Result<Option<CheckpointMeta>> {
    let lp = d.join(LATEST_FILE);
    let bytes = match std::fs::read(&lp) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", lp.display())),
    };
    let meta = serde_json::from_slice(&bytes)
        .with_context(|| format!("corrupt checkpoint meta {}", lp.display()))?;
    Ok(Some(meta))
}

/// The newest checkpoint in `d`: its meta and named tensors, or `None` when there is none.
pub(crate) fn load_latest(d: &Path) -> Result<Option<Saved>> {
    let Some(meta) = read_meta(d)? else {
        return Ok(None);
    };
    let wpath = d.join(&meta.weights_file);
    if !wpath.exists() {
        bail!(
            "checkpoint {} names {}, which is missing",
            d.join(LATEST_FILE).display(),
            wpath.display()
        );
    }
    let tensors = Tensor::read_safetensors(&wpath).with_context(|| format!("reading {}", wpath.display()))?;
    Ok(Some((meta, tensors)))
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
