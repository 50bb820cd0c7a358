//! CIFAR-10: the binary batches (`*.bin`) and the python (pickle) batches.
//!
//! Binary record: 1 label byte, then 3072 pixel bytes as the R, G and B planes of a 32x32
//! image, i.e. already CHW. Python batch: a pickled dict with `data` (numpy uint8
//! `[10000, 3072]`, same plane order) and `labels` (list of ints).

use std::path::{Path, PathBuf};

use super::{DataError, ImageSet, Split, list_paths, pickle};

/// Bytes of one image (3 planes of 32x32).
const IMAGE_BYTES: usize = 3 * 32 * 32;
/// Bytes of one binary record (label + image).
const RECORD_BYTES: usize = 1 + IMAGE_BYTES;

/// Canonical download of the binary version.
pub(crate) const BINARY_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// Canonical download of the python version.
pub(crate) const PYTHON_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Binary,
    Python,
}

impl Format {
    fn label(self) -> &'static str {
        match self {
            Self::Binary => "CIFAR-10 binary batches",
            Self::Python => "CIFAR-10 python batches",
        }
    }
}

/// File names of a split in one format.
fn names(split: Split, format: Format) -> Vec<String> {
    let stems: Vec<String> = match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}")).collect(),
        Split::Test => vec!["test_batch".to_string()],
    };
    match format {
        Format::Binary => stems.into_iter().map(|s| format!("{s}.bin")).collect(),
        Format::Python => stems,
    }
}

/// The folder the binary archive unpacks to, under the data folder.
pub(crate) fn dataset_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("cifar10")
}

/// Where to look, in order of preference.
fn candidates(data_dir: &Path) -> Vec<(PathBuf, Format)> {
    let root = dataset_dir(data_dir);
    vec![
        (root.join("cifar-10-batches-bin"), Format::Binary),
        (root.clone(), Format::Binary),
        (root.join("cifar-10-batches-py"), Format::Python),
        (root, Format::Python),
    ]
}

/// How to obtain CIFAR-10, for error messages.
pub(crate) fn how_to_get(data_dir: &Path) -> String {
    let root = dataset_dir(data_dir);
    format!(
        "To get CIFAR-10: run `pagan-train data fetch cifar10` on a machine with internet, or \
         download {BINARY_URL} and unpack it into {} (`tar -xzf cifar-10-binary.tar.gz -C {}` \
         creates cifar-10-batches-bin/); the python version {PYTHON_URL} unpacked there works \
         too.",
        root.display(),
        root.display()
    )
}

/// Loads one split of CIFAR-10 (3x32x32, labels 0..=9), preferring the binary batches.
pub(crate) fn load(split: Split, data_dir: &Path, limit: Option<usize>) -> Result<ImageSet, DataError> {
    let mut looked = Vec::new();
    let mut partial = None;
    for (dir, format) in candidates(data_dir) {
        let files: Vec<PathBuf> = names(split, format).iter().map(|n| dir.join(n)).collect();
        let absent: Vec<PathBuf> = files.iter().filter(|p| !p.is_file()).cloned().collect();
        if absent.is_empty() {
            return read_batches(&dir, &files, format, limit);
        }
        if absent.len() < files.len() && partial.is_none() {
            partial = Some((dir.clone(), format, absent));
        }
        looked.extend(files);
    }
    if let Some((dir, format, absent)) = partial {
        return Err(DataError::Missing {
            path: absent.first().cloned().unwrap_or(dir.clone()),
            hint: format!(
                "{} in {} are incomplete; missing:\n{}\n{}",
                format.label(),
                dir.display(),
                list_paths(&absent),
                how_to_get(data_dir)
            ),
        });
    }
    Err(DataError::Missing {
        path: dataset_dir(data_dir).join("cifar-10-batches-bin"),
        hint: format!(
            "looked for the CIFAR-10 {split} batches at:\n{}\n{}",
            list_paths(&looked),
            how_to_get(data_dir)
        ),
    })
}

fn read_batches(
    dir: &Path,
    files: &[PathBuf],
    format: Format,
    limit: Option<usize>,
) -> Result<ImageSet, DataError> {
    let want = limit.unwrap_or(usize::MAX);
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for path in files {
        if labels.len() >= want {
            break;
        }
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let (d, l) = match format {
            Format::Binary => parse_binary(path, &bytes)?,
            Format::Python => parse_python(path, &bytes)?,
        };
        data.extend_from_slice(&d);
        labels.extend_from_slice(&l);
    }
    let n = labels.len().min(want);
    data.truncate(n * IMAGE_BYTES);
    labels.truncate(n);
    Ok(ImageSet {
        data,
        labels: Some(labels),
        n,
        channels: 3,
        height: 32,
        width: 32,
        source: format!("{} ({})", dir.display(), format.label()),
    })
}

fn check_labels(path: &Path, labels: &[u8]) -> Result<(), DataError> {
    match labels.iter().position(|&l| l > 9) {
        Some(i) => Err(DataError::corrupt(
            path,
            format!("record {i} has label {}, not a class 0..=9", labels[i]),
        )),
        None => Ok(()),
    }
}

/// Splits a binary batch into (pixels CHW, labels).
fn parse_binary(path: &Path, bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>), DataError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD_BYTES) {
        return Err(DataError::corrupt(
            path,
            format!(
                "size {} bytes is not a positive multiple of the {RECORD_BYTES}-byte record \
                 (truncated download?)",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / RECORD_BYTES;
    let mut data = Vec::with_capacity(n * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for rec in bytes.chunks_exact(RECORD_BYTES) {
        let (label, pixels) = rec.split_at(1);
        labels.extend_from_slice(label);
        data.extend_from_slice(pixels);
    }
    check_labels(path, &labels)?;
    Ok((data, labels))
}

/// Reads a python batch: a dict with `data` (uint8 `[n, 3072]`) and `labels`.
fn parse_python(path: &Path, bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>), DataError> {
    let bad = |reason: String| DataError::corrupt(path, reason);
    let root = pickle::parse(bytes).map_err(|e| bad(format!("not a readable pickle: {e}")))?;
    let get = |key: &str| {
        root.dict_get(key).ok_or_else(|| {
            bad(format!(
                "pickle has no `{key}` entry (keys: {:?})",
                root.dict_keys()
            ))
        })
    };
    let arr = get("data")?.as_array().map_err(|e| bad(format!("`data`: {e}")))?;
    if !matches!(arr.dtype.as_str(), "u1" | "|u1" | "uint8") {
        return Err(bad(format!("`data` has dtype {}, expected uint8", arr.dtype)));
    }
    let n = match arr.shape.as_slice() {
        [n, IMAGE_BYTES] | [n, 3, 32, 32] => *n,
        other => {
            return Err(bad(format!(
                "`data` has shape {other:?}, expected [n, {IMAGE_BYTES}]"
            )));
        }
    };
    if arr.fortran && n > 1 {
        return Err(bad("`data` is in Fortran order, expected C order".to_string()));
    }
    if Some(arr.data.len()) != n.checked_mul(IMAGE_BYTES) {
        return Err(bad(format!(
            "`data` holds {} bytes, its shape {:?} needs {}",
            arr.data.len(),
            arr.shape,
            n.saturating_mul(IMAGE_BYTES)
        )));
    }
    let raw_labels = get("labels")?
        .as_int_list()
        .map_err(|e| bad(format!("`labels`: {e}")))?;
    if raw_labels.len() != n {
        return Err(bad(format!("{} labels for {n} images", raw_labels.len())));
    }
    let labels = raw_labels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            u8::try_from(l)
                .ok()
                .filter(|&l| l <= 9)
                .ok_or_else(|| bad(format!("image {i} has label {l}, not a class 0..=9")))
        })
        .collect::<Result<Vec<u8>, _>>()?;
    Ok((arr.data.to_vec(), labels))
}
