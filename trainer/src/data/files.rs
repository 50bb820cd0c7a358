//! Image files for training: listing PNG/JPEG files (hidden ones skipped), and decoding
//! them in parallel, centre-cropped to a square and resized with a Catmull-Rom (bicubic)
//! filter to the one size a training set needs, stored channel-planar.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use image::imageops::{self, FilterType};

use super::{DataError, Progress};

/// How an image is cut to a square before resizing.
#[derive(Debug, Clone, Copy)]
pub(super) enum Crop {
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
pub(super) fn list_flat(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
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
pub(super) fn list_recursive(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
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

/// The last `1 / super::TEST_FRACTION_DENOM` of `files` (at least one when there are any).
pub(super) fn tail_test(files: &[PathBuf]) -> &[PathBuf] {
    let k = (files.len() / super::TEST_FRACTION_DENOM).max(1).min(files.len());
    &files[files.len() - k..]
}

pub(super) fn apply_limit(mut files: Vec<PathBuf>, limit: Option<usize>) -> Vec<PathBuf> {
    if let Some(l) = limit {
        files.truncate(l);
    }
    files
}

/// Decodes `paths` in parallel into 3-plane `size`x`size` images. Returns the pixels and
/// whether every source image was greyscale. The first failing file (by index) is the error.
pub(super) fn decode_all(
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
