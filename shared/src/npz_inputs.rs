//! `.npz` files users bring as references besides statistics: what one holds
//! ([`npz_kind`]), clean-fid's feature rows (`feats`), and uint8 image arrays (`images`,
//! ADM-style `arr_0`).

use std::path::Path;

use crate::error::StatsError;
use crate::npz::{finite_rows, open_archive, read_member};

/// What an `.npz` given as a reference holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpzKind {
    /// Statistics (`mu`, `sigma`; ours, pytorch-fid's, clean-fid's).
    Statistics,
    /// Feature rows only (clean-fid's `feats` files for KID).
    Features,
    /// uint8 images (`images`, ADM-style `arr_0`, or a single array).
    Images,
}

/// Which of [`NpzKind`] `path` holds, from its member names.
pub fn npz_kind(path: &Path) -> Result<NpzKind, StatsError> {
    let zr = open_archive(path)?;
    let has = |k: &str| zr.index_for_name(&format!("{k}.npy")).is_some() || zr.index_for_name(k).is_some();
    Ok(if has("mu") {
        NpzKind::Statistics
    } else if has("feats") || has("features") {
        NpzKind::Features
    } else {
        NpzKind::Images
    })
}

/// Feature rows of a features-only `.npz` (clean-fid's `feats`, or `features`): (row-major
/// values, rows, width).
pub fn read_feats_npz(path: &Path) -> Result<(Vec<f32>, usize, usize), StatsError> {
    let bad = |msg: String| StatsError::InvalidFile {
        path: path.to_path_buf(),
        msg,
    };
    let mut zr = open_archive(path)?;
    let f = match read_member(&mut zr, path, "feats")? {
        Some(f) => f,
        None => read_member(&mut zr, path, "features")?
            .ok_or_else(|| bad("no member 'feats' or 'features'".into()))?,
    };
    if f.fortran_order || f.shape.len() != 2 || f.shape[0] == 0 || f.shape[1] == 0 {
        return Err(bad(format!(
            "feature rows must be a C-order [n, dim] array, got shape {:?}",
            f.shape
        )));
    }
    Ok((finite_rows(&f).map_err(bad)?, f.shape[0], f.shape[1]))
}

/// uint8 images of an `.npz` (member `images`, ADM-style `arr_0`, or its only array):
/// (interleaved pixels, `[n, h, w, c]` with `c` = 1 or 3).
pub fn read_images_npz(path: &Path) -> Result<(Vec<u8>, [usize; 4]), StatsError> {
    let bad = |msg: String| StatsError::InvalidFile {
        path: path.to_path_buf(),
        msg,
    };
    let mut zr = open_archive(path)?;
    let mut array = None;
    for key in ["images", "arr_0"] {
        if let Some(a) = read_member(&mut zr, path, key)? {
            array = Some(a);
            break;
        }
    }
    if array.is_none() && zr.len() == 1 {
        let name = match zr.file_names().next() {
            Some(Ok(n)) => n.trim_end_matches(".npy").to_owned(),
            _ => String::new(),
        };
        array = read_member(&mut zr, path, &name)?;
    }
    let a = array.ok_or_else(|| {
        bad("no image array: expected a member `images` or `arr_0` (or a single array)".into())
    })?;
    let shape = match a.shape[..] {
        [n, h, w] => [n, h, w, 1],
        [n, h, w, c] if c == 1 || c == 3 => [n, h, w, c],
        _ => {
            return Err(bad(format!(
                "images must be [N, H, W] or [N, H, W, C] with C = 1 or 3, got shape {:?}",
                a.shape
            )));
        }
    };
    if a.fortran_order {
        return Err(bad(
            "Fortran-order image arrays are not supported (use np.ascontiguousarray)".into(),
        ));
    }
    Ok((a.into_u8().map_err(bad)?, shape))
}
