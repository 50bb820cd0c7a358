//! Where the FID Inception weights come from: the setup's TorchScript module (names equal
//! ours), or pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` state dict (torchvision
//! names, mapped here). A state dict tch cannot read (legacy pickle format) is converted
//! once with the setup's Python into an `.npz` beside it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

use crate::config::INCEPTION_WEIGHTS_ENV;

/// Environment variable naming the Python used to convert legacy `.pth` files.
pub const PYTHON_ENV: &str = "PAGAN_PYTHON";

/// Errors loading the weights.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// No file at the path.
    #[error(
        "FID Inception weights not found at {0}; run `make setup` (it fetches them into weights/) or pass \
         --inception-weights / set {INCEPTION_WEIGHTS_ENV}"
    )]
    Missing(PathBuf),
    /// Neither a TorchScript module nor a readable state dict.
    #[error("{path}: not a TorchScript module ({script}) nor a state dict ({state})")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why TorchScript loading failed.
        script: String,
        /// Why state-dict loading failed.
        state: String,
    },
    /// Names or shapes do not match the network.
    #[error("{path}: {message}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What does not match.
        message: String,
    },
}

fn python() -> PathBuf {
    std::env::var_os(PYTHON_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            option_env!("PAGAN_PYTHON_DEFAULT")
                .filter(|s| !s.is_empty() && Path::new(s).exists())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// torchvision branch name -> ours, within one block.
type BranchMap = Vec<(&'static str, &'static str)>;

/// torchvision block name -> (TorchScript block name, branch map).
fn block_table() -> Vec<(&'static str, &'static str, BranchMap)> {
    let a = vec![
        ("branch1x1", "conv"),
        ("branch5x5_1", "tower.conv"),
        ("branch5x5_2", "tower.conv_1"),
        ("branch3x3dbl_1", "tower_1.conv"),
        ("branch3x3dbl_2", "tower_1.conv_1"),
        ("branch3x3dbl_3", "tower_1.conv_2"),
        ("branch_pool", "tower_2.conv"),
    ];
    let b = vec![
        ("branch3x3", "conv"),
        ("branch3x3dbl_1", "tower.conv"),
        ("branch3x3dbl_2", "tower.conv_1"),
        ("branch3x3dbl_3", "tower.conv_2"),
    ];
    let c = vec![
        ("branch1x1", "conv"),
        ("branch7x7_1", "tower.conv"),
        ("branch7x7_2", "tower.conv_1"),
        ("branch7x7_3", "tower.conv_2"),
        ("branch7x7dbl_1", "tower_1.conv"),
        ("branch7x7dbl_2", "tower_1.conv_1"),
        ("branch7x7dbl_3", "tower_1.conv_2"),
        ("branch7x7dbl_4", "tower_1.conv_3"),
        ("branch7x7dbl_5", "tower_1.conv_4"),
        ("branch_pool", "tower_2.conv"),
    ];
    let d = vec![
        ("branch3x3_1", "tower.conv"),
        ("branch3x3_2", "tower.conv_1"),
        ("branch7x7x3_1", "tower_1.conv"),
        ("branch7x7x3_2", "tower_1.conv_1"),
        ("branch7x7x3_3", "tower_1.conv_2"),
        ("branch7x7x3_4", "tower_1.conv_3"),
    ];
    let e = vec![
        ("branch1x1", "conv"),
        ("branch3x3_1", "tower_conv"),
        ("branch3x3_2a", "tower_mixed_conv"),
        ("branch3x3_2b", "tower_mixed_conv_1"),
        ("branch3x3dbl_1", "tower_1_conv"),
        ("branch3x3dbl_2", "tower_1_conv_1"),
        ("branch3x3dbl_3a", "tower_1_mixed_conv"),
        ("branch3x3dbl_3b", "tower_1_mixed_conv_1"),
        ("branch_pool", "tower_2_conv"),
    ];
    vec![
        ("Mixed_5b", "mixed", a.clone()),
        ("Mixed_5c", "mixed_1", a.clone()),
        ("Mixed_5d", "mixed_2", a),
        ("Mixed_6a", "mixed_3", b),
        ("Mixed_6b", "mixed_4", c.clone()),
        ("Mixed_6c", "mixed_5", c.clone()),
        ("Mixed_6d", "mixed_6", c.clone()),
        ("Mixed_6e", "mixed_7", c),
        ("Mixed_7a", "mixed_8", d),
        ("Mixed_7b", "mixed_9", e.clone()),
        ("Mixed_7c", "mixed_10", e),
    ]
}

/// What a torchvision-style parameter becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    /// Our variable of this (TorchScript) name.
    Var(String),
    /// A BN scale that must be all ones (the TF graph has none); the layer's name.
    UnitScale(String),
    /// Not part of the feature extractor (classifier, BN counters, aux head).
    Ignored,
}

/// Maps one pytorch-fid / torchvision state-dict name to ours; None if unknown.
pub fn map_torchvision_name(name: &str) -> Option<Mapped> {
    if name.starts_with("fc.") || name.starts_with("AuxLogits.") || name.ends_with(".num_batches_tracked") {
        return Some(Mapped::Ignored);
    }
    let (layer, param) = name
        .strip_suffix(".conv.weight")
        .map(|l| (l, "weight"))
        .or_else(|| name.strip_suffix(".bn.bias").map(|l| (l, "beta")))
        .or_else(|| name.strip_suffix(".bn.running_mean").map(|l| (l, "mean")))
        .or_else(|| name.strip_suffix(".bn.running_var").map(|l| (l, "var")))
        .or_else(|| name.strip_suffix(".bn.weight").map(|l| (l, "gamma")))?;
    let stem = [
        ("Conv2d_1a_3x3", "conv"),
        ("Conv2d_2a_3x3", "conv_1"),
        ("Conv2d_2b_3x3", "conv_2"),
        ("Conv2d_3b_1x1", "conv_3"),
        ("Conv2d_4a_3x3", "conv_4"),
    ];
    let ours = if let Some((_, s)) = stem.iter().find(|(tv, _)| *tv == layer) {
        (*s).to_owned()
    } else {
        let (block, branch) = layer.split_once('.')?;
        let (_, ts_block, branches) = block_table().into_iter().find(|(tv, _, _)| *tv == block)?;
        let (_, ts_branch) = branches.into_iter().find(|(tv, _)| *tv == branch)?;
        format!("{ts_block}.{ts_branch}")
    };
    let full = format!("net.layers.{ours}");
    Some(if param == "gamma" {
        Mapped::UnitScale(full)
    } else {
        Mapped::Var(format!("{full}.{param}"))
    })
}

/// Reads named tensors from a TorchScript module, or from a state dict with torchvision
/// names (mapped to ours; BN scales checked to be 1 and dropped).
pub fn read_named(path: &Path) -> Result<Vec<(String, Tensor)>, WeightsError> {
    if !path.exists() {
        return Err(WeightsError::Missing(path.to_path_buf()));
    }
    let script_err = match tch::CModule::load(path).and_then(|m| m.named_parameters()) {
        Ok(named) => return Ok(named),
        Err(e) => first_line(&e.to_string()),
    };
    let raw = match Tensor::loadz_multi(path) {
        Ok(v) => v,
        Err(direct) => convert_with_python(path).map_err(|state| WeightsError::Unreadable {
            path: path.to_path_buf(),
            script: script_err,
            state: format!("tch: {}; python: {state}", first_line(&direct.to_string())),
        })?,
    };
    map_state_dict(path, raw)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_owned()
}

fn map_state_dict(path: &Path, raw: Vec<(String, Tensor)>) -> Result<Vec<(String, Tensor)>, WeightsError> {
    let bad = |message: String| WeightsError::Mismatch {
        path: path.to_path_buf(),
        message,
    };
    let mut out = Vec::with_capacity(raw.len());
    for (name, t) in raw {
        match map_torchvision_name(&name) {
            None => {
                return Err(bad(format!(
                    "unexpected parameter `{name}` for an FID Inception-v3"
                )));
            }
            Some(Mapped::Ignored) => {}
            Some(Mapped::Var(ours)) => out.push((ours, t)),
            Some(Mapped::UnitScale(layer)) => {
                let dev = (t.to_kind(Kind::Double) - 1.0).abs().max().double_value(&[]);
                if dev > 1e-6 {
                    return Err(bad(format!(
                        "`{name}` (BN scale of {layer}) is not 1 (max |gamma - 1| = {dev:.3e}); the TF-2015 \
                         FID network has no BN scale, so these are different weights"
                    )));
                }
            }
        }
    }
    Ok(out)
}

/// Converts a legacy-format state dict with the setup's Python: torch.load -> numpy `.npz`
/// beside the file (reused next time), or in the temp dir if that folder is read-only.
fn convert_with_python(path: &Path) -> Result<Vec<(String, Tensor)>, String> {
    let stem = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let beside = path.with_file_name(format!("{stem}.converted.npz"));
    if let Ok(cached) = Tensor::read_npz(&beside) {
        return Ok(cached);
    }
    let tmp = std::env::temp_dir().join(format!("{stem}.{}.converted.npz", std::process::id()));
    let mut errors = Vec::new();
    for target in [beside, tmp] {
        match run_converter(path, &target) {
            Ok(()) => {
                return Tensor::read_npz(&target).map_err(|e| format!("reading {}: {e}", target.display()));
            }
            Err(e) => errors.push(e),
        }
    }
    Err(errors.join("; "))
}

fn run_converter(path: &Path, target: &Path) -> Result<(), String> {
    let script = "import sys, numpy as np, torch\n\
                  sd = torch.load(sys.argv[1], map_location='cpu', weights_only=True)\n\
                  sd = sd.get('state_dict', sd)\n\
                  arrays = {k: v.detach().float().numpy() for k, v in sd.items() if v.is_floating_point()}\n\
                  with open(sys.argv[2], 'wb') as f:\n    np.savez(f, **arrays)\n";
    let py = python();
    let out = std::process::Command::new(&py)
        .arg("-c")
        .arg(script)
        .arg(path)
        .arg(target)
        .output()
        .map_err(|e| format!("running {}: {e}", py.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let _ = std::fs::remove_file(target);
    let err = String::from_utf8_lossy(&out.stderr);
    Err(format!(
        "{} failed: {}",
        py.display(),
        err.lines().last().unwrap_or("no message")
    ))
}

/// Copies `named` into `vars` (our variables by name): every variable exactly once, same
/// shape; anything extra or missing is an error naming it.
pub fn assign(
    path: &Path,
    vars: &HashMap<String, Tensor>,
    named: Vec<(String, Tensor)>,
) -> Result<(), WeightsError> {
    let bad = |message: String| WeightsError::Mismatch {
        path: path.to_path_buf(),
        message,
    };
    let mut seen = std::collections::HashSet::new();
    tch::no_grad(|| {
        for (name, src) in named {
            let dst = vars
                .get(&name)
                .ok_or_else(|| bad(format!("unexpected parameter `{name}`")))?;
            if dst.size() != src.size() {
                return Err(bad(format!(
                    "`{name}` has shape {:?}, the network needs {:?}",
                    src.size(),
                    dst.size()
                )));
            }
            let mut dst = dst.shallow_clone();
            dst.copy_(&src.to_kind(Kind::Float));
            seen.insert(name);
        }
        Ok(())
    })?;
    let mut missing: Vec<&String> = vars.keys().filter(|k| !seen.contains(*k)).collect();
    if !missing.is_empty() {
        missing.sort();
        return Err(bad(format!(
            "{} parameters missing, e.g. `{}`",
            missing.len(),
            missing[0]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_torchvision_names() {
        let var = |s: &str| Some(Mapped::Var(s.to_owned()));
        assert_eq!(
            map_torchvision_name("Conv2d_1a_3x3.conv.weight"),
            var("net.layers.conv.weight")
        );
        assert_eq!(
            map_torchvision_name("Mixed_6e.branch7x7dbl_5.bn.running_var"),
            var("net.layers.mixed_7.tower_1.conv_4.var")
        );
        assert_eq!(
            map_torchvision_name("Mixed_7c.branch3x3dbl_3b.bn.bias"),
            var("net.layers.mixed_10.tower_1_mixed_conv_1.beta")
        );
        assert_eq!(
            map_torchvision_name("Mixed_5b.branch_pool.bn.weight"),
            Some(Mapped::UnitScale("net.layers.mixed.tower_2.conv".into()))
        );
        assert_eq!(map_torchvision_name("fc.weight"), Some(Mapped::Ignored));
        assert_eq!(map_torchvision_name("Mixed_9z.branch1x1.conv.weight"), None);
        assert_eq!(map_torchvision_name("Mixed_6a.branch1x1.conv.weight"), None);
    }
}
