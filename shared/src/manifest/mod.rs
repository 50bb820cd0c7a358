//! `models/<name>/manifest.json`: the contract between trainer and server. The server
//! learns everything about a model from it (latent size and prior, image shape, ONNX IO
//! names) and refuses a model whose manifest and ONNX file disagree.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod classes;

pub use classes::{CLASSES_METADATA, ClassesSpec, LABELS_INPUT, cycle_labels};

/// The manifest format this crate reads and writes. Bump on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;
/// File name of a model's manifest inside its folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// True for names usable as a model/reference name: ASCII letters, digits, `-`, `_`,
/// `.`, not starting with `.`, at most 64 characters (also safe as a file name). The
/// server loads only such model folders, so `pagan-train export` writes only such names.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
/// File name of a generator's ONNX graph inside its folder.
pub const GENERATOR_FILE: &str = "generator.onnx";
/// Value range of generated images (tanh output).
pub const VALUE_RANGE: [f64; 2] = [-1.0, 1.0];

/// Errors reading, writing or checking a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The manifest file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not a manifest (bad JSON or missing/mistyped fields).
    #[error("{path}: not a valid model manifest: {source}")]
    Parse {
        /// The manifest file.
        path: PathBuf,
        /// Underlying error.
        source: serde_json::Error,
    },
    /// Serialising failed (cannot happen for well-formed values; kept for completeness).
    #[error("serialising manifest: {0}")]
    Serialize(#[source] serde_json::Error),
    /// A manifest written for another format version.
    #[error("manifest format_version {found} is not supported (this build reads {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// Fields that contradict each other or the format.
    #[error("manifest of model `{model}`: {message}")]
    Invalid {
        /// Model name as written in the manifest.
        model: String,
        /// What is wrong.
        message: String,
    },
    /// The ONNX file is not the one the manifest was written for.
    #[error("model `{model}`: {file} has sha256 {actual}, but the manifest records {expected}")]
    ShaMismatch {
        /// Model name.
        model: String,
        /// ONNX file name.
        file: String,
        /// Digest in the manifest.
        expected: String,
        /// Digest of the bytes.
        actual: String,
    },
}

/// What a model folder holds. Only generators for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// z [N, latent] -> images [N, C, H, W].
    Generator,
}

/// The latent input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatentSpec {
    /// Latent size.
    pub size: usize,
    /// Prior to sample z from; `uniform(-1,1)` ([`crate::latent::PRIOR`]).
    pub prior: String,
}

/// Shape of one generated image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSpec {
    /// Channels (1 grey, 3 RGB).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

/// How the model was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Iterations completed.
    pub iterations: u64,
    /// Progressive augmentation mode (`off`, `input`, `feat`).
    pub pa_mode: String,
    /// (iteration, new level) for every PA level-up.
    pub pa_level_history: Vec<(u64, i64)>,
    /// Base seed of the run.
    pub seed: u64,
    /// Wall seconds spent training.
    pub train_seconds: f64,
    /// FID at the end of training, if it was measured.
    #[serde(default)]
    pub final_fid: Option<f64>,
    /// KID at the end of training, if it was measured.
    #[serde(default)]
    pub final_kid: Option<f64>,
    /// Every evaluation of the run up to the exported checkpoint, for curves (manifests
    /// written before this field have none).
    #[serde(default)]
    pub evaluations: Vec<Evaluation>,
}

/// One evaluation during training: FID and/or KID at an iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Iteration of the evaluation.
    pub iter: u64,
    /// FID, if measured.
    pub fid: Option<f64>,
    /// KID, if measured.
    pub kid: Option<f64>,
}

/// One axis of an ONNX input/output: a fixed size or a symbol such as "N".
/// Serialised untagged, so a shape reads `["N", 128]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A symbolic (dynamic) size.
    Sym(String),
}

/// A named ONNX input or output with its shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    /// Value name in the graph.
    pub name: String,
    /// Shape; the batch axis is symbolic.
    pub shape: Vec<Dim>,
}

/// The ONNX file and its interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnnxSpec {
    /// File name inside the model folder (a plain name, never a path).
    pub file: String,
    /// Default-domain opset.
    pub opset: i64,
    /// ONNX IR version.
    pub ir_version: i64,
    /// The latent input `[N, latent]`.
    pub input: TensorSpec,
    /// The image output `[N, C, H, W]`.
    pub output: TensorSpec,
}

/// `manifest.json` of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    /// Model name (the folder's name).
    pub name: String,
    /// What the model is.
    pub kind: ModelKind,
    /// Always [`FORMAT_VERSION`] when written by this crate.
    pub format_version: u32,
    /// Latent input.
    pub latent: LatentSpec,
    /// Output image shape.
    pub image: ImageSpec,
    /// Range of output values, [-1, 1].
    pub value_range: [f64; 2],
    /// Dataset the model was trained on.
    pub dataset: String,
    /// Training summary.
    pub training: TrainingSummary,
    /// ONNX file and interface.
    pub onnx: OnnxSpec,
    /// The class input of a class-conditional generator (absent: unconditional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<ClassesSpec>,
    /// Lower-case hex sha256 of the ONNX file.
    pub sha256: String,
    /// Tool and version that wrote the model.
    pub created_by: String,
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a JSON manifest file into `T` (errors name the file).
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ManifestError> {
    serde_json::from_str(text).map_err(|source| ManifestError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// The text of a manifest file.
pub(crate) fn read_text(path: &Path) -> Result<String, ManifestError> {
    std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `value` as pretty JSON with a trailing newline, atomically (temp file + rename).
pub(crate) fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), ManifestError> {
    let mut text = serde_json::to_string_pretty(value).map_err(ManifestError::Serialize)?;
    text.push('\n');
    crate::fs::write_atomic(path, text.as_bytes()).map_err(|source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// True for a name usable as a single path component (no separators, not `.`/`..`).
fn is_plain_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\']) && !s.chars().any(char::is_control)
}

impl ModelManifest {
    /// Reads and validates a manifest.
    pub fn read(path: &Path) -> Result<Self, ManifestError> {
        let text = read_text(path)?;
        // Check the version first so a future format fails with a clear message, not a
        // field-by-field parse error.
        #[derive(Deserialize)]
        struct VersionOnly {
            format_version: u32,
        }
        if let Ok(v) = serde_json::from_str::<VersionOnly>(&text)
            && v.format_version != FORMAT_VERSION
        {
            return Err(ManifestError::UnsupportedVersion {
                found: v.format_version,
            });
        }
        let m: Self = read_json(path, &text)?;
        m.validate()?;
        Ok(m)
    }

    /// Validates and writes the manifest as pretty JSON, atomically (temp file + rename).
    pub fn write(&self, path: &Path) -> Result<(), ManifestError> {
        self.validate()?;
        write_json_atomic(path, self)
    }

    /// Path of the ONNX file for a manifest that lives in `model_dir`.
    pub fn onnx_path(&self, model_dir: &Path) -> PathBuf {
        model_dir.join(&self.onnx.file)
    }

    fn invalid(&self, message: impl Into<String>) -> ManifestError {
        ManifestError::Invalid {
            model: self.name.clone(),
            message: message.into(),
        }
    }

    /// Checks the fields against each other and the format: version, names, prior, value
    /// range, and that the ONNX input/output shapes agree with the latent and image specs.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.format_version != FORMAT_VERSION {
            return Err(ManifestError::UnsupportedVersion {
                found: self.format_version,
            });
        }
        if !is_plain_name(&self.name) {
            return Err(self.invalid(format!("name {:?} is not a plain folder name", self.name)));
        }
        if !is_plain_name(&self.onnx.file) {
            return Err(self.invalid(format!(
                "onnx.file {:?} must be a plain file name",
                self.onnx.file
            )));
        }
        if self.latent.size == 0 {
            return Err(self.invalid("latent.size is 0"));
        }
        if self.latent.prior != crate::latent::PRIOR {
            return Err(self.invalid(format!(
                "latent.prior {:?} is not supported (expected {:?})",
                self.latent.prior,
                crate::latent::PRIOR
            )));
        }
        let ImageSpec {
            channels,
            height,
            width,
        } = self.image;
        if !matches!(channels, 1 | 3) || height == 0 || width == 0 {
            return Err(self.invalid(format!(
                "image {channels}x{height}x{width} is not a 1- or 3-channel image"
            )));
        }
        if self.value_range != VALUE_RANGE {
            return Err(self.invalid(format!("value_range {:?} is not [-1, 1]", self.value_range)));
        }
        let dyn_batch = |d: Option<&Dim>| matches!(d, Some(Dim::Sym(s)) if !s.is_empty());
        let fixed = |dims: &[Dim]| -> Option<Vec<i64>> {
            dims.iter()
                .map(|d| match d {
                    Dim::Fixed(v) => Some(*v),
                    Dim::Sym(_) => None,
                })
                .collect()
        };
        let inp = &self.onnx.input.shape;
        if inp.len() != 2
            || !dyn_batch(inp.first())
            || fixed(&inp[1..]) != Some(vec![self.latent.size as i64])
        {
            return Err(self.invalid(format!(
                "onnx.input.shape {inp:?} should be [\"N\", {}]",
                self.latent.size
            )));
        }
        let out = &self.onnx.output.shape;
        let want = vec![channels as i64, height as i64, width as i64];
        if out.len() != 4 || !dyn_batch(out.first()) || fixed(&out[1..]) != Some(want) {
            return Err(self.invalid(format!(
                "onnx.output.shape {out:?} should be [\"N\", {channels}, {height}, {width}]"
            )));
        }
        if self.onnx.input.name.is_empty() || self.onnx.output.name.is_empty() {
            return Err(self.invalid("onnx input/output names must not be empty"));
        }
        if let Some(problem) = self
            .classes
            .as_ref()
            .and_then(|c| c.problem(&self.onnx.input.name))
        {
            return Err(self.invalid(problem));
        }
        let hex_ok = self.sha256.len() == 64
            && self
                .sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex_ok {
            return Err(self.invalid(format!(
                "sha256 {:?} is not 64 lower-case hex digits",
                self.sha256
            )));
        }
        Ok(())
    }

    /// Checks that `bytes` are the ONNX file this manifest describes (sha256).
    pub fn check_against_onnx_bytes(&self, bytes: &[u8]) -> Result<(), ManifestError> {
        let actual = sha256_hex(bytes);
        if actual != self.sha256 {
            return Err(ManifestError::ShaMismatch {
                model: self.name.clone(),
                file: self.onnx.file.clone(),
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

    fn sample(bytes: &[u8]) -> ModelManifest {
        ModelManifest {
            name: "fmnist".into(),
            kind: ModelKind::Generator,
            format_version: FORMAT_VERSION,
            latent: LatentSpec {
                size: 8,
                prior: crate::latent::PRIOR.into(),
            },
            image: ImageSpec {
                channels: 1,
                height: 28,
                width: 28,
            },
            value_range: VALUE_RANGE,
            dataset: "fashion-mnist".into(),
            training: TrainingSummary {
                iterations: 10,
                pa_mode: "input".into(),
                pa_level_history: vec![(5, 1)],
                seed: u64::MAX,
                train_seconds: 1.5,
                final_fid: None,
                final_kid: Some(0.01),
                evaluations: vec![Evaluation {
                    iter: 10,
                    fid: None,
                    kid: Some(0.01),
                }],
            },
            onnx: OnnxSpec {
                file: GENERATOR_FILE.into(),
                opset: 17,
                ir_version: 8,
                input: TensorSpec {
                    name: "z".into(),
                    shape: vec![Dim::Sym("N".into()), Dim::Fixed(8)],
                },
                output: TensorSpec {
                    name: "images".into(),
                    shape: vec![
                        Dim::Sym("N".into()),
                        Dim::Fixed(1),
                        Dim::Fixed(28),
                        Dim::Fixed(28),
                    ],
                },
            },
            classes: None,
            sha256: sha256_hex(bytes),
            created_by: "test".into(),
        }
    }

    #[test]
    fn roundtrip_and_shape_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let m = sample(b"onnx");
        m.write(&path).unwrap();
        assert_eq!(ModelManifest::read(&path).unwrap(), m);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"kind\": \"generator\""));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["onnx"]["input"]["shape"], serde_json::json!(["N", 8]));
    }

    #[test]
    fn sha_and_validation() {
        let m = sample(b"onnx");
        m.check_against_onnx_bytes(b"onnx").unwrap();
        assert!(matches!(
            m.check_against_onnx_bytes(b"other"),
            Err(ManifestError::ShaMismatch { .. })
        ));
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut bad = m.clone();
        bad.onnx.output.shape[2] = Dim::Fixed(32);
        assert!(matches!(bad.validate(), Err(ManifestError::Invalid { .. })));
        let mut cond = m.clone();
        cond.classes = Some(ClassesSpec {
            input: TensorSpec {
                name: LABELS_INPUT.into(),
                shape: vec![Dim::Sym("N".into())],
            },
            names: vec!["a".into(), "b".into()],
        });
        cond.validate().unwrap();
        assert_eq!(cond.classes.as_ref().and_then(|c| c.label_of("b")), Some(1));
        let mut fixed = cond.clone();
        if let Some(c) = fixed.classes.as_mut() {
            c.input.shape = vec![Dim::Fixed(5)];
        }
        assert!(
            matches!(fixed.validate(), Err(ManifestError::Invalid { .. })),
            "the labels' batch axis must be symbolic, like the latent's"
        );
        if let Some(c) = cond.classes.as_mut() {
            c.names = vec!["a".into(), "a".into()];
        }
        assert!(matches!(cond.validate(), Err(ManifestError::Invalid { .. })));
        let mut bad = m.clone();
        bad.onnx.file = "../x.onnx".into();
        assert!(bad.validate().is_err());
        let mut bad = m;
        bad.format_version = 2;
        assert!(matches!(
            bad.validate(),
            Err(ManifestError::UnsupportedVersion { found: 2 })
        ));
    }
}
