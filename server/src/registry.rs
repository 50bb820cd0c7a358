//! The model registry: scans `models/` once at startup. Generators and the feature
//! extractor get ONNX Runtime session pools; reference statistics are loaded from
//! `models/references/*.npz`. A broken model is logged and listed, never fatal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use pagan_shared::inception::{INCEPTION_DIR, InceptionManifest};
use pagan_shared::manifest::{MANIFEST_FILE, ModelManifest};
use pagan_shared::{Gaussian, read_features_npz, read_stats_npz};
use serde::Serialize;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::runtime::{Provider, RuntimeError, SessionPool, run_f32};

/// Folder (inside the models folder) holding reference statistics.
pub const REFERENCES_DIR: &str = "references";
/// Feature width of the Inception extractor (and of every usable reference).
pub use pagan_shared::inception::FEATURE_DIM;

/// A loaded generator: its manifest and sessions.
pub struct Generator {
    /// Name it is served under (its folder's name).
    pub name: String,
    /// Its manifest.
    pub manifest: ModelManifest,
    /// Provider its sessions run on.
    pub provider: Provider,
    pool: SessionPool,
    /// Seconds per image of the latest run (f64 bits; 0 = never run yet).
    per_image_seconds: AtomicU64,
}

/// Work expected to take less than this runs on the HTTP worker itself: handing it to the
/// blocking pool and back costs about 0.1 ms on a small CPU, a quarter of a small model's run.
pub const INLINE_BELOW_SECONDS: f64 = 1e-3;

/// Whether generating `n` images, at `per_image` seconds each as last measured (None:
/// never run), is short enough to run inline; unknown cost never is.
pub fn runs_inline(per_image: Option<f64>, n: usize) -> bool {
    per_image.is_some_and(|s| s * (n as f64) < INLINE_BELOW_SECONDS)
}

impl Generator {
    /// Seconds per image of this model's latest run, if it has run.
    pub fn per_image_seconds(&self) -> Option<f64> {
        let s = f64::from_bits(self.per_image_seconds.load(Ordering::Relaxed));
        (s > 0.0).then_some(s)
    }

    /// Images `[n, C, H, W]` in [-1, 1] for latents `z` (`n * latent` values), run in
    /// batches of at most `batch` so memory and latency per run stay bounded.
    pub fn generate(
        &self,
        z: &[f32],
        n: usize,
        batch: usize,
        metrics: &Metrics,
    ) -> Result<Vec<f32>, RuntimeError> {
        let latent = self.manifest.latent.size;
        let img = self.manifest.image;
        let per = img.channels * img.height * img.width;
        let mut out = Vec::with_capacity(n * per);
        for chunk in z.chunks(batch.max(1) * latent) {
            let b = chunk.len() / latent;
            let started = Instant::now();
            let (values, shape) = {
                let mut session = self.pool.get();
                run_f32(
                    &mut session,
                    &self.manifest.onnx.input.name,
                    chunk,
                    &[b as i64, latent as i64],
                )?
            };
            let seconds = started.elapsed().as_secs_f64();
            metrics.observe_run(&self.name, b, seconds);
            self.per_image_seconds
                .store((seconds / b as f64).to_bits(), Ordering::Relaxed);
            let expected = vec![b as i64, img.channels as i64, img.height as i64, img.width as i64];
            if shape != expected || values.len() != b * per {
                return Err(RuntimeError::OutputShape { expected, got: shape });
            }
            out.extend_from_slice(&values);
        }
        Ok(out)
    }
}

/// The Inception feature extractor (`models/inception`).
pub struct Extractor {
    /// Its manifest.
    pub manifest: InceptionManifest,
    /// Provider its sessions run on.
    pub provider: Provider,
    pool: SessionPool,
}

impl Extractor {
    /// Features `[n, 2048]` for images `[n, 3, h, w]` with values in 0..255.
    pub fn features(
        &self,
        images: &[f32],
        n: usize,
        h: usize,
        w: usize,
        metrics: &Metrics,
    ) -> Result<Vec<f32>, RuntimeError> {
        let started = Instant::now();
        let (values, shape) = {
            let mut session = self.pool.get();
            run_f32(
                &mut session,
                &self.manifest.input.name,
                images,
                &[n as i64, 3, h as i64, w as i64],
            )?
        };
        metrics.observe_run(INCEPTION_DIR, n, started.elapsed().as_secs_f64());
        let expected = vec![n as i64, FEATURE_DIM as i64];
        if shape != expected || values.len() != n * FEATURE_DIM {
            return Err(RuntimeError::OutputShape { expected, got: shape });
        }
        Ok(values)
    }
}

/// Reference statistics to score against.
pub struct Reference {
    /// Name (the file stem).
    pub name: String,
    /// Mean and covariance.
    pub gaussian: Gaussian,
    /// Resize mode recorded in the file, if any.
    pub resize_mode: Option<String>,
    /// Raw features `[rows, 2048]` for KID, if the file has them.
    pub features: Option<(Vec<f32>, usize)>,
}

/// Summary of a reference for listings.
#[derive(Debug, Serialize)]
pub struct ReferenceInfo {
    /// Name to pass as `reference=`.
    pub name: String,
    /// Feature dimension.
    pub dim: usize,
    /// Samples behind the statistics, if recorded.
    pub n: Option<u64>,
    /// Resize mode recorded in the file, if any.
    pub resize_mode: Option<String>,
    /// Rows of stored features (KID needs them), if any.
    pub feature_rows: Option<usize>,
}

impl Reference {
    /// Loads and validates `path` (statistics, then features if present).
    pub fn load(name: &str, path: &Path) -> Result<Self, pagan_shared::StatsError> {
        let stats = read_stats_npz(path)?;
        let features = read_features_npz(path)?;
        Ok(Reference {
            name: name.to_owned(),
            gaussian: stats.gaussian,
            resize_mode: stats.resize_mode,
            features,
        })
    }

    /// Listing summary.
    pub fn info(&self) -> ReferenceInfo {
        ReferenceInfo {
            name: self.name.clone(),
            dim: self.gaussian.dim(),
            n: self.gaussian.n,
            resize_mode: self.resize_mode.clone(),
            feature_rows: self.features.as_ref().map(|(_, rows)| *rows),
        }
    }
}

/// Something under `models/` that could not be loaded, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Failed {
    /// Folder or file name (`references/x.npz` for references).
    pub name: String,
    /// What went wrong.
    pub error: String,
}

/// Everything the service can serve.
pub struct Registry {
    /// Generators by name.
    pub generators: BTreeMap<String, Arc<Generator>>,
    /// The feature extractor, if `models/inception` loaded.
    pub extractor: Option<Arc<Extractor>>,
    /// What failed to load.
    pub failed: Vec<Failed>,
    references: RwLock<BTreeMap<String, Arc<Reference>>>,
    /// Where reference statistics live (uploads are written here).
    pub references_dir: PathBuf,
}

/// True for names usable as a model/reference name: ASCII letters, digits, `-`, `_`,
/// `.`, not starting with `.`, at most 64 characters (also safe as a file name).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn read_checked(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn load_generator(dir: &Path, name: &str, config: &Config) -> Result<Generator, String> {
    let manifest = ModelManifest::read(&dir.join(MANIFEST_FILE)).map_err(|e| e.to_string())?;
    if manifest.name != name {
        tracing::warn!(folder = name, manifest = %manifest.name, "manifest name differs from its folder; serving under the folder name");
    }
    let bytes = read_checked(&manifest.onnx_path(dir))?;
    manifest
        .check_against_onnx_bytes(&bytes)
        .map_err(|e| e.to_string())?;
    let (pool, provider) = SessionPool::new(&bytes, config.sessions, config.provider, config.threads, name)
        .map_err(|e| e.to_string())?;
    Ok(Generator {
        name: name.to_owned(),
        manifest,
        provider,
        pool,
        per_image_seconds: AtomicU64::new(0),
    })
}

fn load_extractor(dir: &Path, config: &Config) -> Result<Extractor, String> {
    let manifest = InceptionManifest::read(&dir.join(MANIFEST_FILE)).map_err(|e| e.to_string())?;
    let bytes = read_checked(&dir.join(&manifest.file))?;
    manifest.check_bytes(&bytes).map_err(|e| e.to_string())?;
    let (pool, provider) = SessionPool::new(
        &bytes,
        config.sessions,
        config.provider,
        config.threads,
        INCEPTION_DIR,
    )
    .map_err(|e| e.to_string())?;
    Ok(Extractor {
        manifest,
        provider,
        pool,
    })
}

impl Registry {
    /// Scans `config.models`; problems are logged and recorded in `failed`.
    pub fn load(config: &Config, metrics: &Metrics) -> Self {
        let root = &config.models;
        let mut reg = Registry {
            generators: BTreeMap::new(),
            extractor: None,
            failed: Vec::new(),
            references: RwLock::new(BTreeMap::new()),
            references_dir: root.join(REFERENCES_DIR),
        };
        let mut dirs: Vec<(String, PathBuf)> = match std::fs::read_dir(root) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .filter(|e| e.path().join(MANIFEST_FILE).is_file())
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .collect(),
            Err(e) => {
                tracing::warn!(models = %root.display(), error = %e, "models folder not readable; serving no models");
                Vec::new()
            }
        };
        dirs.sort();
        for (name, dir) in dirs {
            let started = Instant::now();
            if name == INCEPTION_DIR {
                match load_extractor(&dir, config) {
                    Ok(x) => {
                        tracing::info!(provider = x.provider.as_str(), resize_mode = %x.manifest.resize_mode,
                            seconds = started.elapsed().as_secs_f64(), "feature extractor loaded");
                        metrics
                            .model_provider
                            .with_label_values(&[INCEPTION_DIR, x.provider.as_str()])
                            .set(1);
                        reg.extractor = Some(Arc::new(x));
                    }
                    Err(error) => reg.fail(name, error),
                }
                continue;
            }
            if !is_valid_name(&name) {
                reg.fail(
                    name,
                    "folder name is not a valid model name (letters, digits, - _ .)".into(),
                );
                continue;
            }
            match load_generator(&dir, &name, config) {
                Ok(g) => {
                    tracing::info!(model = %name, provider = g.provider.as_str(),
                        seconds = started.elapsed().as_secs_f64(), "model loaded");
                    metrics
                        .model_provider
                        .with_label_values(&[name.as_str(), g.provider.as_str()])
                        .set(1);
                    reg.generators.insert(name, Arc::new(g));
                }
                Err(error) => reg.fail(name, error),
            }
        }
        reg.load_references();
        if reg.generators.is_empty() {
            tracing::warn!(models = %root.display(), "no generator models loaded");
        }
        if reg.extractor.is_none() {
            tracing::warn!("no feature extractor (models/inception): FID/KID scoring is unavailable");
        }
        reg
    }

    fn fail(&mut self, name: String, error: String) {
        tracing::error!(model = %name, %error, "model not loaded");
        self.failed.push(Failed { name, error });
    }

    fn load_references(&mut self) {
        let Ok(rd) = std::fs::read_dir(&self.references_dir) else {
            return;
        };
        let mut files: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "npz"))
            .collect();
        files.sort();
        for path in files {
            let Some(name) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                continue;
            };
            let label = format!("{REFERENCES_DIR}/{name}.npz");
            if !is_valid_name(&name) {
                self.fail(label, "file name is not a valid reference name".into());
                continue;
            }
            match Reference::load(&name, &path) {
                Ok(r) if r.gaussian.dim() != FEATURE_DIM => self.fail(
                    label,
                    format!(
                        "statistics have dimension {}, the extractor gives {FEATURE_DIM}",
                        r.gaussian.dim()
                    ),
                ),
                Ok(r) => {
                    tracing::info!(reference = %name, n = ?r.gaussian.n, kid = r.features.is_some(), "reference loaded");
                    self.insert_reference(r);
                }
                Err(e) => self.fail(label, e.to_string()),
            }
        }
    }

    /// A reference by name.
    pub fn reference(&self, name: &str) -> Option<Arc<Reference>> {
        self.references
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Summaries of every reference, by name.
    pub fn reference_infos(&self) -> Vec<ReferenceInfo> {
        let refs = self.references.read().unwrap_or_else(PoisonError::into_inner);
        refs.values().map(|r| r.info()).collect()
    }

    /// Adds (or replaces) a reference.
    pub fn insert_reference(&self, r: Reference) {
        let mut refs = self.references.write().unwrap_or_else(PoisonError::into_inner);
        refs.insert(r.name.clone(), Arc::new(r));
    }

    /// True when a generator or the extractor is loaded (something can be served).
    pub fn ready(&self) -> bool {
        !self.generators.is_empty() || self.extractor.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_measured_short_work_runs_inline() {
        assert!(
            !runs_inline(None, 1),
            "an unmeasured model goes to the blocking pool"
        );
        assert!(runs_inline(Some(0.35e-3), 1));
        assert!(runs_inline(Some(0.35e-3), 2));
        assert!(
            !runs_inline(Some(0.35e-3), 3),
            "3 x 0.35 ms is over the 1 ms budget"
        );
        assert!(
            !runs_inline(Some(5e-3), 1),
            "a big model's single image is not inline"
        );
    }
}
