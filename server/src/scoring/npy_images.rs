//! uint8 image arrays in `.npz` uploads: the `.npy` header is read and checked (dtype,
//! layout, shape, pixel and size limits) before any pixel is read.

use std::fs::File;
use std::io::{BufReader, Read};

use super::ScoreError;
use crate::config::Limits;

const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Header of a uint8 `.npy` image array: `[n, h, w]` or `[n, h, w, c]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NpyImages {
    /// Images.
    pub n: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// Channels (1 or 3).
    pub channels: usize,
}

fn header_value<'a>(h: &'a str, key: &str) -> Option<&'a str> {
    let at = h
        .find(&format!("'{key}'"))
        .or_else(|| h.find(&format!("\"{key}\"")))?;
    let rest = &h[at + key.len() + 2..];
    Some(rest.trim_start().strip_prefix(':')?.trim_start())
}

/// Reads the `.npy` header from `r`, leaving it at the first data byte.
pub fn read_header(r: &mut impl Read, label: &str, limits: &Limits) -> Result<NpyImages, ScoreError> {
    let bad = |reason: &str| ScoreError::BadNpz {
        label: label.to_owned(),
        reason: reason.to_owned(),
    };
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre).map_err(|_| bad("truncated .npy header"))?;
    if &pre[..6] != NPY_MAGIC {
        return Err(bad("member is not an .npy array"));
    }
    let hlen = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(|_| bad("truncated .npy header"))?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(|_| bad("truncated .npy header"))?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(bad(&format!("unsupported .npy version {v}"))),
    };
    if hlen > 1 << 16 {
        return Err(bad("oversized .npy header"));
    }
    let mut h = vec![0u8; hlen];
    r.read_exact(&mut h).map_err(|_| bad("truncated .npy header"))?;
    let h = String::from_utf8(h).map_err(|_| bad("non-UTF-8 .npy header"))?;
    let descr = header_value(&h, "descr").ok_or_else(|| bad("no dtype in .npy header"))?;
    if !(descr.starts_with("'|u1'") || descr.starts_with("'<u1'") || descr.starts_with("'u1'")) {
        return Err(ScoreError::BadDtype {
            label: label.to_owned(),
            dtype: descr.split(',').next().unwrap_or("?").to_owned(),
        });
    }
    let fortran = header_value(&h, "fortran_order").ok_or_else(|| bad("no fortran_order in header"))?;
    if fortran.starts_with("True") {
        return Err(ScoreError::FortranOrder(label.to_owned()));
    }
    let shape_s = header_value(&h, "shape").ok_or_else(|| bad("no shape in .npy header"))?;
    let inner = shape_s
        .strip_prefix('(')
        .and_then(|s| s.find(')').map(|e| &s[..e]))
        .ok_or_else(|| bad("malformed shape"))?;
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad("malformed shape")))
        .collect::<Result<_, _>>()?;
    let bad_shape = |reason: String| ScoreError::BadShape {
        label: label.to_owned(),
        reason,
    };
    let (n, height, width, channels) = match shape[..] {
        [n, h, w] => (n, h, w, 1),
        [n, h, w, c] if c == 1 || c == 3 => (n, h, w, c),
        _ => {
            return Err(bad_shape(format!(
                "images must be [N, H, W] or [N, H, W, C] with C = 1 or 3, got {shape:?}"
            )));
        }
    };
    if height == 0 || width == 0 {
        return Err(bad_shape("images have no pixels".into()));
    }
    let pixels = (height as u64).saturating_mul(width as u64);
    if pixels > limits.max_pixels {
        return Err(pagan_shared::images::ImageError::TooManyPixels {
            label: label.to_owned(),
            width: width as u64,
            height: height as u64,
            max_pixels: limits.max_pixels,
        }
        .into());
    }
    let total = pixels.saturating_mul(channels as u64).saturating_mul(n as u64);
    if total > limits.max_archive_bytes {
        return Err(ScoreError::ArchiveTooLarge {
            label: label.to_owned(),
            limit: limits.max_archive_bytes,
        });
    }
    Ok(NpyImages {
        n,
        height,
        width,
        channels,
    })
}

/// The member holding the images: `images.npy`, or the only member.
pub fn images_member(zip: &mut zip::ZipArchive<BufReader<File>>, label: &str) -> Result<usize, ScoreError> {
    if let Some(i) = zip
        .index_for_name("images.npy")
        .or_else(|| zip.index_for_name("images"))
        // ADM (guided-diffusion) sample and reference batches keep their images in `arr_0`.
        .or_else(|| zip.index_for_name("arr_0.npy"))
    {
        return Ok(i);
    }
    if zip.len() == 1 {
        return Ok(0);
    }
    Err(ScoreError::NpzMember(label.to_owned()))
}
