//! Conversions between model outputs (`f32` in [-1, 1], NCHW) and 8-bit images, and grids.

use std::path::Path;

use thiserror::Error;

/// Errors from image conversion and grid writing.
#[derive(Debug, Error)]
pub enum GridError {
    /// The buffer length does not match the declared shape.
    #[error("image buffer holds {got} values, shape {shape:?} needs {want}")]
    Shape {
        /// Declared shape [N, C, H, W].
        shape: [usize; 4],
        /// Values the shape needs.
        want: usize,
        /// Values given.
        got: usize,
    },
    /// Only 1 (grey) and 3 (RGB) channels are images.
    #[error("{0} channels cannot be shown as an image (need 1 or 3)")]
    Channels(usize),
    /// Encoding or writing the PNG failed.
    #[error("writing {path}: {source}")]
    Write {
        /// Destination file.
        path: String,
        /// Underlying error.
        source: image::ImageError,
    },
    /// Creating the parent folder failed.
    #[error("creating folder for {path}: {source}")]
    Io {
        /// Destination file.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// Maps a model value in [-1, 1] to a byte, rounding to nearest (the inverse of `x/127.5 - 1`).
pub fn to_u8(v: f32) -> u8 {
    ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
}

/// Maps a byte to the model's [-1, 1] range.
pub fn from_u8(b: u8) -> f32 {
    b as f32 / 127.5 - 1.0
}

/// Arranges `n` NCHW images in [-1, 1] into one RGB-or-grey grid with `cols` columns and a
/// 2-pixel border; returns (width, height, channels, bytes in HWC order).
pub fn make_grid(
    data: &[f32],
    shape: [usize; 4],
    cols: usize,
) -> Result<(u32, u32, usize, Vec<u8>), GridError> {
    let [n, c, h, w] = shape;
    let want = n * c * h * w;
    if data.len() != want {
        return Err(GridError::Shape {
            shape,
            want,
            got: data.len(),
        });
    }
    if c != 1 && c != 3 {
        return Err(GridError::Channels(c));
    }
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols).max(1);
    let pad = 2;
    let gw = cols * (w + pad) + pad;
    let gh = rows * (h + pad) + pad;
    let mut out = vec![0u8; gw * gh * c];
    for i in 0..n {
        let (r, col) = (i / cols, i % cols);
        let (y0, x0) = (pad + r * (h + pad), pad + col * (w + pad));
        for ch in 0..c {
            let plane = &data[(i * c + ch) * h * w..(i * c + ch + 1) * h * w];
            for y in 0..h {
                for x in 0..w {
                    out[((y0 + y) * gw + x0 + x) * c + ch] = to_u8(plane[y * w + x]);
                }
            }
        }
    }
    Ok((gw as u32, gh as u32, c, out))
}

/// Encodes HWC bytes with 1 or 3 channels as PNG bytes.
pub fn encode_png(width: u32, height: u32, channels: usize, bytes: &[u8]) -> Result<Vec<u8>, GridError> {
    use image::ImageEncoder;
    let color = match channels {
        1 => image::ExtendedColorType::L8,
        3 => image::ExtendedColorType::Rgb8,
        c => return Err(GridError::Channels(c)),
    };
    let mut buf = Vec::new();
    image::codecs::png::PngEncoder::new(&mut buf)
        .write_image(bytes, width, height, color)
        .map_err(|source| GridError::Write {
            path: "<memory>".into(),
            source,
        })?;
    Ok(buf)
}

/// Writes a grid of NCHW images in [-1, 1] as a PNG, atomically (temp file + rename).
pub fn save_grid(path: &Path, data: &[f32], shape: [usize; 4], cols: usize) -> Result<(), GridError> {
    let (w, h, c, bytes) = make_grid(data, shape, cols)?;
    let png = encode_png(w, h, c, &bytes)?;
    crate::fs::write_atomic(path, &png).map_err(|source| GridError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_mapping_roundtrips_every_value() {
        for b in 0..=255u8 {
            assert_eq!(to_u8(from_u8(b)), b);
        }
        assert_eq!(to_u8(-3.0), 0);
        assert_eq!(to_u8(3.0), 255);
    }

    #[test]
    fn grid_places_images_in_row_major_cells() {
        // Two 1x2x2 grey images: first all -1 (0), second all +1 (255).
        let data = [-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0];
        let (w, h, c, px) = make_grid(&data, [2, 1, 2, 2], 2).expect("grid");
        assert_eq!((w, h, c), (10, 6, 1));
        assert_eq!(px[2 * 10 + 2], 0);
        assert_eq!(px[2 * 10 + 6], 255);
        assert_eq!(px[0], 0, "border is black");
    }

    #[test]
    fn wrong_shape_and_channels_are_errors() {
        assert!(matches!(
            make_grid(&[0.0; 3], [1, 1, 2, 2], 1),
            Err(GridError::Shape { .. })
        ));
        assert!(matches!(
            make_grid(&[0.0; 8], [1, 2, 2, 2], 1),
            Err(GridError::Channels(2))
        ));
    }
}
