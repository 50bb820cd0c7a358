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

/// How images are resized to 299x299 before the Inception: the conventions of the three
/// families of FID tools. Every convention is a separable linear map per axis (a few taps
/// per output pixel, see [`ResizeMode::axis_taps`]); `clean` also clips to 0..255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// TF1 `resize_bilinear` (align_corners=False, no half-pixel centres): `src = dst * in / out`.
    /// What TF FID (TTUR), torch-fidelity, clean-fid's `legacy_tensorflow` and the paper use;
    /// ONNX `linear` + `asymmetric`.
    #[default]
    Asymmetric,
    /// PyTorch `interpolate(bilinear, align_corners=False)` as in pytorch-fid (and
    /// clean-fid's `legacy_pytorch`): `src = (dst + 0.5) * in / out - 0.5`, clamped at 0;
    /// ONNX `linear` + `half_pixel`.
    HalfPixel,
    /// clean-fid's default: PIL's bicubic filter (a = -0.5, support widened by the scale
    /// when shrinking, weights renormalised at the borders) on float images, per channel,
    /// then clipped to 0..255, not quantised.
    Clean,
}

/// PIL's bicubic kernel (`a = -0.5`), support 2.
fn pil_bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

impl ResizeMode {
    /// Every convention, in the order the docs list them.
    pub const ALL: [ResizeMode; 3] = [ResizeMode::Asymmetric, ResizeMode::HalfPixel, ResizeMode::Clean];

    /// The name used on the command line, in files and in JSON (`asymmetric`, `half_pixel`, `clean`).
    pub fn as_str(self) -> &'static str {
        match self {
            ResizeMode::Asymmetric => "asymmetric",
            ResizeMode::HalfPixel => "half_pixel",
            ResizeMode::Clean => "clean",
        }
    }

    /// The tools whose published numbers use this convention (with the TF-2015 Inception).
    pub fn comparable_with(self) -> &'static [&'static str] {
        match self {
            ResizeMode::Asymmetric => &[
                "TTUR / TF1 FID (the PA-GAN paper)",
                "torch-fidelity",
                "clean-fid mode=legacy_tensorflow",
            ],
            ResizeMode::HalfPixel => &["pytorch-fid", "clean-fid mode=legacy_pytorch"],
            ResizeMode::Clean => &["clean-fid mode=clean (its default)"],
        }
    }

    /// True when an ONNX `Resize` (linear) expresses the convention exactly, so the
    /// exported graph can hold it; `clean` runs before the graph instead.
    pub fn in_graph(self) -> bool {
        !matches!(self, ResizeMode::Clean)
    }

    /// True when the resized values are clipped to 0..255 (bicubic overshoots).
    pub fn clips(self) -> bool {
        matches!(self, ResizeMode::Clean)
    }

    /// Source coordinate (in input pixels, clamped to `[0, in - 1]`) of output index `dst`
    /// for the two bilinear conventions.
    fn linear_coord(self, dst: usize, in_len: usize, out_len: usize) -> f64 {
        let scale = in_len as f64 / out_len as f64;
        let x = match self {
            ResizeMode::HalfPixel => (dst as f64 + 0.5) * scale - 0.5,
            _ => dst as f64 * scale,
        };
        x.clamp(0.0, (in_len - 1) as f64)
    }

    /// For every output index along one axis: the input indices it reads and their
    /// weights (summing to 1), computed in f64.
    pub fn axis_taps(self, in_len: usize, out_len: usize) -> Vec<Vec<(usize, f64)>> {
        (0..out_len)
            .map(|d| match self {
                ResizeMode::Asymmetric | ResizeMode::HalfPixel => {
                    let x = self.linear_coord(d, in_len, out_len);
                    let i0 = x.floor() as usize;
                    let i1 = (i0 + 1).min(in_len - 1);
                    let w = x - i0 as f64;
                    // A zero weight (an exact source pixel) reads nothing: at the same size
                    // every output pixel is its input pixel, weight 1.
                    if i1 == i0 || w == 0.0 {
                        vec![(i0, 1.0)]
                    } else {
                        vec![(i0, 1.0 - w), (i1, w)]
                    }
                }
                ResizeMode::Clean => pil_bicubic_taps(d, in_len, out_len),
            })
            .collect()
    }
}

/// PIL's `precompute_coeffs` for the bicubic filter: the window of input pixels whose
/// centres lie within the (scaled) support of output pixel `d`'s centre, outside pixels
/// dropped and the weights renormalised.
fn pil_bicubic_taps(d: usize, in_len: usize, out_len: usize) -> Vec<(usize, f64)> {
    const SUPPORT: f64 = 2.0;
    let scale = in_len as f64 / out_len as f64;
    let filter_scale = scale.max(1.0);
    let support = SUPPORT * filter_scale;
    let center = (d as f64 + 0.5) * scale;
    // PIL truncates toward zero (C `(int)`), then clamps to the image.
    let lo = ((center - support + 0.5).trunc().max(0.0)) as usize;
    let hi = ((center + support + 0.5).trunc() as usize).min(in_len);
    let mut taps: Vec<(usize, f64)> = (lo..hi)
        .map(|x| (x, pil_bicubic((x as f64 - center + 0.5) / filter_scale)))
        .collect();
    let total: f64 = taps.iter().map(|t| t.1).sum();
    if total != 0.0 {
        for t in &mut taps {
            t.1 /= total;
        }
    }
    taps.retain(|t| t.1 != 0.0);
    taps
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
            "asymmetric" | "tf1" | "legacy_tensorflow" => Ok(Self::Asymmetric),
            "half_pixel" | "half-pixel" | "pytorch" | "legacy_pytorch" => Ok(Self::HalfPixel),
            "clean" | "clean-fid" | "clean_fid" => Ok(Self::Clean),
            _ => Err(format!(
                "unknown resize mode {s:?}: use asymmetric (TF1, the paper's; default), half_pixel \
                 (pytorch-fid) or clean (clean-fid)"
            )),
        }
    }
}

/// Float64 reference of the whole preprocessing for one image: `[C, H, W]` values in
/// 0..255 (C = 1 is replicated to 3) -> `[3, 299, 299]` resized (clipped for `clean`) and
/// normalised. Slow and plain on purpose: tests hold the tch and ONNX versions against it.
pub fn preprocess_reference(img: &[f64], c: usize, h: usize, w: usize, mode: ResizeMode) -> Vec<f64> {
    let s = INPUT_SIDE;
    let (ty, tx) = (mode.axis_taps(h, s), mode.axis_taps(w, s));
    let mut out = vec![0.0; 3 * s * s];
    for oc in 0..3 {
        let ic = if c == 1 { 0 } else { oc };
        let plane = &img[ic * h * w..(ic + 1) * h * w];
        for (oy, ry) in ty.iter().enumerate() {
            for (ox, rx) in tx.iter().enumerate() {
                let mut v = 0.0;
                for &(y, wy) in ry {
                    for &(x, wx) in rx {
                        v += plane[y * w + x] * wy * wx;
                    }
                }
                if mode.clips() {
                    v = v.clamp(0.0, 255.0);
                }
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
    /// sha256 of that weights file (absent in manifests written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
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
        let coords = |m: ResizeMode| -> Vec<f64> {
            m.axis_taps(2, 4)
                .iter()
                .map(|t| t.iter().map(|&(i, w)| i as f64 * w).sum())
                .collect()
        };
        // 2 -> 4, asymmetric: 0, 0.5, 1, 1.5 (clamped to 1).
        assert_eq!(coords(ResizeMode::Asymmetric), vec![0.0, 0.5, 1.0, 1.0]);
        // half-pixel: -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
        assert_eq!(coords(ResizeMode::HalfPixel), vec![0.0, 0.25, 0.75, 1.0]);
        assert_eq!("tf1".parse::<ResizeMode>(), Ok(ResizeMode::Asymmetric));
        assert_eq!("clean".parse::<ResizeMode>(), Ok(ResizeMode::Clean));
        assert!("nearest".parse::<ResizeMode>().is_err());
    }

    #[test]
    fn pil_bicubic_taps_sum_to_one_and_widen_when_shrinking() {
        for (i, o) in [(28, 299), (64, 299), (299, 299), (512, 299), (1000, 299)] {
            for taps in ResizeMode::Clean.axis_taps(i, o) {
                let sum: f64 = taps.iter().map(|t| t.1).sum();
                assert!((sum - 1.0).abs() < 1e-12, "{i}->{o}: {sum}");
                assert!(taps.iter().all(|&(x, _)| x < i));
            }
        }
        // Same size: the identity (the kernel is 0 at integer distances but 0).
        assert!(
            ResizeMode::Clean
                .axis_taps(7, 7)
                .iter()
                .enumerate()
                .all(|(d, t)| t == &vec![(d, 1.0)])
        );
        // Upscaling reads at most 4 pixels; shrinking 1000 -> 299 about 4 * 3.34.
        assert!(ResizeMode::Clean.axis_taps(28, 299).iter().all(|t| t.len() <= 4));
        assert!(
            ResizeMode::Clean
                .axis_taps(1000, 299)
                .iter()
                .any(|t| t.len() >= 13)
        );
    }

    #[test]
    fn reference_keeps_a_constant_image_constant() {
        let img = vec![200.0; 7 * 5];
        let out = preprocess_reference(&img, 1, 7, 5, ResizeMode::HalfPixel);
        assert!(out.iter().all(|&v| (v - 72.0 / 128.0).abs() < 1e-12));
    }
}
