//! From images to Inception features: the one path every FID/KID number takes, in the
//! trainer (datasets, folders, generators) and the server (uploads, served models) alike.
//!
//! Images arrive one by one at their own size ([`Image`]); images of one size are batched,
//! grey is replicated to three channels, and the batch goes to a [`FeatureExtractor`] as
//! `[n, 3, h, w]` floats in 0..255 (the resize to 299 and the normalisation are the
//! extractor's, inside its graph). Nothing else touches the pixels. Features stream into
//! f64 statistics and are kept when KID needs them, or while the set is small enough for
//! the cheaper Gram form of the Frechet distance (see the `score` module).

use std::collections::BTreeMap;

use crate::error::StatsError;
use crate::images::Image;
use crate::stats::FeatureStats;

/// Bytes of decoded images held back while waiting for batch-mates of the same size;
/// above it the largest group runs early, so odd sizes cannot pile up.
const PENDING_BYTES: usize = 256 << 20;

/// An error of an extractor implementation (tch, ONNX Runtime), boxed.
pub type ExtractorError = Box<dyn std::error::Error + Send + Sync>;

/// Something that turns images into feature rows.
pub trait FeatureExtractor {
    /// Feature width (2048 for the FID Inception).
    fn dim(&self) -> usize;
    /// Features `[n, dim]` (row-major) of images `[n, 3, h, w]`, f32 values in 0..255.
    fn features(&mut self, images: &[f32], n: usize, h: usize, w: usize) -> Result<Vec<f32>, ExtractorError>;
}

/// Why a set of images could not be turned into features.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// The extractor failed.
    #[error("feature extractor: {0}")]
    Extractor(#[source] ExtractorError),
    /// The extractor returned the wrong number of values.
    #[error("feature extractor returned {got} values for {n} images of {dim} features")]
    Output {
        /// Images in the batch.
        n: usize,
        /// Feature width.
        dim: usize,
        /// Values returned.
        got: usize,
    },
    /// The features could not be accumulated (e.g. a non-finite value).
    #[error(transparent)]
    Stats(#[from] StatsError),
}

/// Which raw feature rows to keep besides the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepRows {
    /// Every row (KID needs them; `stats` stores them).
    All,
    /// Rows only while there are at most `dim` of them (the Gram form of FID); none after.
    WhileSmall,
}

/// Features of a whole image set.
#[derive(Debug, Clone)]
pub struct Features {
    /// Running mean/covariance sums (f64).
    pub stats: FeatureStats,
    /// Raw rows (`n x dim`): all with [`KeepRows::All`], else those of a set of at most
    /// `dim` images; `None` when the set outgrew that.
    pub rows: Option<Vec<f32>>,
}

impl Features {
    /// Images behind the features.
    pub fn n(&self) -> u64 {
        self.stats.n()
    }
}

/// Collects images, runs them through the extractor in same-size batches and accumulates
/// their features.
pub struct FeatureSink<'a> {
    extractor: &'a mut dyn FeatureExtractor,
    batch: usize,
    groups: BTreeMap<(usize, usize), Vec<Image>>,
    pending: usize,
    stats: FeatureStats,
    rows: Option<Vec<f32>>,
    keep: KeepRows,
    done: u64,
    progress: Option<Box<dyn FnMut(u64) + 'a>>,
}

impl<'a> FeatureSink<'a> {
    /// A sink running batches of at most `batch` images through `extractor`.
    pub fn new(
        extractor: &'a mut dyn FeatureExtractor,
        batch: usize,
        keep: KeepRows,
    ) -> Result<Self, FeatureError> {
        let stats = FeatureStats::new(extractor.dim())?;
        Ok(FeatureSink {
            extractor,
            batch: batch.max(1),
            groups: BTreeMap::new(),
            pending: 0,
            stats,
            rows: Some(Vec::new()),
            keep,
            done: 0,
            progress: None,
        })
    }

    /// Calls `f` with the number of images done after every extractor run.
    pub fn on_progress(mut self, f: impl FnMut(u64) + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Images run through the extractor so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Queues one image; runs its size group when it is a full batch.
    pub fn push(&mut self, img: Image) -> Result<(), FeatureError> {
        let key = (img.height, img.width);
        self.pending += img.len();
        let group = self.groups.entry(key).or_default();
        group.push(img);
        if group.len() >= self.batch {
            self.flush(key)?;
        }
        while self.pending > PENDING_BYTES {
            let largest = self
                .groups
                .iter()
                .max_by_key(|(_, g)| g.iter().map(Image::len).sum::<usize>())
                .map(|(k, _)| *k);
            match largest {
                Some(k) => self.flush(k)?,
                None => break,
            }
        }
        Ok(())
    }

    fn flush(&mut self, key: (usize, usize)) -> Result<(), FeatureError> {
        let Some(images) = self.groups.remove(&key).filter(|g| !g.is_empty()) else {
            return Ok(());
        };
        let (h, w) = key;
        let plane = h * w;
        let n = images.len();
        // [n, 3, h, w] in 0..255; a grey image's one plane is copied into all three.
        let mut input = vec![0f32; n * 3 * plane];
        for (img, out) in images.iter().zip(input.chunks_exact_mut(3 * plane)) {
            self.pending -= img.len();
            for ch in 0..3 {
                let src = if img.channels == 1 { 0 } else { ch };
                let dst = &mut out[ch * plane..(ch + 1) * plane];
                for (d, &px) in dst.iter_mut().zip(&img.pixels[src * plane..(src + 1) * plane]) {
                    *d = f32::from(px);
                }
            }
        }
        let dim = self.extractor.dim();
        let feats = self
            .extractor
            .features(&input, n, h, w)
            .map_err(FeatureError::Extractor)?;
        if feats.len() != n * dim {
            return Err(FeatureError::Output {
                n,
                dim,
                got: feats.len(),
            });
        }
        self.stats.add_rows(&feats, n)?;
        if let Some(all) = self.rows.as_mut() {
            all.extend_from_slice(&feats);
            if self.keep == KeepRows::WhileSmall && all.len() > dim * dim {
                // Past `dim` rows the general path is the cheaper one: stop keeping them.
                self.rows = None;
            }
        }
        self.done += n as u64;
        if let Some(p) = self.progress.as_mut() {
            p(self.done);
        }
        Ok(())
    }

    /// Runs every remaining group and returns the features.
    pub fn finish(mut self) -> Result<Features, FeatureError> {
        let keys: Vec<_> = self.groups.keys().copied().collect();
        for k in keys {
            self.flush(k)?;
        }
        Ok(Features {
            stats: self.stats,
            rows: self.rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Features = per-channel means of the input, to see exactly what the extractor got.
    struct ChannelMeans {
        calls: Vec<(usize, usize, usize)>,
    }

    impl FeatureExtractor for ChannelMeans {
        fn dim(&self) -> usize {
            3
        }
        fn features(&mut self, x: &[f32], n: usize, h: usize, w: usize) -> Result<Vec<f32>, ExtractorError> {
            self.calls.push((n, h, w));
            let plane = h * w;
            Ok(x.chunks_exact(plane)
                .map(|p| p.iter().sum::<f32>() / plane as f32)
                .take(n * 3)
                .collect())
        }
    }

    fn grey(v: u8, side: usize) -> Image {
        Image::planar(1, side, side, vec![v; side * side]).expect("image")
    }

    #[test]
    fn batches_by_size_replicates_grey_and_keeps_rows() {
        let mut x = ChannelMeans { calls: Vec::new() };
        let mut seen = Vec::new();
        let mut sink = FeatureSink::new(&mut x, 2, KeepRows::All)
            .expect("sink")
            .on_progress(|d| seen.push(d));
        sink.push(grey(10, 2)).expect("push");
        sink.push(Image::planar(3, 1, 1, vec![1, 2, 3]).expect("rgb"))
            .expect("push");
        sink.push(grey(20, 2)).expect("push");
        let f = sink.finish().expect("finish");
        assert_eq!(f.n(), 3);
        // The two 2x2 images ran as one batch (full), the 1x1 one at finish.
        assert_eq!(x.calls, vec![(2, 2, 2), (1, 1, 1)]);
        assert_eq!(seen, vec![2, 3]);
        let rows = f.rows.expect("rows");
        assert_eq!(rows, vec![10.0, 10.0, 10.0, 20.0, 20.0, 20.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn while_small_drops_rows_past_dim() {
        let mut x = ChannelMeans { calls: Vec::new() };
        let mut sink = FeatureSink::new(&mut x, 1, KeepRows::WhileSmall).expect("sink");
        for v in 0..3 {
            sink.push(grey(v, 1)).expect("push");
        }
        assert!(
            sink.finish().expect("finish").rows.is_some(),
            "3 rows of dim 3 are kept"
        );
        let mut sink = FeatureSink::new(&mut x, 1, KeepRows::WhileSmall).expect("sink");
        for v in 0..4 {
            sink.push(grey(v, 1)).expect("push");
        }
        assert!(sink.finish().expect("finish").rows.is_none());
    }

    struct Broken;
    impl FeatureExtractor for Broken {
        fn dim(&self) -> usize {
            4
        }
        fn features(&mut self, _: &[f32], n: usize, _: usize, _: usize) -> Result<Vec<f32>, ExtractorError> {
            Ok(vec![f32::NAN; n * 4])
        }
    }

    #[test]
    fn extractor_faults_are_errors() {
        let mut b = Broken;
        let mut sink = FeatureSink::new(&mut b, 1, KeepRows::All).expect("sink");
        assert!(matches!(
            sink.push(grey(1, 1)),
            Err(FeatureError::Stats(StatsError::NonFiniteFeature { .. }))
        ));
        let mut short = ChannelMeans { calls: Vec::new() };
        struct Short<'a>(&'a mut ChannelMeans);
        impl FeatureExtractor for Short<'_> {
            fn dim(&self) -> usize {
                5
            }
            fn features(
                &mut self,
                x: &[f32],
                n: usize,
                h: usize,
                w: usize,
            ) -> Result<Vec<f32>, ExtractorError> {
                self.0.features(x, n, h, w)
            }
        }
        let mut s = Short(&mut short);
        let mut sink = FeatureSink::new(&mut s, 1, KeepRows::All).expect("sink");
        assert!(matches!(
            sink.push(grey(1, 1)),
            Err(FeatureError::Output { got: 3, .. })
        ));
    }
}
