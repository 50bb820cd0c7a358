//! The preprocessing spec in tch: images in 0..255 (any H x W, 1 or 3 channels) -> bilinear
//! resize to 299 x 299 in the chosen convention -> `(x - 128) / 128`. The taps come from
//! `pagan_shared::inception::ResizeMode`, the same code as the float64 reference.

use pagan_shared::inception::{INPUT_SIDE, NORM_CENTER, ResizeMode};
use tch::{Device, Kind, Tensor};

/// Index and weight tensors of one axis: (first taps, second taps, weight of the second).
fn axis_taps(mode: ResizeMode, in_len: i64, device: Device) -> (Tensor, Tensor, Tensor) {
    let taps = mode.taps(in_len as usize, INPUT_SIDE);
    let i0: Vec<i64> = taps.iter().map(|t| t.0 as i64).collect();
    let i1: Vec<i64> = taps.iter().map(|t| t.1 as i64).collect();
    let w: Vec<f32> = taps.iter().map(|t| t.2 as f32).collect();
    (
        Tensor::from_slice(&i0).to_device(device),
        Tensor::from_slice(&i1).to_device(device),
        Tensor::from_slice(&w).to_device(device),
    )
}

/// [N, C, H, W] (C = 1 or 3, values 0..255, any numeric kind) -> [N, 3, 299, 299] f32,
/// resized and normalised, on the input's device.
pub fn preprocess(images: &Tensor, mode: ResizeMode) -> Tensor {
    let (n, c, h, w) = images.size4().expect("images are [N, C, H, W]");
    let x = images.to_kind(Kind::Float);
    let x = if c == 1 { x.expand([n, 3, h, w], false) } else { x };
    let dev = x.device();
    let s = INPUT_SIDE as i64;
    let (y0, y1, wy) = axis_taps(mode, h, dev);
    let wy = wy.view([1, 1, s, 1]);
    let rows: Tensor = x.index_select(2, &y0) * (-&wy + 1.0) + x.index_select(2, &y1) * &wy;
    let (x0, x1, wx) = axis_taps(mode, w, dev);
    let wx = wx.view([1, 1, 1, s]);
    let out: Tensor = rows.index_select(3, &x0) * (-&wx + 1.0) + rows.index_select(3, &x1) * &wx;
    (out - NORM_CENTER) / NORM_CENTER
}
