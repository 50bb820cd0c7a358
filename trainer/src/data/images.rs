//! Image-file datasets: CelebA (aligned JPEG folder) and `folder:PATH` (any PNG/JPEG tree).
//!
//! Images are decoded in parallel (`std::thread::scope`, one worker per core), centre-cropped
//! to a square, resized with a Catmull-Rom (bicubic) filter, and stored channel-planar.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use image::imageops::{self, FilterType};

use super::{DataError, ImageSet, LoadOptions, Progress, Split};

/// Side of the centred square cut from each 178x218 aligned CelebA image before resizing.
/// 140x140 keeps the face and drops most background; it is the usual crop for 64x64 CelebA
/// GAN work (DCGAN/SN-GAN/PA-GAN setups). Smaller images are cropped to their shorter side.
pub const CELEBA_CROP: u32 = 140;
/// Side of the square CelebA images after resizing.
pub const CELEBA_SIZE: usize = 64;
/// Default side of the square images of a `folder:` dataset.
pub const DEFAULT_FOLDER_SIZE: usize = 64;
/// Without an explicit split, the test split is the last `1 / TEST_FRACTION_DENOM` of the
/// images by sorted name (at least one image), and the train split is the whole folder.
pub const TEST_FRACTION_DENOM: usize = 10;

/// Official CelebA page (the data is on Google Drive / Baidu, with no stable direct URL).
pub(crate) const CELEBA_PAGE: &str = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html";

/// How to obtain CelebA, for error messages.
pub(crate) fn celeba_how_to_get(data_dir: &Path) -> String {
    let root = data_dir.join("celeba");
    format!(
        "To get CelebA: from {CELEBA_PAGE} download \"Align&Cropped Images\" \
         (img_align_celeba.zip) and optionally Eval/list_eval_partition.txt, then unpack so \
         that the layout is:\n  {}/img_align_celeba/000001.jpg ... 202599.jpg\n  \
         {}/list_eval_partition.txt   (optional: 0 = train, 1 = valid, 2 = test)\n\
         Without the partition file the whole folder is train and the last 10% by name is test.",
        root.display(),
        root.display()
    )
}

/// How an image is cut to a square before resizing.
#[derive(Debug, Clone, Copy)]
enum Crop {
    /// A centred square of this side (or the shorter side if the image is smaller).
    Fixed(u32),
    /// The largest centred square.
    Square,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// Hidden entries (e.g. macOS `._x.jpg` resource forks) are skipped: they are never images.
fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Image files directly in `dir`, sorted by name.
fn list_flat(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        if is_image(&path) && !is_hidden(&path) && path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Maximum folder depth followed, so a symlink loop ends in an error instead of hanging.
const MAX_DEPTH: usize = 64;

/// Image files anywhere under `dir` (symlinks followed), sorted by path.
fn list_recursive(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
        if depth > MAX_DEPTH {
            return Err(DataError::corrupt(
                dir,
                format!("folders nested deeper than {MAX_DEPTH} levels (symlink loop?)"),
            ));
        }
        for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
            let path = entry.map_err(|e| DataError::io(dir, e))?.path();
            if is_hidden(&path) {
                continue;
            }
            let meta = std::fs::metadata(&path).map_err(|e| DataError::io(&path, e))?;
            if meta.is_dir() {
                walk(&path, depth + 1, out)?;
            } else if meta.is_file() && is_image(&path) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, 0, &mut out)?;
    out.sort();
    Ok(out)
}

/// The last `1 / TEST_FRACTION_DENOM` of `files` (at least one when there are any).
fn tail_test(files: &[PathBuf]) -> &[PathBuf] {
    let k = (files.len() / TEST_FRACTION_DENOM).max(1).min(files.len());
    &files[files.len() - k..]
}

fn apply_limit(mut files: Vec<PathBuf>, limit: Option<usize>) -> Vec<PathBuf> {
    if let Some(l) = limit {
        files.truncate(l);
    }
    files
}

/// Reads `list_eval_partition.txt`: lines `<file name> <0|1|2>`.
fn read_partition(path: &Path) -> Result<HashMap<String, u8>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let mut map = HashMap::new();
    for (no, line) in text.lines().enumerate() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(part), None) = (parts.next(), parts.next(), parts.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(DataError::corrupt(
                path,
                format!("line {}: expected `<file> <0|1|2>`, found `{line}`", no + 1),
            ));
        };
        let part = match part {
            "0" => 0,
            "1" => 1,
            "2" => 2,
            _ => {
                return Err(DataError::corrupt(
                    path,
                    format!("line {}: partition `{part}` is not 0, 1 or 2", no + 1),
                ));
            }
        };
        map.insert(name.to_string(), part);
    }
    Ok(map)
}

/// Loads a CelebA split as 3x64x64 (centre crop [`CELEBA_CROP`], then resize).
///
/// Split: with `<data>/celeba/list_eval_partition.txt`, partitions 0 (train) and 1 (valid)
/// form the train split and 2 the test split; images missing from the list count as train.
/// Without it, the whole folder is train and the last 10% by sorted name is test.
pub(crate) fn load_celeba(
    split: Split,
    data_dir: &Path,
    opts: &LoadOptions<'_>,
) -> Result<ImageSet, DataError> {
    let root = data_dir.join("celeba");
    let dir = root.join("img_align_celeba");
    if !dir.is_dir() {
        return Err(DataError::Missing {
            path: dir.clone(),
            hint: format!(
                "looked for the folder {}\n{}",
                dir.display(),
                celeba_how_to_get(data_dir)
            ),
        });
    }
    let all = list_flat(&dir)?;
    if all.is_empty() {
        return Err(DataError::Missing {
            path: dir.clone(),
            hint: format!(
                "{} holds no .jpg/.png images\n{}",
                dir.display(),
                celeba_how_to_get(data_dir)
            ),
        });
    }
    let part_path = root.join("list_eval_partition.txt");
    let (files, how) = if part_path.is_file() {
        let parts = read_partition(&part_path)?;
        let mut unlisted = 0usize;
        let files: Vec<PathBuf> = all
            .into_iter()
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                let part = parts.get(name).copied().unwrap_or_else(|| {
                    unlisted += 1;
                    0
                });
                (part == 2) == (split == Split::Test)
            })
            .collect();
        if unlisted > 0 {
            tracing::warn!(
                unlisted,
                partition = %part_path.display(),
                "CelebA images not in the partition list were put in the train split"
            );
        }
        (files, "split from list_eval_partition.txt")
    } else {
        match split {
            Split::Train => (all, "whole folder as train"),
            Split::Test => (tail_test(&all).to_vec(), "last 10% by name as test"),
        }
    };
    if files.is_empty() {
        return Err(DataError::Missing {
            path: dir.clone(),
            hint: format!(
                "no image in {} belongs to the {split} split of {}",
                dir.display(),
                part_path.display()
            ),
        });
    }
    let files = apply_limit(files, opts.limit);
    let (data, _) = decode_all(&files, CELEBA_SIZE, Crop::Fixed(CELEBA_CROP), opts.progress)?;
    Ok(ImageSet {
        n: files.len(),
        data,
        labels: None,
        channels: 3,
        height: CELEBA_SIZE,
        width: CELEBA_SIZE,
        source: format!("{} (CelebA aligned JPEGs, {how})", dir.display()),
    })
}

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
/// and the test split the last 10% by sorted path. Hidden files are skipped.
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
            Split::Test => (tail_test(&all).to_vec(), path.to_path_buf(), "last 10% by path as test"),
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
/// reads the same files at their own size, see `crate::fid`), with 3 channels, or 1 if
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
    let files = apply_limit(files, opts.limit);
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
    Ok(ImageSet {
        n: files.len(),
        data,
        labels: None,
        channels,
        height: size,
        width: size,
        source: format!("{} (image folder, {how})", base.display()),
    })
}

/// Decodes `paths` in parallel into 3-plane `size`x`size` images. Returns the pixels and
/// whether every source image was greyscale. The first failing file (by index) is the error.
fn decode_all(
    paths: &[PathBuf],
    size: usize,
    crop: Crop,
    progress: Option<Progress<'_>>,
) -> Result<(Vec<u8>, bool), DataError> {
    let per = 3 * size * size;
    let total = paths.len();
    let mut data = vec![0u8; total * per];
    // Workers pull (index, path, output slot) from a shared iterator: simple load balancing
    // with no unsafe code, each slot written by exactly one worker.
    let work = Mutex::new(paths.iter().zip(data.chunks_exact_mut(per)).enumerate());
    let done = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let all_grey = AtomicBool::new(true);
    let errors: Mutex<Vec<(usize, DataError)>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(total)
        .max(1);

    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let next = work.lock().unwrap_or_else(PoisonError::into_inner).next();
                    let Some((i, (path, out))) = next else { break };
                    // A decoder bug must not take the trainer down: report it as a bad file.
                    let result = catch_unwind(AssertUnwindSafe(|| decode_one(path, size, crop, out)))
                        .unwrap_or_else(|_| {
                            Err(DataError::corrupt(
                                path,
                                "the image decoder panicked on this file",
                            ))
                        });
                    match result {
                        Ok(grey) => {
                            if !grey {
                                all_grey.store(false, Ordering::Relaxed);
                            }
                        }
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            errors.lock().unwrap_or_else(PoisonError::into_inner).push((i, e));
                            break;
                        }
                    }
                    let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(cb) = progress {
                        cb(d, total);
                    }
                }
            });
        }
    });

    let mut errors = errors.into_inner().unwrap_or_else(PoisonError::into_inner);
    errors.sort_by_key(|(i, _)| *i);
    if let Some((_, e)) = errors.into_iter().next() {
        return Err(e);
    }
    Ok((data, all_grey.into_inner()))
}

/// Decodes one file into `out` (3 planes of `size`x`size`); returns whether it was greyscale.
fn decode_one(path: &Path, size: usize, crop: Crop, out: &mut [u8]) -> Result<bool, DataError> {
    let img = image::ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?
        .decode()
        .map_err(|e| DataError::corrupt(path, format!("cannot decode image: {e}")))?;
    let grey = !img.color().has_color();
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    if w == 0 || h == 0 {
        return Err(DataError::corrupt(path, "image has no pixels"));
    }
    let side = match crop {
        Crop::Fixed(c) => c.min(w).min(h),
        Crop::Square => w.min(h),
    };
    let view = imageops::crop_imm(&rgb, (w - side) / 2, (h - side) / 2, side, side);
    // `size` is at most 4096 (checked by callers), so it fits in u32.
    let size32 = u32::try_from(size).map_err(|_| DataError::corrupt(path, "size too large"))?;
    let square = if side == size32 {
        view.to_image()
    } else {
        imageops::resize(&*view, size32, size32, FilterType::CatmullRom)
    };
    let plane = size * size;
    let (r, rest) = out.split_at_mut(plane.min(out.len()));
    let (g, b) = rest.split_at_mut(plane.min(rest.len()));
    for (((px, r), g), b) in square
        .pixels()
        .zip(r.iter_mut())
        .zip(g.iter_mut())
        .zip(b.iter_mut())
    {
        *r = px[0];
        *g = px[1];
        *b = px[2];
    }
    Ok(grey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_is_last_tenth_and_never_empty() {
        let files: Vec<PathBuf> = (0..25).map(|i| PathBuf::from(format!("{i:03}"))).collect();
        let t = tail_test(&files);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0], PathBuf::from("023"));
        assert_eq!(tail_test(&files[..3]).len(), 1);
        assert!(tail_test(&[]).is_empty());
    }
}
