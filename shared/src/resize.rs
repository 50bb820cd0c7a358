//! The resize to 299x299 done before a feature extractor, for conventions its graph does
//! not hold: `clean` (PIL bicubic, never in the ONNX graph) and the other linear
//! convention than the graph's. The graph then resizes 299 -> 299, which both linear
//! conventions do exactly (every output pixel reads one input pixel with weight 1), so one
//! exported extractor serves references of every convention.

use crate::features::{ExtractorError, FeatureExtractor};
use crate::inception::{INPUT_SIDE, ResizeMode};

/// Images `[n, c, h, w]` in 0..255 -> `[n, c, 299, 299]` in `mode` (clipped for `clean`):
/// rows first, then columns, each output pixel a weighted sum of its taps (f32 sums of
/// f64-computed weights, as PIL's float path keeps one f32 image between the passes).
pub fn resize_to_input(images: &[f32], planes: usize, h: usize, w: usize, mode: ResizeMode) -> Vec<f32> {
    let s = INPUT_SIDE;
    let tx = mode.axis_taps(w, s);
    let ty = mode.axis_taps(h, s);
    let mut out = vec![0f32; planes * s * s];
    let mut tmp = vec![0f32; h * s];
    let mut acc = vec![0f64; s];
    for (src, dst) in images.chunks_exact(h * w).zip(out.chunks_exact_mut(s * s)) {
        for (row, trow) in src.chunks_exact(w).zip(tmp.chunks_exact_mut(s)) {
            for (t, taps) in trow.iter_mut().zip(&tx) {
                *t = taps.iter().map(|&(x, wx)| row[x] as f64 * wx).sum::<f64>() as f32;
            }
        }
        for (oy, taps) in ty.iter().enumerate() {
            // Summed in f64 and rounded once, as PIL's float path does.
            acc.fill(0.0);
            for &(y, wy) in taps {
                for (a, &t) in acc.iter_mut().zip(&tmp[y * s..(y + 1) * s]) {
                    *a += t as f64 * wy;
                }
            }
            for (o, &a) in dst[oy * s..(oy + 1) * s].iter_mut().zip(&acc) {
                *o = if mode.clips() {
                    a.clamp(0.0, 255.0) as f32
                } else {
                    a as f32
                };
            }
        }
    }
    out
}

/// An extractor whose graph resizes with `graph`, used for images to be resized with
/// `mode`: when they differ the images are resized here first.
pub struct Resized<'a> {
    inner: &'a mut dyn FeatureExtractor,
    graph: ResizeMode,
    mode: ResizeMode,
}

impl<'a> Resized<'a> {
    /// `inner` (whose graph resizes with `graph`) used for `mode`.
    pub fn new(inner: &'a mut dyn FeatureExtractor, graph: ResizeMode, mode: ResizeMode) -> Self {
        Resized { inner, graph, mode }
    }

    /// True when images are resized here, before the graph.
    pub fn resizes_before_graph(&self) -> bool {
        self.mode != self.graph
    }
}

impl FeatureExtractor for Resized<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn features(&mut self, images: &[f32], n: usize, h: usize, w: usize) -> Result<Vec<f32>, ExtractorError> {
        if !self.resizes_before_graph() {
            return self.inner.features(images, n, h, w);
        }
        let resized = resize_to_input(images, n * 3, h, w, self.mode);
        self.inner.features(&resized, n, INPUT_SIDE, INPUT_SIDE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inception::{NORM_CENTER, preprocess_reference};

    #[test]
    fn matches_the_float64_reference_in_every_mode() {
        let (h, w) = (13, 17);
        let mut r = crate::rng::SplitMix64::new(5);
        let img: Vec<f32> = (0..3 * h * w).map(|_| (r.next_f32() * 255.0).round()).collect();
        let img64: Vec<f64> = img.iter().map(|&v| v as f64).collect();
        for mode in ResizeMode::ALL {
            let ours = resize_to_input(&img, 3, h, w, mode);
            let reference = preprocess_reference(&img64, 3, h, w, mode);
            let worst = ours
                .iter()
                .zip(&reference)
                .map(|(&o, &r)| (o as f64 - (r * NORM_CENTER + NORM_CENTER)).abs())
                .fold(0.0, f64::max);
            assert!(worst < 1e-3, "{mode}: max |diff| {worst}");
        }
    }

    #[test]
    fn a_299_image_passes_the_linear_modes_unchanged() {
        // What makes resizing before a linear graph exact: its 299 -> 299 is the identity.
        for mode in [ResizeMode::Asymmetric, ResizeMode::HalfPixel, ResizeMode::Clean] {
            let taps = mode.axis_taps(INPUT_SIDE, INPUT_SIDE);
            assert!(
                taps.iter().enumerate().all(|(d, t)| t == &vec![(d, 1.0)]),
                "{mode}"
            );
        }
    }
}
