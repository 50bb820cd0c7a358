//! The FID feature extractor's contract: how images are resized to 299x299 before the
//! TF-2015 Inception-v3, and `models/inception/manifest.json`, which the trainer writes
//! next to `inception.onnx` and the server reads.

use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::manifest::{ManifestError, TensorSpec, sha256_hex};

/// Side of the square image the network sees.
pub const INPUT_SIDE: usize = 299;
/// Length of one feature vector (pool3).
pub const FEATURE_DIM: usize = 2048;
/// Identifier of the weights every comparable FID uses.
pub const WEIGHTS_ID: &str = "tf-inception-2015-12-05";
/// Folder (inside `models/`) and manifest `kind` of the feature extractor.
pub const INCEPTION_DIR: &str = "inception";
/// ONNX file name inside the folder.
pub const INCEPTION_FILE: &str = "inception.onnx";
/// Manifest `kind` value of the feature extractor.
pub const INCEPTION_KIND: &str = "feature_extractor";
/// Format version of the inception manifest.
pub const INCEPTION_FORMAT_VERSION: u32 = 1;
/// Value pixels are centred on and divided by after resizing: `(x - 128) / 128`.
pub const NORM_CENTER: f64 = 128.0;

/// Where an output pixel samples the input when resizing (bilinear in both modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// TF1 `resize_bilinear` (align_corners=False, no half-pixel centres): `src = dst * in / out`.
    /// What TF FID, torch-fidelity and the paper use; ONNX `asymmetric`.
    #[default]
    Asymmetric,
    /// PyTorch `interpolate(bilinear, align_corners=False)` as in pytorch-fid:
    /// `src = (dst + 0.5) * in / out - 0.5`, clamped at 0; ONNX `half_pixel`.
    HalfPixel,
}

impl ResizeMode {
    /// The name used on the command line, in files and in ONNX (`asymmetric`, `half_pixel`).
    pub fn as_str(self) -> &'static str {
        match self {
            ResizeMode::Asymmetric => "asymmetric",
            ResizeMode::HalfPixel => "half_pixel",
        }
    }

    /// Source coordinate (in input pixels, clamped to `[0, in - 1]`) of output index `dst`.
    pub fn source_coord(self, dst: usize, in_len: usize, out_len: usize) -> f64 {
        let scale = in_len as f64 / out_len as f64;
        let x = match self {
            ResizeMode::Asymmetric => dst as f64 * scale,
            ResizeMode::HalfPixel => (dst as f64 + 0.5) * scale - 0.5,
        };
        x.clamp(0.0, (in_len - 1) as f64)
    }

    /// For every output index: the two input indices and the weight of the second.
    pub fn taps(self, in_len: usize, out_len: usize) -> Vec<(usize, usize, f64)> {
        (0..out_len)
            .map(|d| {
                let x = self.source_coord(d, in_len, out_len);
                let i0 = x.floor() as usize;
                let i1 = (i0 + 1).min(in_len - 1);
                (i0, i1, x - i0 as f64)
            })
            .collect()
    }
}

impl std::fmt::Display for ResizeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResizeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "asymmetric" | "tf1" => Ok(Self::Asymmetric),
            "half_pixel" | "half-pixel" | "pytorch" => Ok(Self::HalfPixel),
            _ => Err(format!(
                "unknown resize mode {s:?}: use asymmetric (TF1, default) or half_pixel (pytorch-fid)"
            )),
        }
    }
}

/// Float64 reference of the whole preprocessing for one image: `[C, H, W]` values in
/// 0..255 (C = 1 is replicated to 3) -> `[3, 299, 299]` resized and normalised. Slow and
/// plain on purpose: tests hold the tch and ONNX versions against it.
pub fn preprocess_reference(img: &[f64], c: usize, h: usize, w: usize, mode: ResizeMode) -> Vec<f64> {
    let s = INPUT_SIDE;
    let (ty, tx) = (mode.taps(h, s), mode.taps(w, s));
    let mut out = vec![0.0; 3 * s * s];
    for oc in 0..3 {
        let ic = if c == 1 { 0 } else { oc };
        let plane = &img[ic * h * w..(ic + 1) * h * w];
        for (oy, &(y0, y1, wy)) in ty.iter().enumerate() {
            for (ox, &(x0, x1, wx)) in tx.iter().enumerate() {
                let p = |y: usize, x: usize| plane[y * w + x];
                let top = p(y0, x0) * (1.0 - wx) + p(y0, x1) * wx;
                let bot = p(y1, x0) * (1.0 - wx) + p(y1, x1) * wx;
                let v = top * (1.0 - wy) + bot * wy;
                out[(oc * s + oy) * s + ox] = (v - NORM_CENTER) / NORM_CENTER;
            }
        }
    }
    out
}

/// `models/inception/manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InceptionManifest {
    /// Always [`INCEPTION_KIND`].
    pub kind: String,
    /// Always [`INCEPTION_FORMAT_VERSION`] when written by this crate.
    pub format_version: u32,
    /// Which weights ([`WEIGHTS_ID`]).
    pub weights: String,
    /// The file the weights were read from (for provenance).
    pub weights_source: String,
    /// Resize built into the graph.
    pub resize_mode: ResizeMode,
    /// ONNX file name inside the folder.
    pub file: String,
    /// Default-domain opset.
    pub opset: i64,
    /// `images` [N, 3, H, W], float32 in 0..255.
    pub input: TensorSpec,
    /// `features` [N, 2048].
    pub output: TensorSpec,
    /// Lower-case hex sha256 of the ONNX file.
    pub sha256: String,
    /// Tool and version that wrote it.
    pub created_by: String,
}

impl InceptionManifest {
    fn invalid(message: String) -> ManifestError {
        ManifestError::Invalid {
            model: INCEPTION_DIR.to_owned(),
            message,
        }
    }

    /// Checks kind, version and file name.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.kind != INCEPTION_KIND {
            return Err(Self::invalid(format!(
                "kind {:?} is not {INCEPTION_KIND:?}",
                self.kind
            )));
        }
        if self.format_version != INCEPTION_FORMAT_VERSION {
            return Err(ManifestError::UnsupportedVersion {
                found: self.format_version,
            });
        }
        if self.file.is_empty() || self.file.contains(['/', '\\']) || self.file == ".." {
            return Err(Self::invalid(format!(
                "file {:?} must be a plain file name",
                self.file
            )));
        }
        Ok(())
    }

    /// Reads and validates a manifest.
    pub fn read(path: &Path) -> Result<Self, ManifestError> {
        let m: Self = crate::manifest::read_json(path, &crate::manifest::read_text(path)?)?;
        m.validate()?;
        Ok(m)
    }

    /// Validates and writes the manifest atomically.
    pub fn write(&self, path: &Path) -> Result<(), ManifestError> {
        self.validate()?;
        crate::manifest::write_json_atomic(path, self)
    }

    /// Errors unless `bytes` hash to the recorded sha256.
    pub fn check_bytes(&self, bytes: &[u8]) -> Result<(), ManifestError> {
        let actual = sha256_hex(bytes);
        if actual != self.sha256 {
            return Err(ManifestError::ShaMismatch {
                model: INCEPTION_DIR.to_owned(),
                file: self.file.clone(),
                expected: self.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_follow_each_convention() {
        // 2 -> 4, asymmetric: 0, 0.5, 1, 1.5 (clamped to 1).
        let a: Vec<f64> = (0..4)
            .map(|d| ResizeMode::Asymmetric.source_coord(d, 2, 4))
            .collect();
        assert_eq!(a, vec![0.0, 0.5, 1.0, 1.0]);
        // half-pixel: -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
        let h: Vec<f64> = (0..4)
            .map(|d| ResizeMode::HalfPixel.source_coord(d, 2, 4))
            .collect();
        assert_eq!(h, vec![0.0, 0.25, 0.75, 1.0]);
        assert_eq!("tf1".parse::<ResizeMode>(), Ok(ResizeMode::Asymmetric));
        assert!("nearest".parse::<ResizeMode>().is_err());
    }

    #[test]
    fn reference_keeps_a_constant_image_constant() {
        let img = vec![200.0; 7 * 5];
        let out = preprocess_reference(&img, 1, 7, 5, ResizeMode::HalfPixel);
        assert!(out.iter().all(|&v| (v - 72.0 / 128.0).abs() < 1e-12));
    }
}
