//! Encodings of generated images: one PNG, a PNG grid, a zip of PNGs, or float32 `.npy`.
//! The same (model, n, seed, format) always yields the same bytes.

use std::io::{Cursor, Write};

use pagan_shared::grid::{encode_png, make_grid};
use pagan_shared::images;
use serde::Deserialize;

use super::generator::Generator;

/// Output encodings of `POST /v1/models/{name}/generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One PNG image (n must be 1).
    #[default]
    Png,
    /// One PNG grid of all n images.
    Grid,
    /// A zip of n PNGs.
    Zip,
    /// float32 `[n, C, H, W]` in [-1, 1] as `.npy`.
    Npy,
}

/// Encoded output and its content type.
pub struct Encoded {
    /// MIME type.
    pub content_type: &'static str,
    /// Suggested file name for Content-Disposition.
    pub filename: String,
    /// Bytes.
    pub bytes: Vec<u8>,
}

/// Why encoding failed (always a fault on our side: the inputs come from the model).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// PNG or grid encoding.
    #[error("encoding PNG: {0}")]
    Png(#[from] pagan_shared::grid::GridError),
    /// The model output does not match the manifest's image shape.
    #[error("model output: {0}")]
    Image(#[from] images::ImageError),
    /// Writing the zip.
    #[error("writing zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// Writing into memory.
    #[error("writing zip: {0}")]
    Io(#[from] std::io::Error),
}

/// HWC bytes of each image of an NCHW batch in [-1, 1], rounded as PNGs are.
fn interleaved(data: &[f32], shape: [usize; 4]) -> Result<Vec<Vec<u8>>, EncodeError> {
    Ok(images::from_model_batch(data, shape)?
        .iter()
        .map(images::Image::interleaved)
        .collect())
}

/// Encodes generated images in `format`.
pub fn encode(
    g: &Generator,
    data: &[f32],
    n: usize,
    seed: u64,
    format: Format,
) -> Result<Encoded, EncodeError> {
    let [c, h, w] = g.image_shape();
    let stem = format!("{}-seed{seed}-n{n}", g.name);
    Ok(match format {
        Format::Png => {
            let first = interleaved(&data[..(c * h * w).min(data.len())], [1, c, h, w])?;
            Encoded {
                content_type: "image/png",
                filename: format!("{stem}.png"),
                bytes: encode_png(w as u32, h as u32, c, &first[0])?,
            }
        }
        Format::Grid => {
            let cols = (n as f64).sqrt().ceil() as usize;
            let (gw, gh, gc, px) = make_grid(data, [n, c, h, w], cols)?;
            Encoded {
                content_type: "image/png",
                filename: format!("{stem}-grid.png"),
                bytes: encode_png(gw, gh, gc, &px)?,
            }
        }
        Format::Zip => {
            let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
            // Stored (PNG is already compressed) with a fixed timestamp: same seed, same bytes.
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .last_modified_time(zip::DateTime::default());
            let digits = (n.max(1) - 1).to_string().len().max(4);
            for (i, px) in interleaved(data, [n, c, h, w])?.iter().enumerate() {
                let png = encode_png(w as u32, h as u32, c, px)?;
                zw.start_file(format!("{i:0digits$}.png"), opts)?;
                zw.write_all(&png)?;
            }
            Encoded {
                content_type: "application/zip",
                filename: format!("{stem}.zip"),
                bytes: zw.finish()?.into_inner(),
            }
        }
        Format::Npy => Encoded {
            content_type: "application/octet-stream",
            filename: format!("{stem}.npy"),
            bytes: pagan_shared::npy::to_bytes(data, &[n, c, h, w]),
        },
    })
}
