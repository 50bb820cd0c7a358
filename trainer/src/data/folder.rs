//! `folder:PATH` datasets: any tree of PNG/JPEG files, split by `train/` and `test/`
//! subfolders or by sorted path. For training the files are resized to one square size;
//! FID reads the same files at their own size (the `fid` module).

use std::path::{Path, PathBuf};

use super::files::{Crop, apply_limit, decode_all, list_recursive, tail_test};
use super::{DataError, DatasetSpec, ImageSet, LoadOptions, Split};

/// Default side of the square images of a `folder:` dataset.
pub const DEFAULT_FOLDER_SIZE: usize = 64;
/// Without an explicit split, the test split is the last `1 / TEST_FRACTION_DENOM` of the
/// images by sorted name (at least one image), and the train split is the whole folder.
pub const TEST_FRACTION_DENOM: usize = 10;
/// The image files of one split of a `folder:` dataset, in order.
#[derive(Debug, Clone)]
pub struct FolderSplit {
    /// Files, sorted by path.
    pub files: Vec<PathBuf>,
    /// The folder they were listed from.
    pub base: PathBuf,
    /// How the split was chosen, for logs.
    pub how: &'static str,
}

/// The files of `split` of the image folder `path`: if `path/train` or `path/test`
/// exists, each split is its own subfolder; otherwise the train split is the whole folder
/// and the test split the last 10% by sorted path (of each class, when every image sits in
/// a class subfolder, so the test split has every class). Hidden files are skipped.
pub fn folder_split(path: &Path, split: Split) -> Result<FolderSplit, DataError> {
    if !path.is_dir() {
        return Err(DataError::Missing {
            path: path.to_path_buf(),
            hint: format!(
                "the folder {} does not exist (folder:PATH needs a folder of PNG/JPEG images)",
                path.display()
            ),
        });
    }
    let split_dir = path.join(split.to_string());
    let has_splits = path.join("train").is_dir() || path.join("test").is_dir();
    let (files, base, how) = if has_splits {
        if !split_dir.is_dir() {
            return Err(DataError::Missing {
                path: split_dir.clone(),
                hint: format!(
                    "{} has train/ or test/ subfolders, so the {split} split must be in {}",
                    path.display(),
                    split_dir.display()
                ),
            });
        }
        (list_recursive(&split_dir)?, split_dir, "own subfolder")
    } else {
        let all = list_recursive(path)?;
        match split {
            Split::Train => (all, path.to_path_buf(), "whole folder as train"),
            Split::Test => match super::classes::group_by_class(&all, path) {
                Some(groups) => {
                    let mut test: Vec<PathBuf> = groups.iter().flat_map(|g| tail_test(g).to_vec()).collect();
                    test.sort();
                    (test, path.to_path_buf(), "last 10% of each class by path as test")
                }
                None => (
                    tail_test(&all).to_vec(),
                    path.to_path_buf(),
                    "last 10% by path as test",
                ),
            },
        }
    };
    if files.is_empty() {
        return Err(DataError::Missing {
            path: base.clone(),
            hint: format!("no .png/.jpg/.jpeg images found under {}", base.display()),
        });
    }
    Ok(FolderSplit { files, base, how })
}

/// Every PNG/JPEG file under `dir` (recursive, sorted by path, hidden files skipped).
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let files = list_recursive(dir)?;
    if files.is_empty() {
        return Err(DataError::Missing {
            path: dir.to_path_buf(),
            hint: format!("no .png/.jpg/.jpeg images found under {}", dir.display()),
        });
    }
    Ok(files)
}

/// Loads a `folder:` dataset for training: the files of [`folder_split`], centre-cropped
/// to a square and resized to `opts.folder_size` (training needs one image size; FID
/// reads the same files at their own size, see the `fid` module), with 3 channels, or 1 if
/// every image is greyscale.
pub(crate) fn load_folder(path: &Path, split: Split, opts: &LoadOptions<'_>) -> Result<ImageSet, DataError> {
    let size = opts.folder_size;
    if size == 0 || size > 4096 {
        return Err(DataError::UnknownDataset {
            name: format!("folder:{}", path.display()),
            reason: format!("image size {size} must be between 1 and 4096"),
        });
    }
    let FolderSplit { files, base, how } = folder_split(path, split)?;
    // A limit keeps every class of a class-folder dataset (sorted paths group by class).
    let groups = opts
        .limit
        .and_then(|l| super::classes::group_by_class(&files, &base).map(|g| (l, g)));
    let files = match groups {
        Some((l, groups)) => super::classes::limit_per_class(&groups, l),
        None => apply_limit(files, opts.limit),
    };
    let (rgb, all_grey) = decode_all(&files, size, Crop::Square, opts.progress)?;
    let plane = size * size;
    let (data, channels) = if all_grey {
        // Greyscale sources were expanded to R = G = B; keep one plane.
        let grey = rgb
            .chunks_exact(3 * plane)
            .flat_map(|img| img.iter().take(plane).copied())
            .collect();
        (grey, 1)
    } else {
        (rgb, 3)
    };
    // Class subfolders give labels (`--cond`); the names come from the train split's folders.
    let names = DatasetSpec::Folder(path.to_path_buf())
        .class_names()
        .unwrap_or_default();
    let labels = super::classes::folder_labels(&files, &base, &names);
    if labels.is_none()
        && names.len() >= 2
        && let Some(f) = super::classes::first_unlabelled(&files, &base, &names)
    {
        tracing::warn!(
            "{} has class folders, but {} is outside them: the images have no labels (--cond refuses them)",
            base.display(),
            f.display()
        );
    }
    Ok(ImageSet {
        n: files.len(),
        data,
        labels,
        channels,
        height: size,
        width: size,
        source: format!("{} (image folder, {how})", base.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsplit_class_folder_tests_on_every_class() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (class, n) in [("ants", 20), ("bees", 30)] {
            std::fs::create_dir_all(dir.path().join(class)).expect("mkdir");
            for i in 0..n {
                std::fs::write(dir.path().join(format!("{class}/{i:02}.png")), b"").expect("file");
            }
        }
        let test = folder_split(dir.path(), Split::Test).expect("split");
        let class_of = |f: &PathBuf| {
            f.strip_prefix(dir.path())
                .ok()
                .and_then(|r| r.components().next())
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
        };
        let classes: Vec<_> = test.files.iter().filter_map(class_of).collect();
        // The last 10% of each class (2 and 3 files), not the last 5 files of the folder.
        assert_eq!(classes, ["ants", "ants", "bees", "bees", "bees"]);
        assert!(test.files[0].ends_with("ants/18.png"), "{:?}", test.files);
        std::fs::write(dir.path().join("stray.png"), b"").expect("file");
        let flat = folder_split(dir.path(), Split::Test).expect("split");
        assert_eq!(
            flat.files.len(),
            5,
            "a file outside the classes: the plain last 10%"
        );
        assert!(flat.files.iter().all(|f| class_of(f).as_deref() != Some("ants")));
    }
}
