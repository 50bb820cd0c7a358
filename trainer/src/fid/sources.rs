//! Where images to score come from, each at its own size and as it is stored (8-bit,
//! grey or RGB): a dataset split (as the dataset defines it), the files of a folder,
//! a run's generator and an exported generator in ONNX Runtime. Generated images are
//! rounded to bytes exactly as saved PNGs are. (Training-time evaluation keeps its images
//! on the device: `evaluate`.)

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ort::session::Session;
use pagan_shared::images::{self, Image};
use pagan_shared::manifest::{GENERATOR_FILE, MANIFEST_FILE, ModelManifest, cycle_labels};
use pagan_shared::rng::{SplitMix64, sample_without_replacement};

use crate::data::ImageSet;
use crate::model::Gan;
use crate::onnx::runtime;

/// A fixed, ordered set of images, read batch by batch.
pub trait ImageSource {
    /// Number of images.
    fn len(&self) -> usize;
    /// True when there are no images.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The next at most `max` images; empty when all were read.
    fn next_batch(&mut self, max: usize) -> Result<Vec<Image>>;
}

/// `n` of `total` indices: all in order when `n` covers them, else a seeded random subset.
fn pick(total: usize, n: Option<usize>, seed: u64) -> Vec<usize> {
    match n {
        Some(n) if n < total => sample_without_replacement(&mut SplitMix64::new(seed), total, n),
        _ => (0..total).collect(),
    }
}

/// Images of a loaded dataset split, all or a seeded random subset.
pub struct DatasetImages<'a> {
    set: &'a ImageSet,
    indices: Vec<usize>,
    pos: usize,
}

impl<'a> DatasetImages<'a> {
    /// `n` images of `set` (all when `n` is `None` or covers the set) drawn with `seed`.
    pub fn new(set: &'a ImageSet, n: Option<usize>, seed: u64) -> Self {
        Self {
            set,
            indices: pick(set.len(), n, seed),
            pos: 0,
        }
    }
}

impl<'a> DatasetImages<'a> {
    /// At most `n` of the images `indices` of `set` (a subset drawn with `seed` when more).
    pub fn subset_of(set: &'a ImageSet, indices: &[usize], n: usize, seed: u64) -> Self {
        let indices = pick(indices.len(), Some(n), seed)
            .into_iter()
            .map(|i| indices[i])
            .collect();
        Self { set, indices, pos: 0 }
    }
}

impl ImageSource for DatasetImages<'_> {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn next_batch(&mut self, max: usize) -> Result<Vec<Image>> {
        let end = (self.pos + max).min(self.indices.len());
        let [_, c, h, w] = self.set.shape();
        let out = self.indices[self.pos..end]
            .iter()
            .map(|&i| Image::planar(c, h, w, self.set.image(i).to_vec()))
            .collect::<Result<Vec<_>, _>>()?;
        self.pos = end;
        Ok(out)
    }
}

/// uint8 images of an `.npz` archive (member `images`, ADM-style `arr_0`, or its only
/// array), `[N, H, W]` or `[N, H, W, C]`, all or a seeded subset.
pub struct ArrayImages {
    pixels: Vec<u8>,
    shape: [usize; 4],
    indices: Vec<usize>,
    pos: usize,
}

impl ArrayImages {
    /// Reads `path`; `n` images drawn with `seed` (all when `n` covers them).
    pub fn open(path: &Path, n: Option<usize>, seed: u64) -> Result<Self> {
        let (pixels, shape) = pagan_shared::read_images_npz(path)?;
        Ok(Self {
            pixels,
            shape,
            indices: pick(shape[0], n, seed),
            pos: 0,
        })
    }
}

impl ImageSource for ArrayImages {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn next_batch(&mut self, max: usize) -> Result<Vec<Image>> {
        let end = (self.pos + max).min(self.indices.len());
        let [_, h, w, c] = self.shape;
        let size = h * w * c;
        let out = self.indices[self.pos..end]
            .iter()
            .map(|&i| Image::from_interleaved(c, h, w, &self.pixels[i * size..(i + 1) * size]))
            .collect::<Result<Vec<_>, _>>()?;
        self.pos = end;
        Ok(out)
    }
}

/// PNG/JPEG entries of a zip or tar archive (in archive order; directories, `__MACOSX/`
/// and dotfiles skipped), all or a seeded subset, decoded at their own size.
pub struct ArchiveImages {
    entries: Vec<(String, Vec<u8>)>,
    indices: Vec<usize>,
    pos: usize,
}

impl ArchiveImages {
    /// True when `path` starts like a zip or a tar archive.
    pub fn is_archive(path: &Path) -> bool {
        let mut head = [0u8; 262];
        let n = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .unwrap_or(0);
        head[..n.min(2)] == *b"PK" || (n >= 262 && &head[257..262] == b"ustar")
    }

    /// Reads the image entries of `path`; `n` of them drawn with `seed`.
    pub fn open(path: &Path, n: Option<usize>, seed: u64) -> Result<Self> {
        let label = path.display().to_string();
        let wanted = |name: &str| {
            let lower = name.to_ascii_lowercase();
            let base = name.rsplit('/').next().unwrap_or(name);
            !lower.starts_with("__macosx/")
                && !base.starts_with('.')
                && (lower.ends_with(".png") || lower.ends_with(".jpg") || lower.ends_with(".jpeg"))
        };
        let file = std::fs::File::open(path).with_context(|| format!("opening {label}"))?;
        let mut entries = Vec::new();
        if let Ok(mut zip) = zip::ZipArchive::new(std::io::BufReader::new(file)) {
            for i in 0..zip.len() {
                let mut e = zip.by_index(i).with_context(|| format!("{label}: entry {i}"))?;
                let name = e
                    .name()
                    .with_context(|| format!("{label}: entry {i}"))?
                    .into_owned();
                if e.is_file() && wanted(&name) {
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(&mut e, &mut bytes)
                        .with_context(|| format!("{label}: {name}"))?;
                    entries.push((format!("{label}: {name}"), bytes));
                }
            }
        } else {
            let file = std::fs::File::open(path).with_context(|| format!("opening {label}"))?;
            let mut tar = tar::Archive::new(file);
            for e in tar
                .entries()
                .with_context(|| format!("{label}: not a zip or tar archive"))?
            {
                let mut e = e.with_context(|| format!("{label}: a damaged tar entry"))?;
                let name = e.path()?.to_string_lossy().into_owned();
                if e.header().entry_type().is_file() && wanted(&name) {
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(&mut e, &mut bytes)
                        .with_context(|| format!("{label}: {name}"))?;
                    entries.push((format!("{label}: {name}"), bytes));
                }
            }
        }
        if entries.is_empty() {
            bail!("{label} holds no PNG or JPEG images");
        }
        Ok(Self {
            indices: pick(entries.len(), n, seed),
            entries,
            pos: 0,
        })
    }
}

impl ImageSource for ArchiveImages {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn next_batch(&mut self, max: usize) -> Result<Vec<Image>> {
        let end = (self.pos + max).min(self.indices.len());
        let out = self.indices[self.pos..end]
            .iter()
            .map(|&i| {
                let (label, bytes) = &self.entries[i];
                images::decode(bytes, label, u64::MAX)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.pos = end;
        Ok(out)
    }
}

/// PNG/JPEG files decoded at their own size, in the given order (a seeded subset when
/// asked for, as for dataset splits).
pub struct FileImages {
    files: Vec<PathBuf>,
    pos: usize,
}

impl FileImages {
    /// The files, in order.
    pub fn new(files: Vec<PathBuf>) -> Self {
        Self { files, pos: 0 }
    }

    /// `n` of `files` drawn with `seed` (all of them when `n` covers them).
    pub fn subset(files: Vec<PathBuf>, n: Option<usize>, seed: u64) -> Self {
        let picked = pick(files.len(), n, seed)
            .into_iter()
            .map(|i| files[i].clone())
            .collect();
        Self::new(picked)
    }
}

impl ImageSource for FileImages {
    fn len(&self) -> usize {
        self.files.len()
    }
    fn next_batch(&mut self, max: usize) -> Result<Vec<Image>> {
        let end = (self.pos + max).min(self.files.len());
        let out = self.files[self.pos..end]
            .iter()
            .map(|f| images::read_file(f))
            .collect::<Result<Vec<_>, _>>()?;
        self.pos = end;
        Ok(out)
    }
}

/// `n` images of a tch generator (eval mode) with latents `latent::uniform(seed, n, ..)`;
/// a class-conditional generator's cycle through its classes, or are all of one class.
pub struct GeneratedImages<'a> {
    gan: &'a Gan,
    z: Vec<f32>,
    labels: Option<Vec<i64>>,
    pos: usize,
}

impl<'a> GeneratedImages<'a> {
    /// `n` images of `gan` from seed `seed`.
    pub fn new(gan: &'a Gan, n: usize, seed: u64) -> Self {
        let z = pagan_shared::latent::uniform(seed, n, gan.g.arch.latent as usize);
        let labels = gan
            .g
            .classes
            .as_ref()
            .map(|c| pagan_shared::manifest::cycle_labels(0, n, c.table.size()[0] as usize));
        Self {
            gan,
            z,
            labels,
            pos: 0,
        }
    }

    /// `n` images of class `label` of a class-conditional `gan`.
    pub fn of_class(gan: &'a Gan, n: usize, seed: u64, label: i64) -> Self {
        let z = pagan_shared::latent::uniform(seed, n, gan.g.arch.latent as usize);
        Self {
            gan,
            z,
            labels: Some(vec![label; n]),
            pos: 0,
        }
    }
}

impl ImageSource for GeneratedImages<'_> {
    fn len(&self) -> usize {
        self.z.len() / self.gan.g.arch.latent as usize
    }
    fn next_batch(&mut self, max: usize) -> Result<Vec<Image>> {
        let l = self.gan.g.arch.latent as usize;
        let n = max.min(self.len() - self.pos);
        if n == 0 {
            return Ok(Vec::new());
        }
        let labels = self.labels.as_ref().map(|y| &y[self.pos..self.pos + n]);
        let values = self
            .gan
            .generate(&self.z[self.pos * l..(self.pos + n) * l], n, labels)?;
        let [c, h, w] = self.gan.image_shape();
        self.pos += n;
        Ok(images::from_model_batch(&values, [n, c, h, w])?)
    }
}

/// `n` images of an exported model folder (`generator.onnx` in ONNX Runtime).
pub struct OnnxGeneratedImages {
    session: Session,
    manifest: ModelManifest,
    z: Vec<f32>,
    pos: usize,
}

impl OnnxGeneratedImages {
    /// Opens `dir` (manifest + ONNX, sha256 checked) and draws `n` latents from `seed`.
    pub fn open(dir: &Path, n: usize, seed: u64) -> Result<Self> {
        let manifest = ModelManifest::read(&dir.join(MANIFEST_FILE))?;
        let path = manifest.onnx_path(dir);
        let bytes = std::fs::read(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        manifest.check_against_onnx_bytes(&bytes)?;
        let session = runtime::session_from_bytes(&bytes, 0)?;
        let z = pagan_shared::latent::uniform(seed, n, manifest.latent.size);
        Ok(Self {
            session,
            manifest,
            z,
            pos: 0,
        })
    }
}

impl ImageSource for OnnxGeneratedImages {
    fn len(&self) -> usize {
        self.z.len() / self.manifest.latent.size
    }
    fn next_batch(&mut self, max: usize) -> Result<Vec<Image>> {
        let l = self.manifest.latent.size;
        let n = max.min(self.len() - self.pos);
        if n == 0 {
            return Ok(Vec::new());
        }
        let z = &self.z[self.pos * l..(self.pos + n) * l];
        // A conditional model's images cycle through the classes, as everywhere else.
        let labels = self
            .manifest
            .classes
            .as_ref()
            .map(|c| (c.input.name.as_str(), cycle_labels(self.pos, n, c.names.len())));
        let (out, shape) = runtime::run_f32_labelled(
            &mut self.session,
            &self.manifest.onnx.input.name,
            z,
            &[n as i64, l as i64],
            labels.as_ref().map(|(name, y)| (*name, y.as_slice())),
        )?;
        let im = self.manifest.image;
        if shape != [n as i64, im.channels as i64, im.height as i64, im.width as i64] {
            bail!("{GENERATOR_FILE} returned shape {shape:?}, the manifest says {im:?}");
        }
        self.pos += n;
        Ok(images::from_model_batch(
            &out,
            [n, im.channels, im.height, im.width],
        )?)
    }
}
