//! `.npz` statistics files in pytorch-fid's layout.
//!
//! Keys: `mu` `[d]` f64 and `sigma` `[d, d]` f64 (what pytorch-fid reads and writes).
//! When we write we also store `n` (int64 scalar) and, if given, `resize_mode` (a numpy
//! unicode scalar, `<U…`, which `np.load(..., allow_pickle=False)` accepts and
//! `str(f["resize_mode"])` turns back into the string). Foreign files with only `mu`
//! and `sigma`, in float32 or float64, C or Fortran order, stored or deflated, load.
//!
//! Why our own `.npy` codec instead of `ndarray-npy`: we need four tiny arrays, a
//! unicode scalar (which `ndarray-npy` cannot write), and no `ndarray` types in this
//! crate's API; the codec is ~150 lines and avoids `ndarray` + `py_literal`/`pest`.
//! The zip container (zip64 members, deflate) is left to the `zip` crate.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, Write};
use std::path::Path;

use crate::error::StatsError;
use crate::npy;
use crate::stats::Gaussian;

/// Relative asymmetry tolerated in a loaded `sigma` before it is rejected; below it
/// the matrix is symmetrised. Far above f64 rounding, far below any real asymmetry.
const SYMMETRY_RTOL: f64 = 1e-6;

/// Statistics loaded from (or written to) an `.npz` file.
#[derive(Debug, Clone, PartialEq)]
pub struct NpzStats {
    /// Mean, covariance and (if recorded) the sample count.
    pub gaussian: Gaussian,
    /// How images were resized to 299x299 before Inception, if recorded.
    pub resize_mode: Option<String>,
}

/// Writes `gaussian` as a pytorch-fid compatible `.npz` (uncompressed, like `np.savez`),
/// adding `n` when known and `resize_mode` when given. The file is written beside the
/// target and renamed into place, so readers never see a half-written file.
pub fn write_stats_npz(
    path: &Path,
    gaussian: &Gaussian,
    resize_mode: Option<&str>,
) -> Result<(), StatsError> {
    write_stats_npz_with_features(path, gaussian, resize_mode, None)
}

/// [`write_stats_npz`] plus, when given, the raw features as `features` float32
/// `[n, d]` (what KID needs; pytorch-fid ignores the extra key).
pub fn write_stats_npz_with_features(
    path: &Path,
    gaussian: &Gaussian,
    resize_mode: Option<&str>,
    features: Option<&[f32]>,
) -> Result<(), StatsError> {
    gaussian.validate()?;
    let d = gaussian.dim();
    let mut members: Vec<(&str, Vec<u8>)> = vec![
        ("mu", npy::encode_f64(&[d], &gaussian.mu)),
        ("sigma", npy::encode_f64(&[d, d], &gaussian.sigma)),
    ];
    if let Some(n) = gaussian.n {
        let n = i64::try_from(n).map_err(|_| StatsError::InvalidFile {
            path: path.to_path_buf(),
            msg: format!("sample count {n} does not fit in int64"),
        })?;
        members.push(("n", npy::encode_i64_scalar(n)));
    }
    if let Some(mode) = resize_mode {
        members.push(("resize_mode", npy::encode_unicode_scalar(mode)));
    }
    if let Some(f) = features {
        if f.len() % d != 0 {
            return Err(StatsError::InvalidFile {
                path: path.to_path_buf(),
                msg: format!("{} feature values are not rows of {d}", f.len()),
            });
        }
        members.push(("features", npy::to_bytes(f, &[f.len() / d, d])));
    }

    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StatsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let tmp = crate::fs::temp_beside(path);
    let result = write_zip(&tmp, &members).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|source| StatsError::Io {
            path: path.to_path_buf(),
            source,
        })
    });
    if result.is_err() {
        // Best effort: do not leave a stray temporary file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_zip(path: &Path, members: &[(&str, Vec<u8>)]) -> Result<(), StatsError> {
    let io_err = |source| StatsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let zip_err = |source| StatsError::Zip {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(io_err)?;
    let mut zw = zip::ZipWriter::new(BufWriter::new(file));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(members.iter().any(|(_, b)| b.len() as u64 >= u32::MAX as u64));
    for (name, bytes) in members {
        zw.start_file(format!("{name}.npy"), opts).map_err(zip_err)?;
        zw.write_all(bytes).map_err(io_err)?;
    }
    let mut w = zw.finish().map_err(zip_err)?;
    w.flush().map_err(io_err)?;
    let file = w.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.sync_all().map_err(io_err)?;
    Ok(())
}

/// Reads a pytorch-fid style `.npz`: `mu` and `sigma` are required (float32/float64),
/// `n` and `resize_mode` optional. Shapes, finiteness and symmetry are validated and
/// every error names the file.
pub fn read_stats_npz(path: &Path) -> Result<NpzStats, StatsError> {
    let bad = |msg: String| StatsError::InvalidFile {
        path: path.to_path_buf(),
        msg,
    };
    let mut zr = open_archive(path)?;

    let mu = read_member(&mut zr, path, "mu")?
        .ok_or_else(|| bad("missing key 'mu' (not a pytorch-fid statistics file?)".into()))?;
    let sigma = read_member(&mut zr, path, "sigma")?
        .ok_or_else(|| bad("missing key 'sigma' (not a pytorch-fid statistics file?)".into()))?;

    let mu_v = mu.to_f64().map_err(|e| bad(format!("mu: {e}")))?;
    if mu.shape.len() != 1 {
        return Err(bad(format!("mu must be 1-D, has shape {:?}", mu.shape)));
    }
    let d = mu.shape[0];
    if d == 0 {
        return Err(bad("mu is empty".into()));
    }
    if sigma.shape != [d, d] {
        return Err(bad(format!(
            "sigma must be square [{d}, {d}] to match mu [{d}], has shape {:?}",
            sigma.shape
        )));
    }
    let mut sigma_v = sigma.to_f64().map_err(|e| bad(format!("sigma: {e}")))?;
    if sigma.fortran_order {
        transpose_in_place(&mut sigma_v, d);
    }
    if let Some(i) = mu_v.iter().position(|x| !x.is_finite()) {
        return Err(bad(format!("mu[{i}] is {} (NaN/inf)", mu_v[i])));
    }
    if let Some(i) = sigma_v.iter().position(|x| !x.is_finite()) {
        return Err(bad(format!(
            "sigma[{}, {}] is {} (NaN/inf)",
            i / d,
            i % d,
            sigma_v[i]
        )));
    }
    symmetrize_checked(&mut sigma_v, d).map_err(|e| bad(e.to_string()))?;
    crate::stats::check_covariance(&sigma_v, d).map_err(bad)?;

    let n = match read_member(&mut zr, path, "n")? {
        None => None,
        Some(a) => Some(a.to_count().map_err(|e| bad(format!("n: {e}")))?),
    };
    let resize_mode = match read_member(&mut zr, path, "resize_mode")? {
        None => None,
        Some(a) => Some(
            a.to_string_value()
                .map_err(|e| bad(format!("resize_mode: {e}")))?,
        ),
    };
    let gaussian = Gaussian::new(mu_v, sigma_v, n).map_err(|e| bad(e.to_string()))?;
    Ok(NpzStats {
        gaussian,
        resize_mode,
    })
}

/// The `features` member of a statistics file, if it has one: (row-major values, rows).
/// Its width must equal `mu`'s length.
pub fn read_features_npz(path: &Path) -> Result<Option<(Vec<f32>, usize)>, StatsError> {
    let bad = |msg: String| StatsError::InvalidFile {
        path: path.to_path_buf(),
        msg,
    };
    let mut zr = open_archive(path)?;
    let Some(f) = read_member(&mut zr, path, "features")? else {
        return Ok(None);
    };
    let d = read_member(&mut zr, path, "mu")?
        .map(|mu| mu.shape.iter().product::<usize>())
        .ok_or_else(|| bad("missing key 'mu'".into()))?;
    if f.fortran_order {
        return Err(bad("features in Fortran order are not supported".into()));
    }
    if f.shape.len() != 2 || f.shape[1] != d {
        return Err(bad(format!("features must be [n, {d}], has shape {:?}", f.shape)));
    }
    Ok(Some((finite_rows(&f).map_err(bad)?, f.shape[0])))
}

/// A feature array's values as f32, every one finite (the message says what is wrong).
pub(crate) fn finite_rows(f: &npy::Array) -> Result<Vec<f32>, String> {
    let values: Vec<f32> = f
        .to_f64()
        .map_err(|e| format!("features: {e}"))?
        .into_iter()
        .map(|v| v as f32)
        .collect();
    if values.iter().any(|v| !v.is_finite()) {
        return Err("features contain NaN/inf".into());
    }
    Ok(values)
}

/// The resize convention a statistics file records, reading only that member (cheap: the
/// covariance is not read).
pub fn read_resize_mode_npz(path: &Path) -> Result<Option<String>, StatsError> {
    let mut zr = open_archive(path)?;
    match read_member(&mut zr, path, "resize_mode")? {
        None => Ok(None),
        Some(a) => a
            .to_string_value()
            .map(Some)
            .map_err(|msg| StatsError::InvalidFile {
                path: path.to_path_buf(),
                msg: format!("resize_mode: {msg}"),
            }),
    }
}

/// Largest member read from an `.npz` (1 GiB: 131k feature rows of 2048 float32).
const MAX_MEMBER_BYTES: u64 = 1 << 30;

pub(crate) fn open_archive(path: &Path) -> Result<zip::ZipArchive<std::io::BufReader<File>>, StatsError> {
    let file = File::open(path).map_err(|source| StatsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|source| StatsError::NotNpz {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn read_member<R: Read + Seek>(
    zr: &mut zip::ZipArchive<R>,
    path: &Path,
    key: &str,
) -> Result<Option<npy::Array>, StatsError> {
    let name = if zr.index_for_name(&format!("{key}.npy")).is_some() {
        format!("{key}.npy")
    } else if zr.index_for_name(key).is_some() {
        key.to_string()
    } else {
        return Ok(None);
    };
    let mut entry = zr.by_name(&name).map_err(|source| StatsError::NotNpz {
        path: path.to_path_buf(),
        source,
    })?;
    // Sizes come from the (untrusted) archive: cap the pre-allocation and what is read,
    // so a zip bomb cannot exhaust memory.
    let mut bytes = Vec::with_capacity(entry.size().min(1 << 30) as usize);
    (&mut entry)
        .take(MAX_MEMBER_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| StatsError::InvalidFile {
            path: path.to_path_buf(),
            msg: format!("{name}: cannot be read ({e})"),
        })?;
    if bytes.len() as u64 > MAX_MEMBER_BYTES {
        return Err(StatsError::InvalidFile {
            path: path.to_path_buf(),
            msg: format!("{name}: more than {MAX_MEMBER_BYTES} bytes uncompressed"),
        });
    }
    npy::decode(&bytes)
        .map(Some)
        .map_err(|msg| StatsError::InvalidFile {
            path: path.to_path_buf(),
            msg: format!("{name}: {msg}"),
        })
}

fn transpose_in_place(a: &mut [f64], d: usize) {
    for i in 0..d {
        for j in (i + 1)..d {
            a.swap(i * d + j, j * d + i);
        }
    }
}

/// Rejects a visibly asymmetric matrix, then averages it with its transpose so later
/// code may read either triangle.
fn symmetrize_checked(a: &mut [f64], d: usize) -> Result<(), StatsError> {
    let max_abs = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let mut max_asym = 0.0f64;
    for i in 0..d {
        for j in (i + 1)..d {
            max_asym = max_asym.max((a[i * d + j] - a[j * d + i]).abs());
        }
    }
    if max_asym > SYMMETRY_RTOL * max_abs {
        return Err(StatsError::NotSymmetric {
            what: "sigma",
            max_asym,
            max_abs,
        });
    }
    for i in 0..d {
        for j in (i + 1)..d {
            let m = 0.5 * (a[i * d + j] + a[j * d + i]);
            a[i * d + j] = m;
            a[j * d + i] = m;
        }
    }
    Ok(())
}
