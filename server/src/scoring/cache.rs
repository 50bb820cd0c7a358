//! The feature cache: an uploaded set whose decoded pixels, extractor graph and resize
//! convention match an earlier one reuses that set's features instead of running the
//! Inception again. Keyed by a sha256 over all three (pixels in upload order, with each
//! image's shape); one file of f32 rows per set; bounded in bytes, least recently used
//! evicted first; survives restarts (the index is rebuilt from the folder, oldest first).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use pagan_shared::images::Image;
use pagan_shared::inception::ResizeMode;
use sha2::{Digest, Sha256};

use crate::metrics::Metrics;

const SUFFIX: &str = ".f32";

/// Incremental key of one scored set.
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    /// A key for images scored with the graph hashing to `graph_sha256` in `mode`.
    pub fn new(graph_sha256: &str, mode: ResizeMode) -> Self {
        let mut h = Sha256::new();
        h.update(graph_sha256.as_bytes());
        h.update([0]);
        h.update(mode.as_str().as_bytes());
        h.update([0]);
        KeyBuilder(h)
    }

    /// Adds one decoded image (its shape, then its pixels).
    pub fn add(&mut self, img: &Image) {
        for v in [img.channels, img.height, img.width] {
            self.0.update((v as u64).to_le_bytes());
        }
        self.0.update(&img.pixels);
    }

    /// The key (hex).
    pub fn finish(self) -> String {
        self.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// True for a key this cache makes: a sha256 in lower-case hex.
fn is_key(k: &str) -> bool {
    k.len() == 64
        && k.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

struct Entry {
    bytes: u64,
    used: u64,
}

struct Index {
    entries: HashMap<String, Entry>,
    bytes: u64,
    clock: u64,
    hits: u64,
    lookups: u64,
}

/// Cached feature rows on disk.
pub struct FeatureCache {
    dir: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
}

impl FeatureCache {
    /// A cache in `dir` holding at most `max_bytes`; existing entries are indexed (least
    /// recently modified first) and trimmed to the bound.
    pub fn open(dir: &Path, max_bytes: u64, metrics: &Metrics) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // Temp files of writers that died mid-write; nothing else in the folder is touched.
        pagan_shared::fs::remove_orphaned_temps(dir, pagan_shared::fs::Orphans::All);
        let mut found: Vec<(std::time::SystemTime, String, u64)> = Vec::new();
        for e in std::fs::read_dir(dir)?.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            // Only our entries: a sha256 in hex and the suffix.
            let Some(key) = name.strip_suffix(SUFFIX).filter(|k| is_key(k)) else {
                continue;
            };
            if let Ok(m) = e.metadata() {
                found.push((
                    m.modified().unwrap_or(std::time::UNIX_EPOCH),
                    key.to_owned(),
                    m.len(),
                ));
            }
        }
        found.sort();
        let mut index = Index {
            entries: HashMap::new(),
            bytes: 0,
            clock: 0,
            hits: 0,
            lookups: 0,
        };
        for (_, key, bytes) in found {
            index.clock += 1;
            index.bytes += bytes;
            index.entries.insert(
                key,
                Entry {
                    bytes,
                    used: index.clock,
                },
            );
        }
        let cache = FeatureCache {
            dir: dir.to_path_buf(),
            max_bytes,
            index: Mutex::new(index),
        };
        let mut idx = cache.lock();
        cache.evict(&mut idx, metrics);
        drop(idx);
        Ok(cache)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}{SUFFIX}"))
    }

    /// The rows cached under `key` (`dim` wide), counting the lookup. The file is opened
    /// under the lock (an eviction may unlink it, the open handle still reads it) and read
    /// after it; an entry whose file is unreadable is dropped.
    pub fn get(&self, key: &str, dim: usize, metrics: &Metrics) -> Option<Vec<f32>> {
        let file = {
            let mut idx = self.lock();
            idx.lookups += 1;
            idx.clock += 1;
            let clock = idx.clock;
            match idx.entries.get_mut(key) {
                Some(e) => {
                    e.used = clock;
                    std::fs::File::open(self.path(key)).ok()
                }
                None => None,
            }
        };
        let rows = file.and_then(|mut f| {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut b).ok()?;
            (b.len() % (4 * dim) == 0 && !b.is_empty()).then(|| {
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect::<Vec<f32>>()
            })
        });
        let mut idx = self.lock();
        if rows.is_some() {
            idx.hits += 1;
        } else if let Some(e) = idx.entries.remove(key) {
            idx.bytes -= e.bytes;
        }
        metrics
            .feature_cache_lookups
            .with_label_values(&[if rows.is_some() { "hit" } else { "miss" }])
            .inc();
        metrics
            .feature_cache_hit_ratio
            .set(idx.hits as f64 / idx.lookups.max(1) as f64);
        metrics.feature_cache_bytes.set(idx.bytes as i64);
        metrics.feature_cache_entries.set(idx.entries.len() as i64);
        rows
    }

    /// Stores `rows` under `key`: written to a temp file outside the lock, renamed into
    /// place under it (so an eviction never deletes a file its entry does not describe),
    /// then evicts down to the bound. A set larger than the whole bound is not stored.
    pub fn put(&self, key: &str, rows: &[f32], metrics: &Metrics) {
        let bytes = (rows.len() * 4) as u64;
        if bytes > self.max_bytes || !is_key(key) {
            return;
        }
        let target = self.path(key);
        let tmp = pagan_shared::fs::temp_beside(&target);
        let data: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
        if let Err(e) = std::fs::write(&tmp, &data) {
            tracing::warn!(error = %e, "feature cache: could not store a set");
            let _ = std::fs::remove_file(&tmp);
            return;
        }
        let mut idx = self.lock();
        if let Err(e) = std::fs::rename(&tmp, &target) {
            tracing::warn!(error = %e, "feature cache: could not store a set");
            let _ = std::fs::remove_file(&tmp);
            return;
        }
        idx.clock += 1;
        let used = idx.clock;
        if let Some(old) = idx.entries.insert(key.to_owned(), Entry { bytes, used }) {
            idx.bytes -= old.bytes;
        }
        idx.bytes += bytes;
        self.evict(&mut idx, metrics);
    }

    fn evict(&self, idx: &mut Index, metrics: &Metrics) {
        while idx.bytes > self.max_bytes {
            let Some(oldest) = idx
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = idx.entries.remove(&oldest) {
                idx.bytes -= e.bytes;
                let _ = std::fs::remove_file(self.path(&oldest));
            }
        }
        metrics.feature_cache_bytes.set(idx.bytes as i64);
        metrics.feature_cache_entries.set(idx.entries.len() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_sets_go_first_and_the_bound_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Metrics::new().expect("metrics");
        // Room for two sets of 2 rows x 4 features (32 bytes each).
        let rows = |v: f32| vec![v; 8];
        let k = |c: char| c.to_string().repeat(64);
        let (a, b, c) = (k('a'), k('b'), k('c'));
        // Not ours: left alone by open, never indexed.
        std::fs::write(dir.path().join("notes.txt"), b"keep").expect("write");
        std::fs::write(dir.path().join("short.f32"), [0u8; 32]).expect("write");
        let cache = FeatureCache::open(dir.path(), 64, &m).expect("open");
        cache.put(&a, &rows(1.0), &m);
        cache.put(&b, &rows(2.0), &m);
        assert_eq!(cache.get(&a, 4, &m), Some(rows(1.0)));
        cache.put(&c, &rows(3.0), &m); // evicts b: a was used more recently
        assert_eq!(cache.get(&b, 4, &m), None);
        assert_eq!(cache.get(&a, 4, &m), Some(rows(1.0)));
        assert_eq!(cache.get(&c, 4, &m), Some(rows(3.0)));
        assert_eq!(m.feature_cache_bytes.get(), 64);
        assert_eq!(m.feature_cache_entries.get(), 2);
        assert!((m.feature_cache_hit_ratio.get() - 0.75).abs() < 1e-12);
        // Too large for the whole cache: not stored.
        let big = k('d');
        cache.put(&big, &vec![0.0; 100], &m);
        assert_eq!(cache.get(&big, 4, &m), None);
        // A file gone behind the cache's back: a miss, and the entry is dropped.
        std::fs::remove_file(dir.path().join(format!("{c}{SUFFIX}"))).expect("rm");
        assert_eq!(cache.get(&c, 4, &m), None);
        assert_eq!(m.feature_cache_entries.get(), 1);
        // Reopened: the entries are found again; other files were left alone.
        let again = FeatureCache::open(dir.path(), 64, &m).expect("reopen");
        assert_eq!(again.get(&a, 4, &m), Some(rows(1.0)));
        assert!(dir.path().join("notes.txt").exists() && dir.path().join("short.f32").exists());
    }

    #[test]
    fn keys_depend_on_pixels_shape_graph_and_mode() {
        let img = |v: u8, w: usize| Image::planar(1, 1, w, vec![v; w]).expect("image");
        let key = |g: &str, m: ResizeMode, imgs: &[Image]| {
            let mut k = KeyBuilder::new(g, m);
            for i in imgs {
                k.add(i);
            }
            k.finish()
        };
        let base = key("g", ResizeMode::Asymmetric, &[img(1, 2)]);
        assert_eq!(base, key("g", ResizeMode::Asymmetric, &[img(1, 2)]));
        assert_ne!(base, key("g", ResizeMode::Clean, &[img(1, 2)]));
        assert_ne!(base, key("h", ResizeMode::Asymmetric, &[img(1, 2)]));
        assert_ne!(base, key("g", ResizeMode::Asymmetric, &[img(2, 2)]));
        assert_ne!(base, key("g", ResizeMode::Asymmetric, &[img(1, 1), img(1, 1)]));
    }
}
