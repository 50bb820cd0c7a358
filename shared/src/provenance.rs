//! What a score was computed with, attached to every FID/KID we report (CLI JSON, the
//! server's responses, training metrics): enough to tell whether two numbers may be
//! compared, and with which outside tools' numbers.

use serde::{Deserialize, Serialize};

use crate::inception::{ResizeMode, WEIGHTS_ID};

/// Feature and statistics precision of every score.
pub const FEATURE_DTYPE: &str = "float32 features, float64 statistics";

/// How the convention of a score was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeSource {
    /// Recorded in the reference file.
    Reference,
    /// Given explicitly (flag or request), and the reference records none.
    Requested,
    /// Neither: the default (asymmetric, the paper's).
    Default,
}

/// The extractor side of a score's provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractorInfo {
    /// Which implementation ran the network (e.g. `tch cpu`, `onnxruntime cpu`).
    pub implementation: String,
    /// sha256 of the Inception weights file the network was built from, when known
    /// (extractor manifests written before it was recorded lack it).
    pub weights_sha256: Option<String>,
    /// sha256 of the ONNX graph, for the ONNX extractor.
    pub graph_sha256: Option<String>,
}

/// Everything a score depends on besides the images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Inception weights id ([`WEIGHTS_ID`]).
    pub weights: String,
    /// The extractor that computed the features.
    pub extractor: ExtractorInfo,
    /// Resize convention to 299x299.
    pub resize_mode: ResizeMode,
    /// Where that convention came from.
    pub resize_mode_source: ResizeSource,
    /// How `Tr((S1 S2)^{1/2})` was computed.
    pub sqrt_method: String,
    /// Images in the scored set.
    pub n: u64,
    /// Images behind the reference, when it records them.
    pub reference_n: Option<u64>,
    /// sha256 of the reference file, when scored against a file.
    pub reference_sha256: Option<String>,
    /// Precision of features and statistics ([`FEATURE_DTYPE`]).
    pub feature_dtype: String,
    /// Outside tools whose numbers this one can be compared with (same network and
    /// resize; sample sizes must match too).
    pub comparable_with: Vec<String>,
}

impl Provenance {
    /// Provenance of a score of `n` images against a reference of `reference_n`.
    pub fn new(
        extractor: ExtractorInfo,
        resize: (ResizeMode, ResizeSource),
        sqrt_method: &str,
        n: u64,
        reference: (Option<u64>, Option<String>),
    ) -> Self {
        Provenance {
            weights: WEIGHTS_ID.to_owned(),
            extractor,
            resize_mode: resize.0,
            resize_mode_source: resize.1,
            sqrt_method: sqrt_method.to_owned(),
            n,
            reference_n: reference.0,
            reference_sha256: reference.1,
            feature_dtype: FEATURE_DTYPE.to_owned(),
            comparable_with: resize
                .0
                .comparable_with()
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

/// The convention to score with: the reference's recorded one wins; a requested one that
/// differs is an error (the numbers would not be comparable), else it is used; else the
/// default.
pub fn pick_resize(
    recorded: Option<&str>,
    requested: Option<ResizeMode>,
) -> Result<(ResizeMode, ResizeSource), String> {
    let recorded = recorded.map(str::parse::<ResizeMode>).transpose()?;
    match (recorded, requested) {
        (Some(r), Some(q)) if r != q => Err(format!(
            "the reference was computed with the {r} resize; scoring with {q} would not be comparable \
             (omit the resize mode to use the reference's)"
        )),
        (Some(r), _) => Ok((r, ResizeSource::Reference)),
        (None, Some(q)) => Ok((q, ResizeSource::Requested)),
        (None, None) => Ok((ResizeMode::default(), ResizeSource::Default)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_decides_and_conflicts_are_errors() {
        assert_eq!(
            pick_resize(Some("clean"), None),
            Ok((ResizeMode::Clean, ResizeSource::Reference))
        );
        assert_eq!(
            pick_resize(Some("clean"), Some(ResizeMode::Clean)),
            Ok((ResizeMode::Clean, ResizeSource::Reference))
        );
        assert!(pick_resize(Some("clean"), Some(ResizeMode::HalfPixel)).is_err());
        assert!(pick_resize(Some("bogus"), None).is_err());
        assert_eq!(
            pick_resize(None, Some(ResizeMode::HalfPixel)),
            Ok((ResizeMode::HalfPixel, ResizeSource::Requested))
        );
        assert_eq!(
            pick_resize(None, None),
            Ok((ResizeMode::Asymmetric, ResizeSource::Default))
        );
        let p = Provenance::new(
            ExtractorInfo {
                implementation: "x".into(),
                weights_sha256: None,
                graph_sha256: None,
            },
            (ResizeMode::HalfPixel, ResizeSource::Requested),
            "m",
            10,
            (Some(5), None),
        );
        assert!(p.comparable_with.iter().any(|t| t == "pytorch-fid"));
    }
}
