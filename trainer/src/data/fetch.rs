//! `pagan-train data fetch <dataset>`: downloads the canonical files with the system `curl`
//! (no HTTP client crate; machines without internet get a clear error instead).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{DataError, DatasetSpec, Split, celeba, cifar, idx};

/// Environment variable that replaces the canonical base URL (a mirror holding the same file
/// names, e.g. `http://mirror.local/mnist/`).
pub const FETCH_BASE_ENV: &str = "PAGAN_FETCH_BASE";

/// Canonical MNIST mirror (the four IDX `.gz` files).
pub const MNIST_BASE: &str = "https://ossci-datasets.s3.amazonaws.com/mnist/";
/// Canonical Fashion-MNIST location (the four IDX `.gz` files).
pub const FASHION_MNIST_BASE: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";
/// File name of the CIFAR-10 binary archive (unpacks to `cifar-10-batches-bin/`).
const CIFAR_ARCHIVE: &str = "cifar-10-binary.tar.gz";

/// Downloads `spec` into `data_dir` from the canonical URLs (or the mirror in env
/// `PAGAN_FETCH_BASE`), skipping files already present, and checks the result loads.
/// Returns the data files. CelebA and folders cannot be downloaded automatically: the error
/// says where to get them and the expected layout.
pub fn fetch(spec: &DatasetSpec, data_dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let base = std::env::var(FETCH_BASE_ENV).ok().filter(|s| !s.is_empty());
    fetch_from(spec, data_dir, base.as_deref())
}

/// [`fetch`] with an explicit base URL instead of the canonical one (`None`: canonical).
/// For CIFAR-10 the archive URL is `<base>cifar-10-binary.tar.gz`.
pub fn fetch_from(
    spec: &DatasetSpec,
    data_dir: &Path,
    base: Option<&str>,
) -> Result<Vec<PathBuf>, DataError> {
    match spec {
        DatasetSpec::Mnist => fetch_idx(spec, data_dir, "mnist", base.unwrap_or(MNIST_BASE)),
        DatasetSpec::FashionMnist => fetch_idx(
            spec,
            data_dir,
            "fashion-mnist",
            base.unwrap_or(FASHION_MNIST_BASE),
        ),
        DatasetSpec::Cifar10 => fetch_cifar(data_dir, base),
        DatasetSpec::CelebA => {
            let dir = data_dir.join("celeba").join("img_align_celeba");
            if dir.is_dir() && super::load(spec, Split::Test, data_dir, Some(1)).is_ok() {
                tracing::info!(dir = %dir.display(), "CelebA is already in place");
                return Ok(vec![dir]);
            }
            Err(DataError::ManualDownload {
                dataset: "CelebA".to_string(),
                instructions: celeba::celeba_how_to_get(data_dir),
            })
        }
        DatasetSpec::Folder(p) => Err(DataError::ManualDownload {
            dataset: spec.to_string(),
            instructions: format!(
                "A folder dataset is read from {} as it is; there is nothing to download.",
                p.display()
            ),
        }),
    }
}

/// `base` + `name`, with exactly one `/` between them.
fn join_url(base: &str, name: &str) -> String {
    format!("{}/{name}", base.trim_end_matches('/'))
}

fn fetch_idx(
    spec: &DatasetSpec,
    data_dir: &Path,
    folder: &str,
    base: &str,
) -> Result<Vec<PathBuf>, DataError> {
    let dir = data_dir.join(folder);
    std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
    let mut out = Vec::new();
    for name in idx::GZ_FILES {
        let target = dir.join(name);
        if is_nonempty_file(&target) {
            tracing::info!(file = %target.display(), "already present, not downloading");
        } else {
            download(&join_url(base, name), &target)?;
        }
        out.push(target);
    }
    // A wrong mirror or a damaged transfer shows up here rather than at training time.
    for split in [Split::Train, Split::Test] {
        super::load(spec, split, data_dir, None)?;
    }
    Ok(out)
}

fn fetch_cifar(data_dir: &Path, base: Option<&str>) -> Result<Vec<PathBuf>, DataError> {
    let root = cifar::dataset_dir(data_dir);
    let bin_dir = root.join("cifar-10-batches-bin");
    let files: Vec<PathBuf> = (1..=5)
        .map(|i| format!("data_batch_{i}.bin"))
        .chain(std::iter::once("test_batch.bin".to_string()))
        .map(|n| bin_dir.join(n))
        .collect();
    if !files.iter().all(|f| is_nonempty_file(f)) {
        std::fs::create_dir_all(&root).map_err(|e| DataError::io(&root, e))?;
        let url = match base {
            Some(b) => join_url(b, CIFAR_ARCHIVE),
            None => cifar::BINARY_URL.to_string(),
        };
        let archive = root.join(CIFAR_ARCHIVE);
        download(&url, &archive)?;
        untar(&archive, &root)?;
        // The archive is 170 MB and fully unpacked; keep only the batches.
        if let Err(e) = std::fs::remove_file(&archive) {
            tracing::warn!(file = %archive.display(), error = %e, "could not remove the archive");
        }
    } else {
        tracing::info!(dir = %bin_dir.display(), "CIFAR-10 batches already present");
    }
    for split in [Split::Train, Split::Test] {
        super::load(&DatasetSpec::Cifar10, split, data_dir, None)?;
    }
    Ok(files)
}

fn is_nonempty_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0)
}

/// Downloads `url` to `target` via `curl`, through a `.part` file so that an interrupted
/// transfer never looks like a complete file.
fn download(url: &str, target: &Path) -> Result<(), DataError> {
    let mut part = OsString::from(target.as_os_str());
    part.push(".part");
    let part = PathBuf::from(part);
    let fail = |reason: String| DataError::Download {
        url: url.to_string(),
        target: target.to_path_buf(),
        reason,
    };
    tracing::info!(%url, target = %target.display(), "downloading");
    let output = Command::new("curl")
        .args(["-fL", "-sS", "--retry", "2", "--connect-timeout", "10", "-o"])
        .arg(&part)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                fail("`curl` is not installed, so nothing can be downloaded".to_string())
            } else {
                fail(format!("could not run curl: {e}"))
            }
        })?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&part);
        let msg = String::from_utf8_lossy(&output.stderr).trim().to_string();
        let code = output
            .status
            .code()
            .map_or_else(|| "a signal".to_string(), |c| c.to_string());
        return Err(fail(format!("curl failed (exit {code}): {msg}")));
    }
    std::fs::rename(&part, target).map_err(|e| DataError::io(target, e))
}

/// Unpacks a `.tar.gz` with the system `tar`.
fn untar(archive: &Path, into: &Path) -> Result<(), DataError> {
    let output = Command::new("tar")
        .arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| DataError::io(archive, e))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(DataError::corrupt(
            archive,
            format!(
                "tar could not unpack it: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_with_one_slash() {
        assert_eq!(join_url("http://a/b/", "f.gz"), "http://a/b/f.gz");
        assert_eq!(join_url("http://a/b", "f.gz"), "http://a/b/f.gz");
    }
}
