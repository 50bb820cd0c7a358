//! A served generator: its manifest and ONNX Runtime sessions, run in bounded batches on
//! seeded latents (the trainer's: the same seed gives the same z everywhere).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ort::value::TensorElementType;
use pagan_shared::manifest::ModelManifest;

use super::classes::{self, ClassChoice, LabelError};
use super::runtime::{InputInfo, Provider, RuntimeError, SessionPool, run_generator};
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

    /// Images `[n, C, H, W]` in [-1, 1] for latents `z` (`n * latent` values) and, for a
    /// class-conditional model, `labels` (`n` labels, checked by [`Generator::labels`]; None
    /// for an unconditional one), run in batches of at most `batch` so memory and latency
    /// per run stay bounded.
    pub fn generate(
        &self,
        z: &[f32],
        labels: Option<&[i64]>,
        n: usize,
        batch: usize,
        metrics: &Metrics,
    ) -> Result<Vec<f32>, RuntimeError> {
        let latent = self.manifest.latent.size;
        let img = self.manifest.image;
        let per = img.channels * img.height * img.width;
        let labels_input = match (&self.manifest.classes, labels) {
            (Some(c), Some(l)) if l.len() == n => Some((c.input.name.as_str(), l)),
            (None, None) => None,
            _ => {
                return Err(RuntimeError::Labels(format!(
                    "model {}: labels must be given exactly for a class-conditional model, one per image",
                    self.name
                )));
            }
        };
        let rows = batch.max(1);
        let mut out = Vec::with_capacity(n * per);
        for (i, chunk) in z.chunks(rows * latent).enumerate() {
            let b = chunk.len() / latent;
            let chunk_labels = labels_input.map(|(name, l)| (name, &l[i * rows..i * rows + b]));
            let started = Instant::now();
            let (values, shape) = {
                let mut session = self.pool.get();
                run_generator(
                    &mut session,
                    &self.manifest.onnx.input.name,
                    chunk,
                    &[b as i64, latent as i64],
                    chunk_labels,
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

    /// `n` images `[n, C, H, W]` in [-1, 1] for `seed` and `labels` (as for
    /// [`Generator::generate`]): the latents are `uniform(seed, n)`, as `pagan-train sample
    /// --seed` draws them for an unconditional run.
    pub fn images(
        &self,
        n: usize,
        seed: u64,
        labels: Option<&[i64]>,
        batch: usize,
        metrics: &Metrics,
    ) -> Result<Vec<f32>, RuntimeError> {
        let z = pagan_shared::latent::uniform(seed, n, self.manifest.latent.size);
        self.generate(&z, labels, n, batch, metrics)
    }

    /// The labels of `n` images this model gets for `choice`: None for an unconditional
    /// model (which refuses any choice), one label per image for a conditional one.
    pub fn labels(&self, choice: &ClassChoice, n: usize) -> Result<Option<Vec<i64>>, LabelError> {
        classes::resolve(&self.name, self.manifest.classes.as_ref(), choice, n)
    }

    /// Image shape `[C, H, W]`.
    pub fn image_shape(&self) -> [usize; 3] {
        let i = self.manifest.image;
        [i.channels, i.height, i.width]
    }
}

/// Checks the graph's inputs against the manifest: the latent input (float32), and for a
/// class-conditional manifest the labels input (int64); no other inputs. An unconditional
/// manifest over a graph with a labels input, or a conditional one over a graph without,
/// is refused with the reason (the model would fail on every request).
pub fn check_inputs(manifest: &ModelManifest, inputs: &[InputInfo]) -> Result<(), String> {
    let listed = || {
        let all: Vec<String> = inputs
            .iter()
            .map(|i| match i.element {
                Some(t) => format!("{} ({t})", i.name),
                None => format!("{} (not a tensor)", i.name),
            })
            .collect();
        format!("[{}]", all.join(", "))
    };
    let mut wanted = vec![(
        manifest.onnx.input.name.as_str(),
        TensorElementType::Float32,
        "latent",
    )];
    if let Some(c) = &manifest.classes {
        wanted.push((c.input.name.as_str(), TensorElementType::Int64, "class labels"));
    }
    for (name, element, what) in &wanted {
        match inputs.iter().find(|i| i.name == *name) {
            None => {
                return Err(format!(
                    "the manifest's {what} input `{name}` ({element}) is not an input of {}, whose inputs are {}",
                    manifest.onnx.file,
                    listed()
                ));
            }
            Some(i) if i.element != Some(*element) => {
                return Err(format!(
                    "input `{name}` of {} must be {element} ({what}), the graph's inputs are {}",
                    manifest.onnx.file,
                    listed()
                ));
            }
            Some(_) => {}
        }
    }
    if inputs.len() != wanted.len() {
        let hint = if manifest.classes.is_none() {
            "; a class-conditional graph needs `classes` in its manifest"
        } else {
            ""
        };
        return Err(format!(
            "{} has inputs {}, but the manifest describes only {}{hint}",
            manifest.onnx.file,
            listed(),
            wanted
                .iter()
                .map(|(n, ..)| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(" and ")
        ));
    }
    Ok(())
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
