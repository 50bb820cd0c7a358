//! Datasets: MNIST, Fashion-MNIST (IDX), CIFAR-10 (binary and python batches), CelebA
//! (aligned JPEG folder) and a plain image folder.
//!
//! Everything here is pure Rust and returns `u8` pixels in NCHW (channel-planar) order;
//! the training code converts to tensors and maps to `[-1, 1]` as `x / 127.5 - 1`.
//! Nothing in this module panics on the contents of user files: every malformed input is a
//! [`DataError`] that names the file.

mod celeba;
mod cifar;
mod classes;
mod error;
mod fetch;
mod files;
mod folder;
mod idx;
mod pickle;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use celeba::{CELEBA_CROP, CELEBA_SIZE};
pub use error::DataError;
pub use fetch::{FASHION_MNIST_BASE, FETCH_BASE_ENV, MNIST_BASE, fetch, fetch_from};
pub use folder::{DEFAULT_FOLDER_SIZE, FolderSplit, TEST_FRACTION_DENOM, folder_split, image_files};

/// Environment variable naming the data folder when no `--data-dir` flag is given.
pub const DATA_DIR_ENV: &str = "PAGAN_DATA";

/// Which dataset to use; parsed from the CLI strings `mnist`, `fashion-mnist`, `cifar10`,
/// `celeba` and `folder:PATH`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DatasetSpec {
    /// MNIST handwritten digits, 1x28x28, IDX files in `<data>/mnist/`.
    Mnist,
    /// Fashion-MNIST, 1x28x28, IDX files in `<data>/fashion-mnist/` or
    /// `/usr/share/datasets/fashion-mnist/`.
    FashionMnist,
    /// CIFAR-10, 3x32x32, binary or python batches in `<data>/cifar10/`.
    Cifar10,
    /// CelebA aligned faces, 3x64x64, JPEGs in `<data>/celeba/img_align_celeba/`.
    CelebA,
    /// Any folder of PNG/JPEG images (searched recursively).
    Folder(PathBuf),
}

/// The names accepted by [`DatasetSpec::from_str`], for help texts and error messages.
pub const DATASET_NAMES: &str = "mnist, fashion-mnist, cifar10, celeba, folder:PATH";

impl FromStr for DatasetSpec {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // `folder:` keeps the path verbatim (paths are case-sensitive).
        if let Some(path) = s.strip_prefix("folder:") {
            if path.is_empty() {
                return Err(DataError::UnknownDataset {
                    name: s.to_string(),
                    reason: "`folder:` needs a path, e.g. folder:/data/faces".to_string(),
                });
            }
            return Ok(Self::Folder(PathBuf::from(path)));
        }
        match s.to_ascii_lowercase().as_str() {
            "mnist" => Ok(Self::Mnist),
            "fashion-mnist" | "fashion_mnist" | "fashionmnist" | "fmnist" => Ok(Self::FashionMnist),
            "cifar10" | "cifar-10" | "cifar_10" => Ok(Self::Cifar10),
            "celeba" => Ok(Self::CelebA),
            _ => Err(DataError::UnknownDataset {
                name: s.to_string(),
                reason: format!("valid names: {DATASET_NAMES}"),
            }),
        }
    }
}

impl fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mnist => f.write_str("mnist"),
            Self::FashionMnist => f.write_str("fashion-mnist"),
            Self::Cifar10 => f.write_str("cifar10"),
            Self::CelebA => f.write_str("celeba"),
            Self::Folder(p) => write!(f, "folder:{}", p.display()),
        }
    }
}

impl DatasetSpec {
    /// The image shape `[channels, height, width]` this dataset loads to, when it is fixed
    /// (`None` for a folder, whose channel count depends on its images).
    pub fn image_shape(&self) -> Option<[usize; 3]> {
        match self {
            Self::Mnist | Self::FashionMnist => Some([1, 28, 28]),
            Self::Cifar10 => Some([3, 32, 32]),
            Self::CelebA => Some([3, CELEBA_SIZE, CELEBA_SIZE]),
            Self::Folder(_) => None,
        }
    }
}

/// Which part of a dataset to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training images.
    Train,
    /// The held-out images (used for evaluation statistics).
    Test,
}

impl FromStr for Split {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "train" => Ok(Self::Train),
            "test" => Ok(Self::Test),
            _ => Err(DataError::UnknownSplit { name: s.to_string() }),
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Train => "train",
            Self::Test => "test",
        })
    }
}

/// A set of images as `u8` NCHW (channel-planar), with labels when the format has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// `n * channels * height * width` pixel values, image after image, plane after plane.
    pub data: Vec<u8>,
    /// One class label per image (MNIST, Fashion-MNIST, CIFAR-10); `None` for unlabelled sets.
    pub labels: Option<Vec<u8>>,
    /// Number of images.
    pub n: usize,
    /// Channels per image (1 or 3).
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Where the images were read from (folder or files and format), for logs and run configs.
    pub source: String,
}

impl ImageSet {
    /// Bytes per image (`channels * height * width`).
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The pixels of image `i` (`channels * height * width` bytes, channel-planar).
    ///
    /// # Panics
    /// If `i >= self.n` (a programming error, not a data error).
    pub fn image(&self, i: usize) -> &[u8] {
        assert!(i < self.n, "image index {i} out of range for {} images", self.n);
        let len = self.image_len();
        &self.data[i * len..(i + 1) * len]
    }

    /// The label of image `i`, if the set has labels and `i` is in range.
    pub fn label(&self, i: usize) -> Option<u8> {
        self.labels.as_ref().and_then(|l| l.get(i).copied())
    }

    /// `[n, channels, height, width]`.
    pub fn shape(&self) -> [usize; 4] {
        [self.n, self.channels, self.height, self.width]
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when the set holds no images.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Keeps at most the first `n` images (and labels).
    pub fn truncate(&mut self, n: usize) {
        if n < self.n {
            self.n = n;
            self.data.truncate(n * self.image_len());
            if let Some(l) = self.labels.as_mut() {
                l.truncate(n);
            }
        }
    }
}

/// A progress callback `(done, total)`, called from worker threads while images decode.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Options for [`load_with_options`]; [`load`] uses the defaults.
#[derive(Clone, Copy)]
pub struct LoadOptions<'a> {
    /// Keep at most this many images (the first ones in file / sorted-name order).
    pub limit: Option<usize>,
    /// Side of the square images a `folder:` dataset is resized to.
    pub folder_size: usize,
    /// Called with `(done, total)` while JPEG/PNG images decode (CelebA, folder).
    pub progress: Option<Progress<'a>>,
}

impl Default for LoadOptions<'_> {
    fn default() -> Self {
        Self {
            limit: None,
            folder_size: DEFAULT_FOLDER_SIZE,
            progress: None,
        }
    }
}

impl fmt::Debug for LoadOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadOptions")
            .field("limit", &self.limit)
            .field("folder_size", &self.folder_size)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Resolves the data folder: the explicit flag, else env `PAGAN_DATA` (when non-empty),
/// else `data` (relative to the working directory).
pub fn resolve_data_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os(DATA_DIR_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from("data"),
    }
}

/// Loads one split of a dataset.
///
/// Image sizes: MNIST / Fashion-MNIST 1x28x28, CIFAR-10 3x32x32, CelebA 3x64x64 (centre crop
/// [`CELEBA_CROP`] then resize: the dataset the paper's CelebA numbers are on), `folder:`
/// images centre-cropped to a square and resized to [`DEFAULT_FOLDER_SIZE`] with 3
/// channels, or 1 if every image is greyscale (for training; FID statistics of a folder
/// read its files at their own size, see the `fid` module).
/// `limit` keeps only the first images. Missing files give [`DataError::Missing`] with the
/// paths looked at and how to obtain the data; malformed files give [`DataError::Corrupt`].
pub fn load(
    spec: &DatasetSpec,
    split: Split,
    data_dir: &Path,
    limit: Option<usize>,
) -> Result<ImageSet, DataError> {
    load_with_options(
        spec,
        split,
        data_dir,
        &LoadOptions {
            limit,
            ..LoadOptions::default()
        },
    )
}

/// [`load`] with a progress callback `(done, total)` for the slow JPEG/PNG decoding
/// (CelebA, folder); the IDX and CIFAR formats load in one go and report only completion.
pub fn load_with_progress(
    spec: &DatasetSpec,
    split: Split,
    data_dir: &Path,
    limit: Option<usize>,
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
) -> Result<ImageSet, DataError> {
    load_with_options(
        spec,
        split,
        data_dir,
        &LoadOptions {
            limit,
            progress,
            ..LoadOptions::default()
        },
    )
}

/// [`load`] with every option (limit, folder image size, progress callback).
pub fn load_with_options(
    spec: &DatasetSpec,
    split: Split,
    data_dir: &Path,
    opts: &LoadOptions<'_>,
) -> Result<ImageSet, DataError> {
    let mut set = match spec {
        DatasetSpec::Mnist => idx::load_mnist(idx::Which::Mnist, split, data_dir, opts.limit)?,
        DatasetSpec::FashionMnist => idx::load_mnist(idx::Which::FashionMnist, split, data_dir, opts.limit)?,
        DatasetSpec::Cifar10 => cifar::load(split, data_dir, opts.limit)?,
        DatasetSpec::CelebA => celeba::load_celeba(split, data_dir, opts)?,
        DatasetSpec::Folder(path) => folder::load_folder(path, split, opts)?,
    };
    if let Some(limit) = opts.limit {
        set.truncate(limit);
    }
    // Formats that load in one go still report completion, so a progress bar can finish.
    if !matches!(spec, DatasetSpec::CelebA | DatasetSpec::Folder(_))
        && let Some(cb) = opts.progress
    {
        cb(set.n, set.n);
    }
    tracing::debug!(
        dataset = %spec,
        %split,
        shape = ?set.shape(),
        source = %set.source,
        "loaded dataset"
    );
    Ok(set)
}

/// Formats a list of paths for a [`DataError::Missing`] hint.
pub(crate) fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("  {}", p.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips() {
        for s in ["mnist", "fashion-mnist", "cifar10", "celeba", "folder:/tmp/x y"] {
            let spec: DatasetSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        assert_eq!("CIFAR-10".parse::<DatasetSpec>().unwrap(), DatasetSpec::Cifar10);
        let err = "imagenet".parse::<DatasetSpec>().unwrap_err().to_string();
        assert!(err.contains("imagenet") && err.contains("fashion-mnist") && err.contains("folder:PATH"));
        assert!("folder:".parse::<DatasetSpec>().is_err());
    }

    #[test]
    fn split_round_trips() {
        for s in ["train", "test"] {
            assert_eq!(s.parse::<Split>().unwrap().to_string(), s);
        }
        assert!("valid".parse::<Split>().is_err());
    }

    #[test]
    fn data_dir_flag_wins() {
        assert_eq!(resolve_data_dir(Some(Path::new("/x"))), PathBuf::from("/x"));
    }

    #[test]
    fn image_set_accessors() {
        let mut s = ImageSet {
            data: (0..24).collect(),
            labels: Some(vec![1, 2, 3]),
            n: 3,
            channels: 2,
            height: 2,
            width: 2,
            source: String::new(),
        };
        assert_eq!(s.shape(), [3, 2, 2, 2]);
        assert_eq!(s.image(1), &[8, 9, 10, 11, 12, 13, 14, 15]);
        assert_eq!(s.label(2), Some(3));
        s.truncate(1);
        assert_eq!(s.data.len(), 8);
        assert_eq!(s.labels.as_deref(), Some(&[1u8][..]));
    }
}
