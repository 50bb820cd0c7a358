//! File writes that readers never see half done: every file the project writes (run
//! folders, checkpoints, manifests, statistics, uploads) goes through [`write_atomic`] or
//! [`persist_atomic`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A temp path beside `path`, unique within this process and across processes, so two
/// writers of the same file never share a temp file (the last rename wins, whole).
pub fn temp_beside(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let k = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp{}-{k}", std::process::id()))
}

/// Writes `bytes` to `path` via a temp file in the same folder and a rename (creating the
/// folder if needed).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    persist_atomic(path, |tmp| std::fs::write(tmp, bytes))
}

/// Lets `write` fill a temp file beside `path`, then renames it over `path`; the temp file
/// is removed if `write` or the rename fails.
pub fn persist_atomic(path: &Path, write: impl FnOnce(&Path) -> std::io::Result<()>) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = temp_beside(path);
    let done = write(&tmp).and_then(|()| std::fs::rename(&tmp, path));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_and_leaves_no_temp_behind() {
        let dir = std::env::temp_dir().join(format!("pagan-fs-test-{}", std::process::id()));
        let p = dir.join("sub/a.txt");
        write_atomic(&p, b"one").expect("write");
        write_atomic(&p, b"two").expect("overwrite");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        let failed = persist_atomic(&p, |_| Err(std::io::Error::other("boom")));
        assert!(failed.is_err());
        assert_eq!(
            std::fs::read(&p).expect("read"),
            b"two",
            "a failed write keeps the old file"
        );
        let names: Vec<_> = std::fs::read_dir(dir.join("sub"))
            .expect("ls")
            .flatten()
            .collect();
        assert_eq!(names.len(), 1, "temp files left: {names:?}");
        assert_ne!(temp_beside(&p), temp_beside(&p), "temp names are unique");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
