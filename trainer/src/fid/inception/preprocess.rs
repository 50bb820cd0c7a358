//! The preprocessing spec in tch: images in 0..255 (any H x W, 1 or 3 channels) -> resize
//! to 299 x 299 in the chosen convention (clipped for `clean`) -> `(x - 128) / 128`. The taps come from
//! `pagan_shared::inception::ResizeMode`, the same code as the float64 reference.
//!
//! The resize is two matrix products per image plane, `Ry X Rxᵀ`, with each row of `Ry`
//! and `Rx` holding one output pixel's tap weights: two batched GEMMs instead of four
//! gathers and their element-wise arithmetic, and a grey image is resized once, not three
//! times. The 1/128 of the normalisation is folded into `Ry` (a power of two: exact).

use pagan_shared::inception::{INPUT_SIDE, NORM_CENTER, ResizeMode};
use tch::{Device, Kind, Tensor};

/// One axis's resize as a [299, in_len] matrix of tap weights, times `scale`.
fn axis_matrix(mode: ResizeMode, in_len: i64, scale: f64, device: Device) -> Tensor {
    let n = in_len as usize;
    let mut m = vec![0f32; INPUT_SIDE * n];
    for (i, taps) in mode.axis_taps(n, INPUT_SIDE).into_iter().enumerate() {
        for (j, w) in taps {
            m[i * n + j] += (w * scale) as f32;
        }
    }
    Tensor::from_slice(&m)
        .view([INPUT_SIDE as i64, in_len])
        .to_device(device)
}

/// [N, C, H, W] (C = 1 or 3, values 0..255, any numeric kind) -> [N, 3, 299, 299] f32,
/// resized (clipped to 0..255 for `clean`) and normalised, on the input's device (a grey
/// image's plane is shared by the three channels).
pub fn preprocess(images: &Tensor, mode: ResizeMode) -> Tensor {
    let (n, c, h, w) = images.size4().expect("images are [N, C, H, W]");
    let dev = images.device();
    let s = INPUT_SIDE as i64;
    let x = images.to_kind(Kind::Float).reshape([n * c, h, w]);
    let out = if mode.clips() {
        // The clip comes between the resize and the normalisation: nothing to fold.
        let ry = axis_matrix(mode, h, 1.0, dev);
        let rx = axis_matrix(mode, w, 1.0, dev);
        ry.matmul(&x).matmul(&rx.tr()).clamp(0.0, 255.0) / NORM_CENTER - 1.0
    } else {
        let ry = axis_matrix(mode, h, 1.0 / NORM_CENTER, dev);
        let rx = axis_matrix(mode, w, 1.0, dev);
        ry.matmul(&x).matmul(&rx.tr()) - 1.0
    }
    .view([n, c, s, s]);
    if c == 1 {
        out.expand([n, 3, s, s], false)
    } else {
        out
    }
}
