//! CelebA: the aligned JPEG folder, centre-cropped and resized to 3x64x64 (the dataset the
//! paper's CelebA numbers are on), split by `list_eval_partition.txt` when present.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::files::{Crop, apply_limit, decode_all, list_flat, tail_test};
use super::{DataError, ImageSet, LoadOptions, Split};

/// Side of the centred square cut from each 178x218 aligned CelebA image before resizing.
/// 140x140 keeps the face and drops most background; it is the usual crop for 64x64 CelebA
/// GAN work (DCGAN/SN-GAN/PA-GAN setups). Smaller images are cropped to their shorter side.
pub const CELEBA_CROP: u32 = 140;
/// Side of the square CelebA images after resizing.
pub const CELEBA_SIZE: usize = 64;
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
