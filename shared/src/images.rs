//! 8-bit images as every FID path sees them: planar (C x H x W) bytes at their own size,
//! 1 (grey) or 3 (RGB) channels. Files are decoded here, once, for the trainer and the
//! server alike: header dimensions are checked against a pixel limit before decoding, grey
//! files stay one channel, colour files are RGB (alpha dropped). Model outputs become
//! images with the same rounding as saved PNGs.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

use crate::grid::to_u8;

/// Why bytes are not a usable image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// Not a PNG or JPEG.
    #[error("{label}: not a PNG or JPEG image")]
    Unsupported {
        /// File or archive entry.
        label: String,
    },
    /// A PNG/JPEG whose header or data cannot be read.
    #[error("{label}: {reason}")]
    Corrupt {
        /// File or archive entry.
        label: String,
        /// What failed.
        reason: String,
    },
    /// More pixels than the caller allows (checked from the header, before decoding).
    #[error("{label}: {width}x{height} image exceeds {max_pixels} pixels")]
    TooManyPixels {
        /// File or archive entry.
        label: String,
        /// Width from the header.
        width: u64,
        /// Height from the header.
        height: u64,
        /// The limit.
        max_pixels: u64,
    },
    /// Buffer and shape disagree, or a channel count other than 1 or 3.
    #[error(
        "image buffer of {got} bytes does not hold {channels}x{height}x{width} (channels must be 1 or 3)"
    )]
    Shape {
        /// Channels.
        channels: usize,
        /// Height.
        height: usize,
        /// Width.
        width: usize,
        /// Bytes given.
        got: usize,
    },
}

/// One image: planar bytes, `channels * height * width` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// Plane after plane, row-major within a plane.
    pub pixels: Vec<u8>,
}

impl Image {
    /// An image from planar bytes; checks the length and the channel count.
    pub fn planar(channels: usize, height: usize, width: usize, pixels: Vec<u8>) -> Result<Self, ImageError> {
        if !(channels == 1 || channels == 3) || pixels.len() != channels * height * width || pixels.is_empty()
        {
            return Err(ImageError::Shape {
                channels,
                height,
                width,
                got: pixels.len(),
            });
        }
        Ok(Image {
            channels,
            height,
            width,
            pixels,
        })
    }

    /// An image from interleaved (H x W x C) bytes.
    pub fn from_interleaved(
        channels: usize,
        height: usize,
        width: usize,
        hwc: &[u8],
    ) -> Result<Self, ImageError> {
        let mut pixels = Vec::with_capacity(hwc.len());
        for ch in 0..channels {
            pixels.extend(hwc.iter().skip(ch).step_by(channels.max(1)));
        }
        Self::planar(channels, height, width, pixels)
    }

    /// Interleaved (H x W x C) bytes, as PNG encoders take them.
    pub fn interleaved(&self) -> Vec<u8> {
        let plane = self.height * self.width;
        let mut out = vec![0u8; self.pixels.len()];
        for ch in 0..self.channels {
            for (p, &v) in self.pixels[ch * plane..(ch + 1) * plane].iter().enumerate() {
                out[p * self.channels + ch] = v;
            }
        }
        out
    }

    /// A model output (planar f32 in [-1, 1]) rounded to bytes exactly as a saved PNG is,
    /// so scoring generated arrays equals scoring the same images written as files.
    pub fn from_model_output(
        channels: usize,
        height: usize,
        width: usize,
        values: &[f32],
    ) -> Result<Self, ImageError> {
        Self::planar(
            channels,
            height,
            width,
            values.iter().map(|&v| to_u8(v)).collect(),
        )
    }

    /// Bytes per image of this shape.
    pub fn len(&self) -> usize {
        self.pixels.len()
    }

    /// True for an image without pixels (never built by this module).
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }
}

/// Splits a batch of model outputs `[n, C, H, W]` (f32 in [-1, 1]) into images.
pub fn from_model_batch(values: &[f32], shape: [usize; 4]) -> Result<Vec<Image>, ImageError> {
    let [n, c, h, w] = shape;
    let per = c * h * w;
    if values.len() != n * per {
        return Err(ImageError::Shape {
            channels: c,
            height: h,
            width: w,
            got: values.len(),
        });
    }
    values
        .chunks_exact(per.max(1))
        .map(|v| Image::from_model_output(c, h, w, v))
        .collect()
}

/// Reads a PNG/JPEG header only: `(width, height)`, checked against `max_pixels`.
pub fn probe(bytes: &[u8], label: &str, max_pixels: u64) -> Result<(u32, u32), ImageError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| corrupt(label, e))?;
    if !matches!(reader.format(), Some(ImageFormat::Png | ImageFormat::Jpeg)) {
        return Err(ImageError::Unsupported { label: label.into() });
    }
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| corrupt(label, format!("unreadable image header: {e}")))?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels == 0 {
        return Err(corrupt(label, "image has no pixels"));
    }
    if pixels > max_pixels {
        return Err(ImageError::TooManyPixels {
            label: label.into(),
            width: w.into(),
            height: h.into(),
            max_pixels,
        });
    }
    Ok((w, h))
}

/// Decodes a PNG/JPEG at its own size after checking its header against `max_pixels`.
pub fn decode(bytes: &[u8], label: &str, max_pixels: u64) -> Result<Image, ImageError> {
    let (w, h) = probe(bytes, label, max_pixels)?;
    let pixels = u64::from(w) * u64::from(h);
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| corrupt(label, e))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    // 16-bit RGBA is the widest layout PNG decodes to: 8 bytes a pixel, plus slack.
    limits.max_alloc = Some(pixels * 8 + (1 << 20));
    reader.limits(limits);
    // A decoder bug must not take the caller down: report it as a bad file.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.decode()))
        .map_err(|_| corrupt(label, "the image decoder failed on this file"))?
        .map_err(|e| corrupt(label, format!("cannot decode image: {e}")))?;
    let (width, height) = (decoded.width() as usize, decoded.height() as usize);
    if decoded.color().has_color() {
        Image::from_interleaved(3, height, width, decoded.to_rgb8().as_raw())
    } else {
        Image::planar(1, height, width, decoded.to_luma8().into_raw())
    }
}

/// Reads and decodes an image file (no pixel limit beyond memory: local files are trusted
/// as much as their owner).
pub fn read_file(path: &std::path::Path) -> Result<Image, ImageError> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| corrupt(&label, e))?;
    decode(&bytes, &label, u64::MAX)
}

fn corrupt(label: &str, reason: impl std::fmt::Display) -> ImageError {
    ImageError::Corrupt {
        label: label.into(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, c: usize) -> Vec<u8> {
        let px: Vec<u8> = (0..(w * h) as usize * c).map(|i| (i * 7 % 251) as u8).collect();
        crate::grid::encode_png(w, h, c, &px).expect("png")
    }

    #[test]
    fn decodes_grey_and_rgb_planar_at_native_size() {
        let g = decode(&png(5, 3, 1), "g", 100).expect("grey");
        assert_eq!((g.channels, g.height, g.width), (1, 3, 5));
        assert_eq!(g.pixels[..3], [0, 7, 14]);
        let c = decode(&png(2, 2, 3), "c", 100).expect("rgb");
        assert_eq!((c.channels, c.height, c.width), (3, 2, 2));
        // Interleaved R0 G0 B0 R1 ... become planes R0 R1 R2 R3, G0 ...
        assert_eq!(c.pixels[..4], [0, 21, 42, 63]);
        assert_eq!(c.pixels[4..8], [7, 28, 49, 70]);
        assert_eq!(
            Image::from_interleaved(3, 2, 2, &c.interleaved()).expect("back"),
            c
        );
    }

    #[test]
    fn limits_and_damage_are_typed_errors() {
        assert!(matches!(
            decode(&png(20, 20, 1), "big", 100),
            Err(ImageError::TooManyPixels {
                width: 20,
                height: 20,
                ..
            })
        ));
        let mut truncated = png(8, 8, 1);
        truncated.truncate(truncated.len() - 20);
        assert!(matches!(
            decode(&truncated, "t", 100),
            Err(ImageError::Corrupt { .. })
        ));
        assert!(matches!(
            decode(b"hello", "h", 100),
            Err(ImageError::Unsupported { .. })
        ));
        // A valid header (its CRC recomputed, so only the size can refuse it) claiming
        // 100000 x 100000 with no data behind it: refused from the header, never decoded.
        let mut bomb = png(1, 1, 1);
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            probe(&bomb, "bomb", u64::MAX).ok(),
            Some((100_000, 100_000)),
            "the header itself is valid"
        );
        assert!(matches!(
            decode(&bomb, "bomb", 1 << 22),
            Err(ImageError::TooManyPixels { width: 100_000, .. })
        ));
    }

    /// CRC-32 (IEEE, as PNG chunks use), bit by bit.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    #[test]
    fn model_outputs_round_like_png() {
        let imgs = from_model_batch(&[-1.0, 0.0, 1.0, 0.5], [2, 1, 1, 2]).expect("batch");
        assert_eq!(imgs[0].pixels, [0, 128]);
        assert_eq!(imgs[1].pixels, [255, 191]);
        assert!(from_model_batch(&[0.0; 3], [2, 1, 1, 2]).is_err());
        assert!(Image::planar(2, 1, 1, vec![0, 0]).is_err());
    }
}
