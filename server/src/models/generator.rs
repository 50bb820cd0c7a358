//! A served generator: its manifest and ONNX Runtime sessions, run in bounded batches on
//! seeded latents (the trainer's: the same seed gives the same z everywhere).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use pagan_shared::manifest::ModelManifest;

use super::runtime::{Provider, RuntimeError, SessionPool, run_f32};
use crate::metrics::Metrics;

/// A loaded generator: its manifest and sessions.
pub struct Generator {
    /// Name it is served under (its folder's name).
    pub name: String,
    /// Its manifest.
    pub manifest: ModelManifest,
    /// Provider its sessions run on.
    pub provider: Provider,
    pub(super) pool: SessionPool,
    /// Seconds per image of the latest run (f64 bits; 0 = never run yet).
    pub(super) per_image_seconds: AtomicU64,
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
        metrics
            .images_generated
            .with_label_values(&[self.name.as_str()])
            .inc_by(n as u64);
        Ok(out)
    }

    /// `n` images `[n, C, H, W]` in [-1, 1] for `seed`: the latents are exactly those of
    /// `pagan-train sample --seed`.
    pub fn images(
        &self,
        n: usize,
        seed: u64,
        batch: usize,
        metrics: &Metrics,
    ) -> Result<Vec<f32>, RuntimeError> {
        let z = pagan_shared::latent::uniform(seed, n, self.manifest.latent.size);
        self.generate(&z, n, batch, metrics)
    }

    /// Image shape `[C, H, W]`.
    pub fn image_shape(&self) -> [usize; 3] {
        let i = self.manifest.image;
        [i.channels, i.height, i.width]
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
