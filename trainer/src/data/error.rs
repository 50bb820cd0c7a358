//! Dataset errors: every variant names the file, folder or URL involved, and a missing
//! dataset says where it was looked for and how to obtain it.

use std::path::{Path, PathBuf};

/// Errors from loading or fetching datasets. Every variant names the file or URL involved.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Files are not where they were looked for. `hint` lists every path looked at and how to
    /// obtain the data.
    #[error("dataset files not found: {}\n{hint}", path.display())]
    Missing {
        /// The first (preferred) path that was looked for.
        path: PathBuf,
        /// All paths looked at and how to get the data.
        hint: String,
    },
    /// A file exists but its contents are not in the expected format.
    #[error("corrupt or unsupported data file {}: {reason}", path.display())]
    Corrupt {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O error while reading a file or listing a folder.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An unknown dataset name on the command line.
    #[error("unknown dataset `{name}`: {reason}")]
    UnknownDataset {
        /// What was given.
        name: String,
        /// Why it was rejected (lists the valid names).
        reason: String,
    },
    /// An unknown split name.
    #[error("unknown split `{name}`: valid splits are train, test")]
    UnknownSplit {
        /// What was given.
        name: String,
    },
    /// A download failed (usually: no internet access from this machine).
    #[error(
        "cannot download {url} into {}: {reason}\nThis machine appears to have no internet \
         access (or the server refused). Download the file on a machine with internet and copy \
         it to {}",
        target.display(),
        target.display()
    )]
    Download {
        /// The URL that was tried.
        url: String,
        /// Where the file was to be written.
        target: PathBuf,
        /// curl's message or exit status.
        reason: String,
    },
    /// The dataset cannot be downloaded automatically; `instructions` says how to get it.
    #[error("{dataset} cannot be downloaded automatically.\n{instructions}")]
    ManualDownload {
        /// Which dataset.
        dataset: String,
        /// What to download and where to put it.
        instructions: String,
    },
}

impl DataError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}
