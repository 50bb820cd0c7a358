//! Generation: seeded latents through a generator, encoded as PNG, grid, zip or npy.
//! The same (model, n, seed, format) always yields the same bytes.

use std::io::{Cursor, Write};

use pagan_shared::grid::{encode_png, make_grid, to_u8};
use serde::Deserialize;

use crate::errors::ApiError;
use crate::metrics::Metrics;
use crate::registry::Generator;

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

/// Body of a generate request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    /// Images to generate (default 1).
    #[serde(default = "one")]
    pub n: usize,
    /// Latent seed (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Output encoding (default png).
    #[serde(default)]
    pub format: Format,
}

fn one() -> usize {
    1
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

/// Checks `n` against 1..=max and the format's own rule (png is one image).
pub fn check_request(req: &GenerateRequest, max_n: usize) -> Result<(), ApiError> {
    if req.n == 0 {
        return Err(ApiError::bad("bad_n", "n must be at least 1"));
    }
    if req.n > max_n {
        return Err(ApiError::too_large(
            "n_too_large",
            format!("n = {} exceeds the limit of {max_n} (--max-generate-n)", req.n),
        ));
    }
    if req.format == Format::Png && req.n != 1 {
        return Err(ApiError::bad(
            "bad_n",
            "format png returns one image: use n = 1, or format grid, zip or npy",
        ));
    }
    Ok(())
}

/// Images `[n, C, H, W]` in [-1, 1] for `seed`: the latents are exactly those of
/// `pagan-train sample --seed`.
pub fn images(
    g: &Generator,
    n: usize,
    seed: u64,
    batch: usize,
    metrics: &Metrics,
) -> Result<Vec<f32>, ApiError> {
    let z = pagan_shared::latent::uniform(seed, n, g.manifest.latent.size);
    let out = g
        .generate(&z, n, batch, metrics)
        .map_err(|e| ApiError::internal(format!("model {}: {e}", g.name)))?;
    metrics
        .images_generated
        .with_label_values(&[g.name.as_str()])
        .inc_by(n as u64);
    Ok(out)
}

/// HWC bytes of image `i` of an NCHW batch in [-1, 1].
pub fn image_u8(data: &[f32], i: usize, c: usize, h: usize, w: usize) -> Vec<u8> {
    let plane = h * w;
    let img = &data[i * c * plane..(i + 1) * c * plane];
    let mut out = vec![0u8; c * plane];
    for ch in 0..c {
        for (p, v) in img[ch * plane..(ch + 1) * plane].iter().enumerate() {
            out[p * c + ch] = to_u8(*v);
        }
    }
    out
}

fn png_err(e: pagan_shared::grid::GridError) -> ApiError {
    ApiError::internal(format!("encoding PNG: {e}"))
}

/// Encodes generated images in `format`.
pub fn encode(g: &Generator, data: &[f32], n: usize, seed: u64, format: Format) -> Result<Encoded, ApiError> {
    let spec = g.manifest.image;
    let (c, h, w) = (spec.channels, spec.height, spec.width);
    let stem = format!("{}-seed{seed}-n{n}", g.name);
    Ok(match format {
        Format::Png => Encoded {
            content_type: "image/png",
            filename: format!("{stem}.png"),
            bytes: encode_png(w as u32, h as u32, c, &image_u8(data, 0, c, h, w)).map_err(png_err)?,
        },
        Format::Grid => {
            let cols = (n as f64).sqrt().ceil() as usize;
            let (gw, gh, gc, px) = make_grid(data, [n, c, h, w], cols).map_err(png_err)?;
            Encoded {
                content_type: "image/png",
                filename: format!("{stem}-grid.png"),
                bytes: encode_png(gw, gh, gc, &px).map_err(png_err)?,
            }
        }
        Format::Zip => {
            let zip_err = |e: zip::result::ZipError| ApiError::internal(format!("writing zip: {e}"));
            let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
            // Stored (PNG is already compressed) with a fixed timestamp: same seed, same bytes.
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .last_modified_time(zip::DateTime::default());
            let digits = (n.max(1) - 1).to_string().len().max(4);
            for i in 0..n {
                let png = encode_png(w as u32, h as u32, c, &image_u8(data, i, c, h, w)).map_err(png_err)?;
                zw.start_file(format!("{i:0digits$}.png"), opts)
                    .map_err(zip_err)?;
                zw.write_all(&png)
                    .map_err(|e| ApiError::internal(format!("writing zip: {e}")))?;
            }
            Encoded {
                content_type: "application/zip",
                filename: format!("{stem}.zip"),
                bytes: zw.finish().map_err(zip_err)?.into_inner(),
            }
        }
        Format::Npy => Encoded {
            content_type: "application/octet-stream",
            filename: format!("{stem}.npy"),
            bytes: pagan_shared::npy::to_bytes(data, &[n, c, h, w]),
        },
    })
}
