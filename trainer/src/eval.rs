//! FID and KID evaluation: image sets (dataset splits, a run's generator, an exported ONNX
//! generator) -> Inception features in batches, streamed into f64 statistics -> scores
//! against a reference. Shared by `stats`, `fid` and the evaluation during training.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use ort::session::Session;
use pagan_shared::inception::{FEATURE_DIM, INCEPTION_FILE, InceptionManifest, ResizeMode};
use pagan_shared::kid::{SplitMix64, sample_without_replacement};
use pagan_shared::manifest::{GENERATOR_FILE, MANIFEST_FILE, ModelManifest};
use pagan_shared::{FeatureStats, Gaussian, KidConfig, KidResult, StatsWarning};
use tch::{Device, Kind, Tensor};

use crate::config::TrainConfig;
use crate::data::ImageSet;
use crate::export::values;
use crate::inception::Inception;
use crate::ort_run;
use crate::sample::generate;
use crate::train::Gan;

/// Images per Inception batch unless told otherwise.
pub const DEFAULT_BATCH: usize = 50;

/// Something that turns images into 2048-d Inception features.
pub trait FeatureExtractor {
    /// Features of `images` [B, C, H, W] (C = 1 or 3, values 0..255): B x 2048 values.
    fn features(&mut self, images: &Tensor) -> Result<Vec<f32>>;
    /// The resize convention applied before the network.
    fn resize_mode(&self) -> ResizeMode;
    /// Short description for logs (`tch cpu`, `onnx models/inception`).
    fn describe(&self) -> String;
}

impl FeatureExtractor for Inception {
    fn features(&mut self, images: &Tensor) -> Result<Vec<f32>> {
        Ok(values(&Inception::features(self, images))?)
    }
    fn resize_mode(&self) -> ResizeMode {
        self.mode()
    }
    fn describe(&self) -> String {
        format!("tch Inception on {}", crate::device::describe(self.device()))
    }
}

/// The exported `models/inception` graph in ONNX Runtime (CPU).
pub struct OnnxInception {
    session: Session,
    manifest: InceptionManifest,
    dir: PathBuf,
}

impl OnnxInception {
    /// Opens `dir/manifest.json` and `dir/inception.onnx` (sha256 checked); `threads` = 0
    /// lets ORT choose.
    pub fn open(dir: &Path, threads: usize) -> Result<Self> {
        let manifest = InceptionManifest::read(&dir.join(MANIFEST_FILE)).with_context(|| {
            format!(
                "no feature extractor in {} (create it with `pagan-train export-inception --out {}`)",
                dir.display(),
                dir.display()
            )
        })?;
        let path = dir.join(&manifest.file);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        manifest.check_bytes(&bytes)?;
        let session = ort_run::session_from_bytes(&bytes, threads)?;
        Ok(Self {
            session,
            manifest,
            dir: dir.to_path_buf(),
        })
    }
}

impl FeatureExtractor for OnnxInception {
    fn features(&mut self, images: &Tensor) -> Result<Vec<f32>> {
        let (n, c, h, w) = images.size4()?;
        let x = images.to_device(Device::Cpu).to_kind(Kind::Float);
        let x = if c == 1 { x.expand([n, 3, h, w], false) } else { x };
        let data = values(&x)?;
        let (out, shape) =
            ort_run::run_f32(&mut self.session, &self.manifest.input.name, &data, &[n, 3, h, w])?;
        if shape != [n, FEATURE_DIM as i64] {
            bail!("{INCEPTION_FILE} returned shape {shape:?}, expected [{n}, {FEATURE_DIM}]");
        }
        Ok(out)
    }
    fn resize_mode(&self) -> ResizeMode {
        self.manifest.resize_mode
    }
    fn describe(&self) -> String {
        format!("ONNX Runtime CPU, {}", self.dir.display())
    }
}

/// A fixed, ordered set of images, read batch by batch as u8 [n, C, H, W] on the CPU.
pub trait ImageBatches {
    /// Number of images.
    fn len(&self) -> usize;
    /// True when there are no images.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Images `start..start + n`.
    fn batch(&mut self, start: usize, n: usize) -> Result<Tensor>;
    /// How many of the images from `start` (at most `n`) share one shape and can be one
    /// batch (sources of mixed-size files override this).
    fn uniform_run(&self, _start: usize, n: usize) -> usize {
        n
    }
}

/// Images of a dataset split, all or a seeded random subset.
pub struct DatasetImages<'a> {
    set: &'a ImageSet,
    indices: Vec<usize>,
}

impl<'a> DatasetImages<'a> {
    /// `n` images of `set`: all of them in order when `n` covers the set, else a random
    /// subset without replacement drawn with `seed`.
    pub fn new(set: &'a ImageSet, n: Option<usize>, seed: u64) -> Self {
        let total = set.len();
        let indices = match n {
            Some(n) if n < total => sample_without_replacement(&mut SplitMix64::new(seed), total, n),
            _ => (0..total).collect(),
        };
        Self { set, indices }
    }
}

impl ImageBatches for DatasetImages<'_> {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn batch(&mut self, start: usize, n: usize) -> Result<Tensor> {
        let idx = &self.indices[start..start + n];
        let mut bytes = Vec::with_capacity(n * self.set.image_len());
        for &i in idx {
            bytes.extend_from_slice(self.set.image(i));
        }
        let [_, c, h, w] = self.set.shape();
        Ok(Tensor::from_slice(&bytes).view([n as i64, c as i64, h as i64, w as i64]))
    }
}

/// PNG/JPEG files of a folder (recursive, sorted by path) at their own size: grey files stay
/// 1 channel (replicated before Inception), colour files are RGB (alpha dropped). Only
/// headers are read up front; pixels are decoded batch by batch.
pub struct ImageFiles {
    files: Vec<PathBuf>,
    shapes: Vec<[usize; 3]>,
}

impl ImageFiles {
    /// Lists and inspects the images under `dir` (at most `limit` when given).
    pub fn open(dir: &Path, limit: Option<usize>) -> Result<Self> {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
                let p = e?.path();
                let hidden = p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if hidden {
                    continue;
                }
                if p.is_dir() {
                    stack.push(p);
                } else if p
                    .extension()
                    .map(|x| x.to_string_lossy().to_lowercase())
                    .is_some_and(|x| matches!(x.as_str(), "png" | "jpg" | "jpeg"))
                {
                    files.push(p);
                }
            }
        }
        files.sort();
        if let Some(l) = limit {
            files.truncate(l);
        }
        if files.is_empty() {
            bail!("no .png/.jpg/.jpeg files under {}", dir.display());
        }
        let shapes = files
            .iter()
            .map(|f| {
                let dec = image::ImageReader::open(f)
                    .and_then(|r| r.with_guessed_format())
                    .with_context(|| format!("opening {}", f.display()))?
                    .into_decoder()
                    .with_context(|| format!("{}: not a readable PNG/JPEG", f.display()))?;
                use image::ImageDecoder;
                let (w, h) = dec.dimensions();
                let c = if dec.color_type().has_color() { 3 } else { 1 };
                Ok([c, h as usize, w as usize])
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { files, shapes })
    }
}

impl ImageBatches for ImageFiles {
    fn len(&self) -> usize {
        self.files.len()
    }
    fn uniform_run(&self, start: usize, n: usize) -> usize {
        let first = self.shapes[start];
        self.shapes[start..start + n]
            .iter()
            .take_while(|s| **s == first)
            .count()
    }
    fn batch(&mut self, start: usize, n: usize) -> Result<Tensor> {
        let [c, h, w] = self.shapes[start];
        let mut bytes: Vec<u8> = Vec::with_capacity(n * c * h * w);
        for f in &self.files[start..start + n] {
            let img = image::open(f).with_context(|| format!("decoding {}", f.display()))?;
            let hwc = if c == 1 {
                img.to_luma8().into_raw()
            } else {
                img.to_rgb8().into_raw()
            };
            // HWC -> CHW.
            for ch in 0..c {
                bytes.extend(hwc.iter().skip(ch).step_by(c));
            }
        }
        Ok(Tensor::from_slice(&bytes).view([n as i64, c as i64, h as i64, w as i64]))
    }
}

/// Generated images quantised to bytes exactly like saved PNGs (`grid::to_u8`), so a score
/// of generated arrays equals the score of the same images written as files.
fn quantise(values: &[f32], shape: [usize; 4]) -> Tensor {
    let bytes: Vec<u8> = values.iter().map(|&v| pagan_shared::grid::to_u8(v)).collect();
    let [n, c, h, w] = shape.map(|v| v as i64);
    Tensor::from_slice(&bytes).view([n, c, h, w])
}

/// `n` images from a tch generator with latents `latent::uniform(seed, n, latent)`.
pub struct GeneratedImages<'a> {
    cfg: &'a TrainConfig,
    gan: &'a Gan,
    device: Device,
    z: Vec<f32>,
}

impl<'a> GeneratedImages<'a> {
    /// `n` images of `gan` (eval mode) from seed `seed`.
    pub fn new(cfg: &'a TrainConfig, gan: &'a Gan, device: Device, n: usize, seed: u64) -> Self {
        let z = pagan_shared::latent::uniform(seed, n, cfg.arch.latent as usize);
        Self { cfg, gan, device, z }
    }
}

impl ImageBatches for GeneratedImages<'_> {
    fn len(&self) -> usize {
        self.z.len() / self.cfg.arch.latent as usize
    }
    fn batch(&mut self, start: usize, n: usize) -> Result<Tensor> {
        let l = self.cfg.arch.latent as usize;
        let imgs = generate(
            self.cfg,
            self.gan,
            self.device,
            &self.z[start * l..(start + n) * l],
            n,
        )?;
        Ok(quantise(&imgs.data, imgs.shape))
    }
}

/// `n` images from an exported model folder (`generator.onnx` in ONNX Runtime).
pub struct OnnxGeneratedImages {
    session: Session,
    manifest: ModelManifest,
    z: Vec<f32>,
}

impl OnnxGeneratedImages {
    /// Opens `dir` (manifest + ONNX, sha256 checked) and draws `n` latents from `seed`.
    pub fn open(dir: &Path, n: usize, seed: u64) -> Result<Self> {
        let manifest = ModelManifest::read(&dir.join(MANIFEST_FILE))?;
        let path = manifest.onnx_path(dir);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        manifest.check_against_onnx_bytes(&bytes)?;
        let session = ort_run::session_from_bytes(&bytes, 0)?;
        let z = pagan_shared::latent::uniform(seed, n, manifest.latent.size);
        Ok(Self { session, manifest, z })
    }
}

impl ImageBatches for OnnxGeneratedImages {
    fn len(&self) -> usize {
        self.z.len() / self.manifest.latent.size
    }
    fn batch(&mut self, start: usize, n: usize) -> Result<Tensor> {
        let l = self.manifest.latent.size;
        let (out, shape) = ort_run::run_f32(
            &mut self.session,
            &self.manifest.onnx.input.name,
            &self.z[start * l..(start + n) * l],
            &[n as i64, l as i64],
        )?;
        let im = self.manifest.image;
        if shape != [n as i64, im.channels as i64, im.height as i64, im.width as i64] {
            bail!("{GENERATOR_FILE} returned shape {shape:?}, the manifest says {im:?}");
        }
        Ok(quantise(&out, [n, im.channels, im.height, im.width]))
    }
}

/// How [`extract`] runs.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Images per Inception call.
    pub batch: usize,
    /// Keep every feature row (KID needs them) besides the running statistics.
    pub keep_features: bool,
    /// Progress-bar label.
    pub label: String,
    /// No progress bar.
    pub quiet: bool,
}

/// Features of a whole image set.
#[derive(Debug)]
pub struct Extracted {
    /// Running mean/covariance sums (f64).
    pub stats: FeatureStats,
    /// All rows (n x 2048), if asked for.
    pub features: Option<Vec<f32>>,
    /// Wall seconds.
    pub seconds: f64,
}

impl Extracted {
    /// Images per second.
    pub fn rate(&self) -> f64 {
        self.stats.n() as f64 / self.seconds.max(1e-9)
    }
}

/// Runs every image of `src` through `fx` in batches, streaming rows into statistics.
pub fn extract(
    src: &mut dyn ImageBatches,
    fx: &mut dyn FeatureExtractor,
    opts: &ExtractOptions,
) -> Result<Extracted> {
    let total = src.len();
    if total == 0 {
        bail!("no images to evaluate");
    }
    let batch = opts.batch.max(1);
    let bar = if opts.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {bar:30} {pos}/{len} images {per_sec} ETA {eta}",
        ) {
            b.set_style(style);
        }
        b.set_message(opts.label.clone());
        b
    };
    let start = Instant::now();
    let mut stats = FeatureStats::new(FEATURE_DIM)?;
    let mut kept = opts
        .keep_features
        .then(|| Vec::with_capacity(total * FEATURE_DIM));
    let mut done = 0;
    while done < total {
        let n = src.uniform_run(done, batch.min(total - done)).max(1);
        let images = src.batch(done, n)?;
        let rows = fx.features(&images)?;
        if rows.len() != n * FEATURE_DIM {
            bail!("feature extractor returned {} values for {n} images", rows.len());
        }
        if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
            bail!(
                "non-finite Inception feature for image {}",
                done + i / FEATURE_DIM
            );
        }
        stats.add_rows(&rows, n)?;
        if let Some(k) = kept.as_mut() {
            k.extend_from_slice(&rows);
        }
        done += n;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(Extracted {
        stats,
        features: kept,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// FID (and optionally KID) of one image set against a reference.
#[derive(Debug, Clone)]
pub struct Score {
    /// Frechet distance.
    pub fid: f64,
    /// KID, when both sets' features were available.
    pub kid: Option<KidResult>,
    /// Images scored.
    pub n: u64,
    /// Images behind the reference, if recorded.
    pub reference_n: Option<u64>,
    /// Warnings about either side's statistics.
    pub warnings: Vec<StatsWarning>,
}

/// Scores `generated` against `reference` (and `reference_features` for KID when `kid`).
pub fn score(
    generated: &Extracted,
    reference: &Gaussian,
    reference_features: Option<&[f32]>,
    kid: bool,
) -> Result<Score> {
    let g = generated.stats.finalize()?;
    let fid = pagan_shared::frechet_distance(&g, reference)?;
    let kid = if kid {
        let x = generated
            .features
            .as_deref()
            .context("KID needs the generated features (extract with keep_features)")?;
        let y = reference_features.context(
            "KID needs the reference's features; this statistics file has only mu/sigma \
             (write one with `pagan-train stats`, which stores them)",
        )?;
        Some(pagan_shared::kid(x, y, FEATURE_DIM, &KidConfig::default())?)
    } else {
        None
    };
    let mut warnings = g.warnings.clone();
    warnings.extend(reference.warnings.iter().cloned());
    Ok(Score {
        fid,
        kid,
        n: generated.stats.n(),
        reference_n: reference.n,
        warnings,
    })
}

/// Images selected from a u8 [N, C, H, W] tensor (the trainer's copy of the dataset).
pub struct TensorImages<'a> {
    data: &'a Tensor,
    indices: Vec<usize>,
}

impl ImageBatches for TensorImages<'_> {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn batch(&mut self, start: usize, n: usize) -> Result<Tensor> {
        let idx: Vec<i64> = self.indices[start..start + n].iter().map(|&i| i as i64).collect();
        let idx = Tensor::from_slice(&idx).to_device(self.data.device());
        Ok(self.data.index_select(0, &idx))
    }
}

/// One evaluation during training.
#[derive(Debug, Clone, Copy)]
pub struct EvalResult {
    /// KID of generated vs training images.
    pub kid: f64,
    /// Its standard deviation over subsets.
    pub kid_std: f64,
    /// FID vs the reference statistics, if one is configured.
    pub fid: Option<f64>,
    /// Wall seconds of the evaluation.
    pub seconds: f64,
}

/// The trainer's evaluator: the Inception on the training device, the FID reference and
/// the features of a fixed random subset of training images (computed once per process).
pub struct TrainingEval {
    inception: Inception,
    reference: Option<Gaussian>,
    real: Option<Vec<f32>>,
}

impl TrainingEval {
    /// Loads the Inception on `device` and the reference of `cfg.eval`, if any.
    pub fn new(cfg: &TrainConfig, device: Device) -> Result<Self> {
        let e = &cfg.eval;
        let weights = if e.weights.is_empty() {
            crate::inception::weights::default_path()
        } else {
            PathBuf::from(&e.weights)
        };
        let inception = Inception::load(&weights, device, e.resize_mode)?;
        let reference = match &e.fid_reference {
            None => None,
            Some(p) => {
                let r = pagan_shared::read_stats_npz(Path::new(p))?;
                if let Some(m) = r.resize_mode.as_deref()
                    && m != e.resize_mode.as_str()
                {
                    tracing::warn!(
                        reference = %p,
                        "reference statistics were computed with resize mode {m}, evaluation uses {}:                          FID values will not be comparable",
                        e.resize_mode
                    );
                }
                Some(r.gaussian)
            }
        };
        Ok(Self {
            inception,
            reference,
            real: None,
        })
    }

    /// KID (and FID) of `cfg.eval.samples` images of `gan` at iteration `iter` against the
    /// cached training subset `data` (u8 [N, C, H, W] on the device).
    pub fn evaluate(&mut self, cfg: &TrainConfig, gan: &Gan, data: &Tensor, iter: u64) -> Result<EvalResult> {
        use crate::rng::{derive_seed, stream};
        let start = Instant::now();
        let e = &cfg.eval;
        let opts = |label: &str| ExtractOptions {
            batch: e.batch,
            keep_features: true,
            label: label.to_owned(),
            quiet: true,
        };
        if self.real.is_none() {
            let n = data.size()[0] as usize;
            let seed = derive_seed(cfg.seed, stream::EVAL_REAL, 0);
            let indices = sample_without_replacement(&mut SplitMix64::new(seed), n, e.samples.min(n));
            let mut src = TensorImages { data, indices };
            let ex = extract(&mut src, &mut self.inception, &opts("real"))?;
            self.real = ex.features;
        }
        let device = self.inception.device();
        let mut gen_src = GeneratedImages::new(
            cfg,
            gan,
            device,
            e.samples,
            derive_seed(cfg.seed, stream::EVAL_Z, iter),
        );
        let generated = extract(&mut gen_src, &mut self.inception, &opts("generated"))?;
        let real = self.real.as_deref().context("training features missing")?;
        let fake = generated
            .features
            .as_deref()
            .context("generated features missing")?;
        let kid_cfg = KidConfig {
            seed: iter,
            ..KidConfig::default()
        };
        let kid = pagan_shared::kid(fake, real, FEATURE_DIM, &kid_cfg)?;
        let fid = match &self.reference {
            Some(r) => Some(pagan_shared::frechet_distance(&generated.stats.finalize()?, r)?),
            None => None,
        };
        Ok(EvalResult {
            kid: kid.mean,
            kid_std: kid.std,
            fid,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}
