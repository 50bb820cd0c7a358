//! The error type shared by feature statistics, `.npz` I/O, Frechet distance and KID.

use std::path::PathBuf;

/// Everything that can go wrong while accumulating, storing or comparing feature
/// statistics.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// A feature dimension of zero was requested.
    #[error("feature dimension must be at least 1")]
    ZeroDim,

    /// A flat row-major buffer does not hold `rows * dim` values.
    #[error("expected {rows} rows x {dim} features = {expected} values, got {got}")]
    Shape {
        /// Number of rows the caller announced (or that the buffer implies).
        rows: usize,
        /// Feature dimension.
        dim: usize,
        /// `rows * dim`.
        expected: usize,
        /// Length of the buffer actually passed.
        got: usize,
    },

    /// Two objects that must share a feature dimension do not.
    #[error("dimension mismatch in {what}: {left} vs {right}")]
    DimMismatch {
        /// What was being combined or compared.
        what: &'static str,
        /// Dimension of the first operand.
        left: usize,
        /// Dimension of the second operand.
        right: usize,
    },

    /// A feature row holds NaN or infinity (it would poison every sum).
    #[error("non-finite feature value {value} at row {row}, column {col}")]
    NonFiniteFeature {
        /// Row index within the batch passed to the call.
        row: usize,
        /// Column (feature) index.
        col: usize,
        /// The offending value.
        value: f32,
    },

    /// A mean or covariance holds NaN or infinity.
    #[error("non-finite value in {what} at flat index {index}")]
    NonFinite {
        /// Which array (e.g. "mu", "sigma").
        what: &'static str,
        /// Flat (row-major) index of the first bad value.
        index: usize,
    },

    /// Too few samples to estimate a covariance (the unbiased estimator divides by n-1).
    #[error("need at least {needed} samples, got {n}")]
    TooFewSamples {
        /// Samples available.
        n: u64,
        /// Samples required.
        needed: u64,
    },

    /// A covariance matrix is not symmetric beyond rounding.
    #[error("{what} is not symmetric: max |S - S^T| = {max_asym:e} (max |S| = {max_abs:e})")]
    NotSymmetric {
        /// Which matrix.
        what: &'static str,
        /// Largest absolute asymmetry.
        max_asym: f64,
        /// Largest absolute entry, for scale.
        max_abs: f64,
    },

    /// faer's eigensolver did not converge.
    #[error("eigendecomposition of {what} did not converge")]
    Eigen {
        /// Which matrix.
        what: &'static str,
    },

    /// Invalid configuration (e.g. a KID subset count of zero).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A statistics file is malformed or holds invalid statistics.
    #[error("{}: {msg}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The file is not a readable `.npz` container (a zip archive).
    #[error("{}: not a readable .npz file (an .npz is a zip archive: {source})", path.display())]
    NotNpz {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: zip::result::ZipError,
    },

    /// The `.npz` container (a zip archive) could not be written.
    #[error("{}: zip archive: {source}", path.display())]
    Zip {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: zip::result::ZipError,
    },
}

/// One line for an error and its causes (`a: b: c`), leaving out a cause whose text the
/// line already holds: many errors here print their source inline (the server's JSON
/// messages need that), and a plain chain would then say it twice.
pub fn chain_message<'a>(chain: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut line = String::new();
    for e in chain {
        let text = e.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("reading {0}: {1}")]
        Inline(&'static str, #[source] std::io::Error),
        #[error("loading the reference")]
        Bare(#[source] std::io::Error),
    }

    fn chain<'a>(e: &'a (dyn std::error::Error + 'static)) -> Vec<&'a (dyn std::error::Error + 'static)> {
        std::iter::successors(Some(e), |e| e.source()).collect()
    }

    #[test]
    fn chain_message_says_each_cause_once() {
        let missing = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let inline = Outer::Inline("x.npz", missing());
        assert_eq!(chain_message(chain(&inline)), "reading x.npz: no such file");
        let bare = Outer::Bare(missing());
        assert_eq!(chain_message(chain(&bare)), "loading the reference: no such file");
    }
}
