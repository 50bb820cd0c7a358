//! Turning uploaded files into images: PNG/JPEG files, zip and tar archives of them, and
//! `.npz` arrays of uint8 images. Every limit is checked before the expensive step it
//! guards: a counting pass ([`count`]) reads only headers, entry counts and sizes before
//! anything is decoded; image dimensions come from headers before decoding; array shapes
//! before allocating. Images are decoded by `pagan_shared::images`, as in the trainer.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path};

use pagan_shared::images::{self, Image};

use super::ScoreError;
use super::npy_images;
use super::upload::{Part, Upload};
use crate::config::Limits;

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

fn corrupt_archive(part: &Part, e: impl std::fmt::Display) -> ScoreError {
    ScoreError::CorruptArchive {
        label: part.label(),
        reason: e.to_string(),
    }
}

fn open_zip(part: &Part) -> Result<zip::ZipArchive<BufReader<File>>, ScoreError> {
    zip::ZipArchive::new(BufReader::new(File::open(&part.path)?)).map_err(|e| corrupt_archive(part, e))
}

/// Sniffs `part`: magic bytes first; a zip is an `.npz` when its name or type says so or
/// every member is a `.npy` array.
pub fn sniff(part: &Part) -> Result<Kind, ScoreError> {
    let mut head = Vec::with_capacity(512);
    File::open(&part.path)?.take(512).read_to_end(&mut head)?;
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
        let zip = open_zip(part)?;
        let all_npy = !zip.is_empty() && zip.file_names().all(|n| n.is_ok_and(|n| n.ends_with(".npy")));
        return Ok(if all_npy { Kind::Npz } else { Kind::Zip });
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Ok(Kind::Tar);
    }
    Err(ScoreError::UnsupportedFile(part.label()))
}

/// Rejects absolute paths and `..` anywhere: archive names must stay inside the archive.
fn check_entry_path(label: &str, name: &str) -> Result<(), ScoreError> {
    let path = Path::new(name);
    let unsafe_path = name.contains('\\')
        || path.components().any(|c| {
            matches!(
                c,
                Component::ParentDir | Component::RootDir | Component::Prefix(_)
            )
        });
    if unsafe_path {
        return Err(ScoreError::UnsafePath {
            label: label.to_owned(),
            entry: name.to_owned(),
        });
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

/// The counting pass: every limit checked from headers, counts and declared sizes; nothing
/// decoded. Returns the number of images.
pub fn count(upload: &Upload, limits: &Limits) -> Result<usize, ScoreError> {
    visit(upload, limits, None)
}

/// Decodes every image of an upload, in order, calling `sink` with each.
pub fn walk(
    upload: &Upload,
    limits: &Limits,
    sink: &mut dyn FnMut(Image) -> Result<(), ScoreError>,
) -> Result<usize, ScoreError> {
    visit(upload, limits, Some(sink))
}

type Sink<'a> = Option<&'a mut dyn FnMut(Image) -> Result<(), ScoreError>>;

fn visit(upload: &Upload, limits: &Limits, mut sink: Sink<'_>) -> Result<usize, ScoreError> {
    let mut count = 0usize;
    for part in &upload.parts {
        match sniff(part)? {
            Kind::Image => {
                bump(&mut count, 1, limits)?;
                let bytes = std::fs::read(&part.path)?;
                image_bytes(&bytes, &part.label(), limits, &mut sink)?;
            }
            Kind::Zip => zip_entries(part, limits, &mut count, &mut sink)?,
            Kind::Tar => tar_entries(part, limits, &mut count, &mut sink)?,
            Kind::Npz => npz_images(part, limits, &mut count, &mut sink)?,
        }
    }
    Ok(count)
}

fn bump(count: &mut usize, k: usize, limits: &Limits) -> Result<(), ScoreError> {
    *count += k;
    if *count > limits.max_images {
        return Err(ScoreError::TooManyImages(limits.max_images));
    }
    Ok(())
}

/// Decodes (or, in the counting pass, only probes) one PNG/JPEG.
fn image_bytes(bytes: &[u8], label: &str, limits: &Limits, sink: &mut Sink<'_>) -> Result<(), ScoreError> {
    match sink {
        Some(f) => f(images::decode(bytes, label, limits.max_pixels)?),
        None => images::probe(bytes, label, limits.max_pixels)
            .map(|_| ())
            .map_err(Into::into),
    }
}

fn too_large(part: &Part, limits: &Limits) -> ScoreError {
    ScoreError::ArchiveTooLarge {
        label: part.label(),
        limit: limits.max_archive_bytes,
    }
}

fn zip_entries(
    part: &Part,
    limits: &Limits,
    count: &mut usize,
    sink: &mut Sink<'_>,
) -> Result<(), ScoreError> {
    let label = part.label();
    let mut zip = open_zip(part)?;
    if zip.len() > limits.max_archive_entries {
        return Err(ScoreError::TooManyEntries {
            label,
            limit: limits.max_archive_entries,
        });
    }
    let mut budget = limits.max_archive_bytes;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| corrupt_archive(part, e))?;
        let name = entry.name().map_err(|e| corrupt_archive(part, e))?.into_owned();
        check_entry_path(&label, &name)?;
        if entry.enclosed_name().is_none() {
            return Err(ScoreError::UnsafePath { label, entry: name });
        }
        if entry.is_dir() || is_junk(&name) {
            continue;
        }
        if entry.is_symlink() {
            return Err(ScoreError::UnsupportedEntry {
                label,
                entry: name,
                what: "a symbolic link",
            });
        }
        if entry.size() > budget {
            return Err(too_large(part, limits));
        }
        bump(count, 1, limits)?;
        if sink.is_none() {
            budget -= entry.size();
            continue;
        }
        // The declared size may lie: read at most the budget plus one byte.
        let mut bytes = Vec::new();
        (&mut entry)
            .take(budget + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| corrupt_archive(part, format!("{name}: {e}")))?;
        if bytes.len() as u64 > budget {
            return Err(too_large(part, limits));
        }
        budget -= bytes.len() as u64;
        image_bytes(&bytes, &format!("{label}: {name}"), limits, sink)?;
    }
    Ok(())
}

fn tar_entries(
    part: &Part,
    limits: &Limits,
    count: &mut usize,
    sink: &mut Sink<'_>,
) -> Result<(), ScoreError> {
    let label = part.label();
    let mut tar = tar::Archive::new(BufReader::new(File::open(&part.path)?));
    let entries = tar.entries_with_seek().map_err(|e| corrupt_archive(part, e))?;
    let mut budget = limits.max_archive_bytes;
    for (seen, entry) in entries.enumerate() {
        if seen >= limits.max_archive_entries {
            return Err(ScoreError::TooManyEntries {
                label,
                limit: limits.max_archive_entries,
            });
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
            return Err(ScoreError::UnsupportedEntry {
                label,
                entry: name,
                what: "not a regular file",
            });
        }
        let size = entry.size();
        if size > budget {
            return Err(too_large(part, limits));
        }
        budget -= size;
        bump(count, 1, limits)?;
        if sink.is_some() {
            let mut bytes = Vec::new();
            (&mut entry)
                .take(size)
                .read_to_end(&mut bytes)
                .map_err(|e| corrupt_archive(part, format!("{name}: {e}")))?;
            if (bytes.len() as u64) < size {
                return Err(corrupt_archive(part, format!("{name}: truncated")));
            }
            image_bytes(&bytes, &format!("{label}: {name}"), limits, sink)?;
        }
    }
    Ok(())
}

fn npz_images(
    part: &Part,
    limits: &Limits,
    count: &mut usize,
    sink: &mut Sink<'_>,
) -> Result<(), ScoreError> {
    let label = part.label();
    let mut zip = open_zip(part)?;
    let idx = npy_images::images_member(&mut zip, &label)?;
    let mut entry = zip.by_index(idx).map_err(|e| corrupt_archive(part, e))?;
    let header = npy_images::read_header(&mut entry, &label, limits)?;
    bump(count, header.n, limits)?;
    let Some(f) = sink else {
        return Ok(());
    };
    let (h, w, c) = (header.height, header.width, header.channels);
    let mut pixels = vec![0u8; h * w * c];
    for i in 0..header.n {
        entry.read_exact(&mut pixels).map_err(|_| ScoreError::BadNpz {
            label: label.clone(),
            reason: format!("array data truncated at image {i}"),
        })?;
        f(Image::from_interleaved(c, h, w, &pixels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
