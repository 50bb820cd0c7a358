//! Model outputs to bytes on the device, rounded exactly as saved PNGs are
//! (`pagan_shared::grid::to_u8`: `(v + 1) * 127.5`, rounded half away from zero, clamped
//! to 0..255, NaN to 0), so generated images reach the Inception without leaving the GPU
//! and score exactly as the same images written to files.

use tch::{Kind, Tensor};

/// Values in [-1, 1] (any float kind, any shape) -> the same shape as u8 on their device.
pub fn to_bytes(x: &Tensor) -> Tensor {
    let y = (x.to_kind(Kind::Float) + 1.0) * 127.5;
    // Clamping before rounding equals clamping after: rounding is monotone and the bounds
    // are integers. floor + (fraction >= 0.5) is round-half-away for y >= 0, and the
    // fraction y - floor(y) is exact in f32.
    let y = y.nan_to_num(0.0, None, None).clamp(0.0, 255.0);
    let t = y.floor();
    let up = (&y - &t).ge(0.5).to_kind(Kind::Float);
    (t + up).to_kind(Kind::Uint8)
}

#[cfg(test)]
mod tests {
    use pagan_shared::grid::to_u8;
    use tch::{Kind, Tensor};

    /// Every value class the host rounding handles: a dense sweep, exact half-way points,
    /// their float neighbours, out-of-range values and non-finite ones.
    #[test]
    fn equals_the_png_rounding_bit_for_bit() {
        let mut v: Vec<f32> = (0..=200_000).map(|i| -1.2 + 2.4 * i as f32 / 200_000.0).collect();
        for k in 0..=256 {
            // (v + 1) * 127.5 = k + 0.5 exactly where representable, and the floats around it.
            let half = (k as f32 + 0.5) / 127.5 - 1.0;
            v.extend([half, half.next_up(), half.next_down()]);
            v.push(k as f32 / 127.5 - 1.0);
        }
        v.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 1e30, -1e30]);
        let want: Vec<u8> = v.iter().map(|&x| to_u8(x)).collect();
        let got = Vec::<u8>::try_from(super::to_bytes(&Tensor::from_slice(&v))).unwrap_or_default();
        assert_eq!(got.len(), want.len());
        let bad: Vec<(f32, u8, u8)> = v
            .iter()
            .zip(got.iter().zip(&want))
            .filter(|(_, (g, w))| g != w)
            .map(|(&x, (&g, &w))| (x, g, w))
            .take(5)
            .collect();
        assert!(bad.is_empty(), "value, device, host: {bad:?}");
        // Half-way points really occur in the sweep (the rule is exercised).
        let halves = v.iter().filter(|&&x| ((x + 1.0) * 127.5).fract() == 0.5).count();
        assert!(halves > 100, "{halves} exact half-way points");
        assert_eq!(
            super::to_bytes(&Tensor::from_slice(&[0.0f64])).kind(),
            Kind::Uint8
        );
    }
}
