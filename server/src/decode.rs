//! Turning uploaded files into images: PNG/JPEG files, zip and tar archives of them, and
//! `.npz` arrays of uint8 images. Every limit is checked before the expensive step it
//! guards: image dimensions from the header before decoding, entry counts and sizes
//! before reading, array shapes before allocating.

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::{Component, Path};

use image::{ImageFormat, ImageReader, Limits};

use crate::config::Limits as ServiceLimits;
use crate::errors::ApiError;
use crate::upload::{Part, Upload};

/// One decoded image: `height x width x channels` bytes, channels 1 (grey) or 3 (RGB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// 1 or 3.
    pub channels: usize,
    /// HWC bytes.
    pub pixels: Vec<u8>,
}

/// What an uploaded file holds, sniffed from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A PNG or JPEG image.
    Image,
    /// A zip archive of images.
    Zip,
    /// A numpy `.npz` holding a uint8 image array.
    Npz,
    /// A tar archive of images.
    Tar,
}

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_MAGIC: &[u8] = b"\xff\xd8\xff";
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const ZIP_EMPTY_MAGIC: &[u8] = b"PK\x05\x06";
const NPY_MAGIC: &[u8] = b"\x93NUMPY";

fn open(part: &Part) -> Result<File, ApiError> {
    File::open(&part.path).map_err(|e| ApiError::internal(format!("reopening upload: {e}")))
}

/// Sniffs `part`: magic bytes first; a zip is an `.npz` when its name or type says so or
/// every member is a `.npy` array.
pub fn sniff(part: &Part) -> Result<Kind, ApiError> {
    let mut head = [0u8; 512];
    let mut file = open(part)?;
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) => return Err(ApiError::internal(format!("reading upload: {e}"))),
        }
    }
    let head = &head[..got];
    if head.starts_with(PNG_MAGIC) || head.starts_with(JPEG_MAGIC) {
        return Ok(Kind::Image);
    }
    if head.starts_with(ZIP_MAGIC) || head.starts_with(ZIP_EMPTY_MAGIC) {
        let named_npz = part
            .filename
            .as_deref()
            .is_some_and(|n| n.to_ascii_lowercase().ends_with(".npz"))
            || part.content_type.as_deref().is_some_and(|c| c.contains("npz"));
        if named_npz {
            return Ok(Kind::Npz);
        }
        let zip = zip::ZipArchive::new(BufReader::new(open(part)?)).map_err(|e| corrupt_archive(part, e))?;
        let all_npy = !zip.is_empty() && zip.file_names().all(|n| n.is_ok_and(|n| n.ends_with(".npy")));
        return Ok(if all_npy { Kind::Npz } else { Kind::Zip });
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Ok(Kind::Tar);
    }
    Err(ApiError::UnsupportedMedia(format!(
        "{}: not a PNG, JPEG, zip, tar or .npz file",
        part.label()
    )))
}

fn corrupt_archive(part: &Part, e: impl std::fmt::Display) -> ApiError {
    ApiError::bad("corrupt_archive", format!("{}: {e}", part.label()))
}

fn too_many_images(limit: usize) -> ApiError {
    ApiError::too_large(
        "too_many_images",
        format!("more than {limit} images in one request (--max-images)"),
    )
}

fn too_many_entries(label: &str, limit: usize) -> ApiError {
    ApiError::too_large(
        "too_many_entries",
        format!("{label}: more than {limit} archive entries (--max-archive-entries)"),
    )
}

fn archive_too_large(label: &str, limit: u64) -> ApiError {
    ApiError::too_large(
        "archive_too_large",
        format!("{label}: more than {limit} uncompressed bytes (--max-archive-bytes)"),
    )
}

/// Rejects absolute paths and `..` anywhere: archive names must stay inside the archive.
fn check_entry_path(label: &str, name: &str) -> Result<(), ApiError> {
    let path = Path::new(name);
    let unsafe_path = name.contains('\\')
        || path.components().any(|c| {
            matches!(
                c,
                Component::ParentDir | Component::RootDir | Component::Prefix(_)
            )
        });
    if unsafe_path {
        return Err(ApiError::bad(
            "unsafe_path",
            format!("{label}: entry {name:?} escapes the archive (absolute path or `..`)"),
        ));
    }
    Ok(())
}

/// Metadata entries archivers add (macOS resource forks, dotfiles) are skipped.
fn is_junk(name: &str) -> bool {
    name.starts_with("__MACOSX/")
        || Path::new(name)
            .file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with('.'))
}

/// Reads a PNG/JPEG header only: its dimensions, checked against `max_pixels`.
pub fn probe_image(bytes: &[u8], label: &str, max_pixels: u64) -> Result<(u32, u32), ApiError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ApiError::internal(format!("{label}: {e}")))?;
    if !matches!(reader.format(), Some(ImageFormat::Png | ImageFormat::Jpeg)) {
        return Err(ApiError::UnsupportedMedia(format!(
            "{label}: not a PNG or JPEG image"
        )));
    }
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| ApiError::bad("corrupt_image", format!("{label}: unreadable image header: {e}")))?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels == 0 {
        return Err(ApiError::bad(
            "corrupt_image",
            format!("{label}: image has no pixels"),
        ));
    }
    if pixels > max_pixels {
        return Err(ApiError::too_large(
            "too_many_pixels",
            format!("{label}: {w}x{h} image exceeds {max_pixels} pixels (--max-pixels)"),
        ));
    }
    Ok((w, h))
}

/// Decodes one PNG/JPEG after checking its header dimensions against `max_pixels`.
pub fn decode_image(bytes: &[u8], label: &str, max_pixels: u64) -> Result<Image, ApiError> {
    let (w, h) = probe_image(bytes, label, max_pixels)?;
    let pixels = u64::from(w) * u64::from(h);
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ApiError::internal(format!("{label}: {e}")))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    // 16-bit RGBA is the widest layout PNG decodes to: 8 bytes a pixel, plus slack.
    limits.max_alloc = Some(pixels * 8 + (1 << 20));
    reader.limits(limits);
    // A decoder bug must not take a worker down: report it as a bad file.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.decode()))
        .map_err(|_| {
            ApiError::bad(
                "corrupt_image",
                format!("{label}: the image decoder failed on this file"),
            )
        })?
        .map_err(|e| ApiError::bad("corrupt_image", format!("{label}: cannot decode image: {e}")))?;
    let (width, height) = (decoded.width() as usize, decoded.height() as usize);
    // Same rule as the trainer's loader: colourless images are grey (replicated later).
    if decoded.color().has_color() {
        Ok(Image {
            width,
            height,
            channels: 3,
            pixels: decoded.to_rgb8().into_raw(),
        })
    } else {
        Ok(Image {
            width,
            height,
            channels: 1,
            pixels: decoded.to_luma8().into_raw(),
        })
    }
}

/// Header of a uint8 `.npy` image array: `[n, h, w]` or `[n, h, w, c]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NpyImages {
    n: usize,
    height: usize,
    width: usize,
    channels: usize,
}

fn header_value<'a>(h: &'a str, key: &str) -> Option<&'a str> {
    let at = h
        .find(&format!("'{key}'"))
        .or_else(|| h.find(&format!("\"{key}\"")))?;
    let rest = &h[at + key.len() + 2..];
    Some(rest.trim_start().strip_prefix(':')?.trim_start())
}

/// Reads the `.npy` header from `r`, leaving it at the first data byte.
fn read_npy_header(r: &mut impl Read, label: &str, limits: &ServiceLimits) -> Result<NpyImages, ApiError> {
    let bad = |msg: String| ApiError::bad("bad_npz", format!("{label}: {msg}"));
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre)
        .map_err(|_| bad("truncated .npy header".into()))?;
    if &pre[..6] != NPY_MAGIC {
        return Err(bad("member is not an .npy array".into()));
    }
    let hlen = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)
                .map_err(|_| bad("truncated .npy header".into()))?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)
                .map_err(|_| bad("truncated .npy header".into()))?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    if hlen > 1 << 16 {
        return Err(bad("oversized .npy header".into()));
    }
    let mut h = vec![0u8; hlen];
    r.read_exact(&mut h)
        .map_err(|_| bad("truncated .npy header".into()))?;
    let h = String::from_utf8(h).map_err(|_| bad("non-UTF-8 .npy header".into()))?;
    let descr = header_value(&h, "descr").ok_or_else(|| bad("no dtype in .npy header".into()))?;
    if !(descr.starts_with("'|u1'") || descr.starts_with("'<u1'") || descr.starts_with("'u1'")) {
        return Err(ApiError::unprocessable(
            "bad_dtype",
            format!(
                "{label}: images must be uint8, the array has dtype {}",
                descr.split(',').next().unwrap_or("?")
            ),
        ));
    }
    let fortran =
        header_value(&h, "fortran_order").ok_or_else(|| bad("no fortran_order in header".into()))?;
    if fortran.starts_with("True") {
        return Err(ApiError::unprocessable(
            "bad_layout",
            format!("{label}: Fortran-order arrays are not supported (use np.ascontiguousarray)"),
        ));
    }
    let shape_s = header_value(&h, "shape").ok_or_else(|| bad("no shape in .npy header".into()))?;
    let inner = shape_s
        .strip_prefix('(')
        .and_then(|s| s.find(')').map(|e| &s[..e]))
        .ok_or_else(|| bad("malformed shape".into()))?;
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad("malformed shape".into())))
        .collect::<Result<_, _>>()?;
    let (n, height, width, channels) = match shape[..] {
        [n, h, w] => (n, h, w, 1),
        [n, h, w, c] if c == 1 || c == 3 => (n, h, w, c),
        _ => {
            return Err(ApiError::unprocessable(
                "bad_shape",
                format!("{label}: images must be [N, H, W] or [N, H, W, C] with C = 1 or 3, got {shape:?}"),
            ));
        }
    };
    if height == 0 || width == 0 {
        return Err(ApiError::unprocessable(
            "bad_shape",
            format!("{label}: images have no pixels"),
        ));
    }
    let pixels = (height as u64).saturating_mul(width as u64);
    if pixels > limits.max_pixels {
        return Err(ApiError::too_large(
            "too_many_pixels",
            format!(
                "{label}: {width}x{height} images exceed {} pixels (--max-pixels)",
                limits.max_pixels
            ),
        ));
    }
    let total = pixels.saturating_mul(channels as u64).saturating_mul(n as u64);
    if total > limits.max_archive_bytes {
        return Err(archive_too_large(label, limits.max_archive_bytes));
    }
    Ok(NpyImages {
        n,
        height,
        width,
        channels,
    })
}

/// The member holding the images: `images.npy`, or the only member.
fn npz_member(zip: &mut zip::ZipArchive<BufReader<File>>, label: &str) -> Result<usize, ApiError> {
    if let Some(i) = zip
        .index_for_name("images.npy")
        .or_else(|| zip.index_for_name("images"))
    {
        return Ok(i);
    }
    if zip.len() == 1 {
        return Ok(0);
    }
    Err(ApiError::unprocessable(
        "bad_npz",
        format!("{label}: expected a member `images` (or a single array) in the .npz"),
    ))
}

/// Walks every image of an upload, in order, calling `sink` with each.
/// With `decode = false` only headers and counts are checked (the cheap pre-scan) and
/// `sink` is not called; returns the number of images.
pub fn walk(
    upload: &Upload,
    limits: &ServiceLimits,
    decode: bool,
    sink: &mut dyn FnMut(Image) -> Result<(), ApiError>,
) -> Result<usize, ApiError> {
    let mut count = 0usize;
    let bump = |count: &mut usize| {
        *count += 1;
        if *count > limits.max_images {
            Err(too_many_images(limits.max_images))
        } else {
            Ok(())
        }
    };
    for part in &upload.parts {
        let label = part.label();
        match sniff(part)? {
            Kind::Image => {
                bump(&mut count)?;
                let bytes = std::fs::read(&part.path).map_err(|e| ApiError::internal(e.to_string()))?;
                if decode {
                    sink(decode_image(&bytes, &label, limits.max_pixels)?)?;
                } else {
                    probe_image(&bytes, &label, limits.max_pixels)?;
                }
            }
            Kind::Zip => {
                let mut zip = zip::ZipArchive::new(BufReader::new(open(part)?))
                    .map_err(|e| corrupt_archive(part, e))?;
                if zip.len() > limits.max_archive_entries {
                    return Err(too_many_entries(&label, limits.max_archive_entries));
                }
                let mut budget = limits.max_archive_bytes;
                for i in 0..zip.len() {
                    let mut entry = zip.by_index(i).map_err(|e| corrupt_archive(part, e))?;
                    let name = entry.name().map_err(|e| corrupt_archive(part, e))?.into_owned();
                    check_entry_path(&label, &name)?;
                    if entry.enclosed_name().is_none() {
                        return Err(ApiError::bad(
                            "unsafe_path",
                            format!("{label}: entry {name:?} escapes the archive"),
                        ));
                    }
                    if entry.is_dir() || is_junk(&name) {
                        continue;
                    }
                    if entry.is_symlink() {
                        return Err(ApiError::bad(
                            "unsupported_entry",
                            format!("{label}: entry {name:?} is a symbolic link"),
                        ));
                    }
                    if entry.size() > budget {
                        return Err(archive_too_large(&label, limits.max_archive_bytes));
                    }
                    bump(&mut count)?;
                    if decode {
                        // The declared size may lie: read at most the budget plus one byte.
                        let mut bytes = Vec::new();
                        (&mut entry)
                            .take(budget + 1)
                            .read_to_end(&mut bytes)
                            .map_err(|e| corrupt_archive(part, format!("{name}: {e}")))?;
                        if bytes.len() as u64 > budget {
                            return Err(archive_too_large(&label, limits.max_archive_bytes));
                        }
                        budget -= bytes.len() as u64;
                        sink(decode_image(
                            &bytes,
                            &format!("{label}: {name}"),
                            limits.max_pixels,
                        )?)?;
                    } else {
                        budget -= entry.size();
                    }
                }
            }
            Kind::Tar => {
                let mut tar = tar::Archive::new(BufReader::new(open(part)?));
                let entries = tar.entries_with_seek().map_err(|e| corrupt_archive(part, e))?;
                let mut budget = limits.max_archive_bytes;
                for (seen, entry) in entries.enumerate() {
                    if seen >= limits.max_archive_entries {
                        return Err(too_many_entries(&label, limits.max_archive_entries));
                    }
                    let mut entry = entry.map_err(|e| corrupt_archive(part, e))?;
                    let name = entry
                        .path()
                        .map_err(|e| corrupt_archive(part, e))?
                        .to_string_lossy()
                        .into_owned();
                    check_entry_path(&label, &name)?;
                    let kind = entry.header().entry_type();
                    if kind.is_dir() || is_junk(&name) {
                        continue;
                    }
                    if !(kind.is_file() || kind == tar::EntryType::Continuous) {
                        return Err(ApiError::bad(
                            "unsupported_entry",
                            format!("{label}: entry {name:?} is not a regular file"),
                        ));
                    }
                    let size = entry.size();
                    if size > budget {
                        return Err(archive_too_large(&label, limits.max_archive_bytes));
                    }
                    budget -= size;
                    bump(&mut count)?;
                    if decode {
                        let mut bytes = Vec::new();
                        (&mut entry)
                            .take(size)
                            .read_to_end(&mut bytes)
                            .map_err(|e| corrupt_archive(part, format!("{name}: {e}")))?;
                        if (bytes.len() as u64) < size {
                            return Err(corrupt_archive(part, format!("{name}: truncated")));
                        }
                        sink(decode_image(
                            &bytes,
                            &format!("{label}: {name}"),
                            limits.max_pixels,
                        )?)?;
                    }
                }
            }
            Kind::Npz => {
                let mut zip = zip::ZipArchive::new(BufReader::new(open(part)?))
                    .map_err(|e| corrupt_archive(part, e))?;
                let idx = npz_member(&mut zip, &label)?;
                let mut entry = zip.by_index(idx).map_err(|e| corrupt_archive(part, e))?;
                let header = read_npy_header(&mut entry, &label, limits)?;
                if count + header.n > limits.max_images {
                    return Err(too_many_images(limits.max_images));
                }
                count += header.n;
                if decode {
                    let per = header.height * header.width * header.channels;
                    for i in 0..header.n {
                        let mut pixels = vec![0u8; per];
                        entry.read_exact(&mut pixels).map_err(|_| {
                            ApiError::bad("bad_npz", format!("{label}: array data truncated at image {i}"))
                        })?;
                        sink(Image {
                            width: header.width,
                            height: header.height,
                            channels: header.channels,
                            pixels,
                        })?;
                    }
                }
            }
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        pagan_shared::grid::encode_png(w, h, 1, &vec![7u8; (w * h) as usize]).expect("png")
    }

    #[test]
    fn decodes_png_and_checks_pixels_first() {
        let img = decode_image(&png(5, 3), "x", 100).expect("decode");
        assert_eq!((img.width, img.height, img.channels), (5, 3, 1));
        let err = decode_image(&png(20, 20), "x", 100).expect_err("too big");
        assert_eq!(err.code(), "too_many_pixels");
        let mut truncated = png(8, 8);
        truncated.truncate(truncated.len() - 20);
        assert_eq!(
            decode_image(&truncated, "x", 100).expect_err("bad").code(),
            "corrupt_image"
        );
        assert_eq!(
            decode_image(b"hello", "x", 100).expect_err("bad").code(),
            "unsupported_media_type"
        );
    }

    #[test]
    fn header_only_bomb_is_rejected_before_decoding() {
        // A valid PNG header claiming 100000 x 100000 with no data behind it.
        let mut bomb = png(1, 1);
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let err = decode_image(&bomb, "bomb", 1 << 22).expect_err("bomb");
        assert!(
            matches!(err.code(), "too_many_pixels" | "corrupt_image"),
            "{}",
            err.code()
        );
    }

    #[test]
    fn entry_paths() {
        assert!(check_entry_path("a", "dir/x.png").is_ok());
        assert!(check_entry_path("a", "../x.png").is_err());
        assert!(check_entry_path("a", "/etc/passwd").is_err());
        assert!(check_entry_path("a", "d/../../x").is_err());
        assert!(check_entry_path("a", "..\\x.png").is_err());
        assert!(is_junk("__MACOSX/._a.png"));
        assert!(is_junk("d/.DS_Store"));
    }
}
