//! The model registry: scans `models/` once at startup. Generators and the feature
//! extractor get ONNX Runtime session pools; reference statistics are loaded from
//! `models/references/*.npz` and can be added while serving. A broken model is logged and
//! listed, never fatal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use pagan_shared::inception::{INCEPTION_DIR, InceptionManifest};
use pagan_shared::manifest::{CLASSES_METADATA, MANIFEST_FILE, ModelManifest};
use serde::Serialize;

use super::extractor::Extractor;
use super::generator::{Generator, check_inputs};
use super::reference::{Reference, ReferenceError, ReferenceInfo};
use super::runtime::SessionPool;
use crate::config::Config;
use crate::metrics::Metrics;

/// Folder (inside the models folder) holding reference statistics.
pub const REFERENCES_DIR: &str = "references";

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

pub use pagan_shared::manifest::is_valid_name;

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
    check_inputs(&manifest, &pool.inputs())?;
    if let Some(c) = &manifest.classes
        && let Some(problem) = pool.metadata(CLASSES_METADATA).and_then(|k| c.count_problem(&k))
    {
        return Err(problem);
    }
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

    /// Adds (or replaces) a reference in memory.
    pub fn insert_reference(&self, r: Reference) {
        let mut refs = self.references.write().unwrap_or_else(PoisonError::into_inner);
        refs.insert(r.name.clone(), Arc::new(r));
    }

    /// Validates the uploaded statistics file `upload` and stores it as reference `name`
    /// (file and memory). Of two uploads of one name, exactly one is stored; the other
    /// gets [`ReferenceError::Exists`].
    pub fn add_reference(&self, name: &str, upload: &Path) -> Result<ReferenceInfo, ReferenceError> {
        if !is_valid_name(name) {
            return Err(ReferenceError::BadName);
        }
        if self.reference(name).is_some() {
            return Err(ReferenceError::Exists(name.to_owned()));
        }
        let r = Reference::load(name, upload)?;
        std::fs::create_dir_all(&self.references_dir)?;
        // Copied beside the target first (a temp file of its own per upload), then linked
        // into place under the lock: readers never see a half-written file, and the name
        // check and the store are one step.
        let target = self.references_dir.join(format!("{name}.npz"));
        let tmp = pagan_shared::fs::temp_beside(&target);
        let copied = std::fs::copy(upload, &tmp);
        let mut refs = self.references.write().unwrap_or_else(PoisonError::into_inner);
        // A hard link never replaces an existing file, so a server sharing the folder (or a
        // file put there by hand) cannot be overwritten either.
        let stored = copied.and_then(|_| {
            if refs.contains_key(name) {
                Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists))
            } else {
                std::fs::hard_link(&tmp, &target)
            }
        });
        let _ = std::fs::remove_file(&tmp);
        if let Err(e) = stored {
            return Err(if e.kind() == std::io::ErrorKind::AlreadyExists {
                ReferenceError::Exists(name.to_owned())
            } else {
                e.into()
            });
        }
        let info = r.info();
        refs.insert(r.name.clone(), Arc::new(r));
        Ok(info)
    }

    /// True when a generator or the extractor is loaded (something can be served).
    pub fn ready(&self) -> bool {
        !self.generators.is_empty() || self.extractor.is_some()
    }
}
