//! The files of one request on disk, as the HTTP layer received them: what scoring reads
//! (and reference uploads store). Deleted when dropped.

use std::path::PathBuf;

/// One uploaded file on disk.
#[derive(Debug)]
pub struct Part {
    /// Where its bytes are.
    pub path: PathBuf,
    /// The client's file name (multipart) or None (raw body).
    pub filename: Option<String>,
    /// Declared content type, if any.
    pub content_type: Option<String>,
    /// Size in bytes.
    pub size: u64,
}

impl Part {
    /// Name for messages: the client's file name or "request body".
    pub fn label(&self) -> String {
        self.filename.clone().unwrap_or_else(|| "request body".into())
    }
}

/// The files of one request, deleted when dropped.
#[derive(Debug)]
pub struct Upload {
    /// Temp folder owning the files.
    pub dir: tempfile::TempDir,
    /// Files in arrival order.
    pub parts: Vec<Part>,
}
