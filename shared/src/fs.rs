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

/// Prefix of the folders uploads stream into (`{UPLOAD_DIR_PREFIX}{pid}-...` in the temp dir).
pub const UPLOAD_DIR_PREFIX: &str = "pagan-upload-";

/// The process that made `name`, if it is one of our temp files (`.X.tmpPID-K`, from
/// [`temp_beside`]) or upload folders (`pagan-upload-PID-...`).
fn temp_owner(name: &str) -> Option<u32> {
    let rest = if let Some(r) = name.strip_prefix(UPLOAD_DIR_PREFIX) {
        r
    } else if name.starts_with('.') {
        &name[name.rfind(".tmp")? + 4..]
    } else {
        return None;
    };
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

/// Whether process `pid` still runs (Linux: `/proc/PID`; elsewhere assumed to).
fn alive(pid: u32) -> bool {
    !cfg!(target_os = "linux") || Path::new(&format!("/proc/{pid}")).exists()
}

/// Which of our temp files a sweep may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orphans {
    /// Temp files beside targets and upload folders (a folder only this project writes).
    All,
    /// Upload folders only (a shared folder such as the system temp dir, where other
    /// programs' dotfiles could look like ours).
    UploadDirs,
}

/// Removes, from `dir`, the temp files and upload folders of processes that no longer
/// run (killed mid-write: a rename or a drop never happened). Returns what it removed.
pub fn remove_orphaned_temps(dir: &Path, which: Orphans) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if which == Orphans::UploadDirs && !name.starts_with(UPLOAD_DIR_PREFIX) {
            continue;
        }
        let Some(pid) = temp_owner(&name) else { continue };
        if pid == std::process::id() || alive(pid) {
            continue;
        }
        let path = e.path();
        let gone = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if gone.is_ok() {
            removed.push(path);
        }
    }
    removed
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

    #[test]
    fn orphaned_temps_of_dead_processes_are_removed_and_nothing_else() {
        assert_eq!(temp_owner(".fm.npz.tmp4242-7"), Some(4242));
        assert_eq!(temp_owner("pagan-upload-4242-abc"), Some(4242));
        assert_eq!(temp_owner("fm.npz"), None);
        assert_eq!(temp_owner(".hidden"), None);
        let dir = std::env::temp_dir().join(format!("pagan-orphans-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        // pid_max on Linux is at most 2^22: this process cannot exist.
        let dead = 4_194_304 + 17;
        let mine = std::process::id();
        let keep = [
            "a.npz".to_owned(),
            format!(".a.npz.tmp{mine}-0"),
            format!("{UPLOAD_DIR_PREFIX}{mine}-x"),
        ];
        let orphans = [
            format!(".a.npz.tmp{dead}-3"),
            format!("{UPLOAD_DIR_PREFIX}{dead}-y"),
        ];
        for n in keep.iter().chain(&orphans) {
            if n.starts_with(UPLOAD_DIR_PREFIX) {
                std::fs::create_dir_all(dir.join(n).join("sub")).expect("mkdir");
            } else {
                std::fs::write(dir.join(n), b"x").expect("write");
            }
        }
        assert_eq!(
            remove_orphaned_temps(&dir, Orphans::UploadDirs)
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>(),
            vec![orphans[1].clone()],
            "upload folders only"
        );
        std::fs::create_dir_all(dir.join(&orphans[1]).join("sub")).expect("mkdir again");
        let mut removed: Vec<String> = remove_orphaned_temps(&dir, Orphans::All)
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        removed.sort();
        let mut want = orphans.to_vec();
        want.sort();
        assert_eq!(removed, want);
        for n in &keep {
            assert!(dir.join(n).exists(), "{n} kept");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
