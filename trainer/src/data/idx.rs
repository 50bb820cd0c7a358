//! IDX files (MNIST, Fashion-MNIST), gzipped or raw.
//!
//! Layout: big-endian `u32` magic (`0x00000803` = u8 images with 3 dims, `0x00000801` = u8
//! labels with 1 dim), one big-endian `u32` per dimension, then the bytes. The byte count must
//! match the dimensions exactly, so a truncated download is caught here.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::{DataError, ImageSet, Split, list_paths};

/// Magic number of a u8 IDX file with 3 dimensions (images).
pub(crate) const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of a u8 IDX file with 1 dimension (labels).
pub(crate) const LABELS_MAGIC: u32 = 0x0000_0801;

/// Which IDX dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Mnist,
    FashionMnist,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Self::Mnist => "mnist",
            Self::FashionMnist => "fashion-mnist",
        }
    }

    /// Folders searched in order: the data folder first, then the Debian package location.
    fn dirs(self, data_dir: &Path) -> Vec<PathBuf> {
        let mut dirs = vec![data_dir.join(self.name())];
        if self == Self::FashionMnist {
            dirs.push(PathBuf::from("/usr/share/datasets/fashion-mnist"));
        }
        dirs
    }
}

/// The standard file stems (without `.gz`) of a split: (images, labels).
pub(crate) fn file_names(split: Split) -> (&'static str, &'static str) {
    match split {
        Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
}

/// All four standard file names, gzipped, as served by the canonical mirrors.
pub(crate) const GZ_FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// `dir/stem.gz` if it exists, else `dir/stem` if it exists.
fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [dir.join(format!("{stem}.gz")), dir.join(stem)]
        .into_iter()
        .find(|p| p.is_file())
}

/// Loads one split of MNIST or Fashion-MNIST (1x28x28, labels 0..=9).
pub(crate) fn load_mnist(
    which: Which,
    split: Split,
    data_dir: &Path,
    limit: Option<usize>,
) -> Result<ImageSet, DataError> {
    let (img_stem, lbl_stem) = file_names(split);
    let dirs = which.dirs(data_dir);
    let mut looked = Vec::new();
    let mut found = None;
    for dir in &dirs {
        match (find_file(dir, img_stem), find_file(dir, lbl_stem)) {
            (Some(i), Some(l)) => {
                found = Some((i, l));
                break;
            }
            _ => {
                looked.push(dir.join(format!("{img_stem}[.gz]")));
                looked.push(dir.join(format!("{lbl_stem}[.gz]")));
            }
        }
    }
    let Some((img_path, lbl_path)) = found else {
        return Err(DataError::Missing {
            path: dirs[0].clone(),
            hint: format!(
                "looked for the {split} IDX files of {name} at:\n{}\nTo get them: run `make \
                 setup` (installs Fashion-MNIST and MNIST into data/), or `pagan-train data \
                 fetch {name}` on a machine with internet, or copy the four standard files \
                 ({}) into {}",
                list_paths(&looked),
                GZ_FILES.join(", "),
                dirs[0].display(),
                name = which.name(),
            ),
        });
    };

    let (dims, pixels) = read_idx(&img_path, IMAGES_MAGIC, limit)?;
    let &[n_img, rows, cols] = dims.as_slice() else {
        return Err(DataError::corrupt(&img_path, "image file must have 3 dimensions"));
    };
    if (rows, cols) != (28, 28) {
        return Err(DataError::corrupt(
            &img_path,
            format!("images are {rows}x{cols}, expected 28x28"),
        ));
    }
    let (ldims, labels) = read_idx(&lbl_path, LABELS_MAGIC, limit)?;
    let &[n_lbl] = ldims.as_slice() else {
        return Err(DataError::corrupt(&lbl_path, "label file must have 1 dimension"));
    };
    if n_lbl != n_img {
        return Err(DataError::corrupt(
            &lbl_path,
            format!("{n_lbl} labels for {n_img} images in {}", img_path.display()),
        ));
    }
    if let Some(bad) = labels.iter().find(|&&l| l > 9) {
        return Err(DataError::corrupt(
            &lbl_path,
            format!("label {bad} is not a class 0..=9"),
        ));
    }
    let n = limit.map_or(n_img, |l| l.min(n_img));
    Ok(ImageSet {
        data: pixels,
        labels: Some(labels),
        n,
        channels: 1,
        height: rows,
        width: cols,
        source: format!("{} (IDX)", img_path.parent().unwrap_or(&img_path).display()),
    })
}

/// Reads an IDX u8 file (gzipped or raw, detected from the gzip magic bytes), checks the magic
/// and that the data length matches the dimensions exactly. With `limit`, only the first
/// `limit` items along dimension 0 are returned (the header is still checked in full; the
/// rest of the file is still read to verify its length, which is cheap next to decoding).
pub(crate) fn read_idx(
    path: &Path,
    magic: u32,
    limit: Option<usize>,
) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut sig = [0u8; 2];
    let gz = match peek(&mut reader, &mut sig, path)? {
        2 => sig == [0x1f, 0x8b],
        _ => false,
    };
    let mut reader: Box<dyn Read> = if gz {
        Box::new(GzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let read_err = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            DataError::corrupt(path, "file is truncated (unexpected end of data)")
        } else if gz {
            DataError::corrupt(path, format!("gzip data is damaged: {e}"))
        } else {
            DataError::io(path, e)
        }
    };

    let mut head = [0u8; 4];
    reader.read_exact(&mut head).map_err(read_err)?;
    let got = u32::from_be_bytes(head);
    if got != magic {
        return Err(DataError::corrupt(
            path,
            format!("bad IDX magic number 0x{got:08x}, expected 0x{magic:08x}"),
        ));
    }
    let ndims = (magic & 0xff) as usize;
    let mut dims = Vec::with_capacity(ndims);
    for _ in 0..ndims {
        reader.read_exact(&mut head).map_err(read_err)?;
        dims.push(u32::from_be_bytes(head) as usize);
    }
    let total = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::corrupt(path, format!("dimensions {dims:?} overflow")))?;
    // Read one byte past the expected size to detect trailing data without trusting the header
    // for the allocation size (a bogus header must not make us allocate gigabytes).
    let mut data = Vec::new();
    reader
        .by_ref()
        .take((total as u64).saturating_add(1))
        .read_to_end(&mut data)
        .map_err(read_err)?;
    if data.len() != total {
        let what = if data.len() < total {
            format!(
                "file is truncated: header {dims:?} needs {total} data bytes, found {}",
                data.len()
            )
        } else {
            format!("file has trailing data after the {total} bytes its header {dims:?} declares")
        };
        return Err(DataError::corrupt(path, what));
    }
    if let (Some(limit), Some(&n)) = (limit, dims.first())
        && limit < n
        && n > 0
    {
        data.truncate(total / n * limit);
    }
    Ok((dims, data))
}

/// Reads up to `buf.len()` bytes without consuming them.
fn peek(reader: &mut BufReader<File>, buf: &mut [u8], path: &Path) -> Result<usize, DataError> {
    use std::io::BufRead;
    let avail = reader.fill_buf().map_err(|e| DataError::io(path, e))?;
    let n = avail.len().min(buf.len());
    buf[..n].copy_from_slice(&avail[..n]);
    Ok(n)
}
