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
use std::path::{Path, PathBuf};

use crate::error::StatsError;
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

    let tmp = tmp_path(path);
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

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
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
    let file = File::open(path).map_err(|source| StatsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut zr = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|source| StatsError::Zip {
        path: path.to_path_buf(),
        source,
    })?;

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

fn read_member<R: Read + Seek>(
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
    let mut entry = zr.by_name(&name).map_err(|source| StatsError::Zip {
        path: path.to_path_buf(),
        source,
    })?;
    // Sizes come from the (untrusted) archive: cap the pre-allocation.
    let mut bytes = Vec::with_capacity(entry.size().min(1 << 30) as usize);
    entry.read_to_end(&mut bytes).map_err(|source| StatsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
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

/// Minimal `.npy` (format 1.0-3.0) codec for the few dtypes statistics files use.
mod npy {
    const MAGIC: &[u8] = b"\x93NUMPY";

    /// Element type and byte order parsed from a `descr` such as `<f8`.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Kind {
        Float,
        Int,
        Uint,
        Bool,
        Bytes,
        Unicode,
    }

    /// A decoded array: raw little-endian-normalised bytes plus its type and shape.
    #[derive(Debug)]
    pub(super) struct Array {
        kind: Kind,
        item: usize,
        pub(super) shape: Vec<usize>,
        pub(super) fortran_order: bool,
        data: Vec<u8>,
    }

    fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
        let dims: Vec<String> = shape.iter().map(|s| s.to_string()).collect();
        let shape_s = match dims.len() {
            1 => format!("({},)", dims[0]),
            _ => format!("({})", dims.join(", ")),
        };
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
        // Pad so magic(6) + version(2) + len(2) + header is a multiple of 64, as numpy does.
        let total = 10 + h.len() + 1;
        h.push_str(&" ".repeat((64 - total % 64) % 64));
        h.push('\n');
        let mut out = Vec::with_capacity(10 + h.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[1, 0]);
        // Headers we write are < 200 bytes, so a u16 length (format 1.0) always fits.
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out
    }

    pub(super) fn encode_f64(shape: &[usize], v: &[f64]) -> Vec<u8> {
        let mut out = header("<f8", shape);
        out.reserve(v.len() * 8);
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out
    }

    pub(super) fn encode_i64_scalar(v: i64) -> Vec<u8> {
        let mut out = header("<i8", &[]);
        out.extend_from_slice(&v.to_le_bytes());
        out
    }

    /// A 0-d numpy `str_` array: UTF-32LE code points, fixed width = char count.
    pub(super) fn encode_unicode_scalar(s: &str) -> Vec<u8> {
        let width = s.chars().count().max(1);
        let mut out = header(&format!("<U{width}"), &[]);
        for c in s.chars() {
            out.extend_from_slice(&(c as u32).to_le_bytes());
        }
        if s.is_empty() {
            out.extend_from_slice(&0u32.to_le_bytes());
        }
        out
    }

    /// Value following `'key':` in a Python dict literal, as a raw text slice.
    fn dict_value<'a>(h: &'a str, key: &str) -> Result<&'a str, String> {
        let pos = [format!("'{key}'"), format!("\"{key}\"")]
            .iter()
            .find_map(|k| h.find(k.as_str()).map(|p| p + k.len()))
            .ok_or_else(|| format!("npy header has no '{key}': {h}"))?;
        let rest = h[pos..].trim_start();
        let rest = rest
            .strip_prefix(':')
            .ok_or_else(|| format!("malformed npy header near '{key}': {h}"))?
            .trim_start();
        Ok(rest)
    }

    fn parse_descr(h: &str) -> Result<(Kind, usize, bool), String> {
        let v = dict_value(h, "descr")?;
        let q = v.chars().next().filter(|c| *c == '\'' || *c == '"');
        let q = q.ok_or_else(|| format!("unsupported npy dtype (structured?): {h}"))?;
        let end = v[1..]
            .find(q)
            .ok_or_else(|| format!("malformed npy descr: {h}"))?;
        let descr = &v[1..1 + end];
        let (order, rest) = match descr.chars().next() {
            Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
            _ => ('=', descr),
        };
        let mut chars = rest.chars();
        let kind = match chars.next() {
            Some('f') => Kind::Float,
            Some('i') => Kind::Int,
            Some('u') => Kind::Uint,
            Some('b') => Kind::Bool,
            Some('S') => Kind::Bytes,
            Some('U') => Kind::Unicode,
            Some('O') => return Err("object arrays (pickles) are not accepted".into()),
            _ => return Err(format!("unsupported npy dtype '{descr}'")),
        };
        let size: usize = chars
            .as_str()
            .parse()
            .map_err(|_| format!("unsupported npy dtype '{descr}'"))?;
        let item = if kind == Kind::Unicode { size * 4 } else { size };
        let big = order == '>' || (order == '=' && cfg!(target_endian = "big"));
        Ok((kind, item, big))
    }

    fn parse_shape(h: &str) -> Result<Vec<usize>, String> {
        let v = dict_value(h, "shape")?;
        let inner = v
            .strip_prefix('(')
            .and_then(|r| r.find(')').map(|e| &r[..e]))
            .ok_or_else(|| format!("malformed npy shape: {h}"))?;
        inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.trim_end_matches('L')
                    .parse::<usize>()
                    .map_err(|_| format!("malformed npy shape: {h}"))
            })
            .collect()
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Array, String> {
        if bytes.len() < 10 || &bytes[..6] != MAGIC {
            return Err("not an .npy array (bad magic)".into());
        }
        let (hlen, start) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
            2 | 3 if bytes.len() >= 12 => (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            ),
            v => return Err(format!("unsupported .npy format version {v}")),
        };
        let end = start
            .checked_add(hlen)
            .filter(|&e| e <= bytes.len())
            .ok_or("truncated .npy header")?;
        let h = std::str::from_utf8(&bytes[start..end]).map_err(|_| "non-UTF-8 .npy header")?;
        let (kind, item, big) = parse_descr(h)?;
        let fortran_order = dict_value(h, "fortran_order")?.starts_with("True");
        let shape = parse_shape(h)?;
        let count = shape
            .iter()
            .try_fold(1usize, |a, &s| a.checked_mul(s))
            .ok_or("npy shape overflows")?;
        let nbytes = count.checked_mul(item).ok_or("npy shape overflows")?;
        let data = &bytes[end..];
        if data.len() != nbytes {
            return Err(format!(
                "npy data has {} bytes, shape {shape:?} of {item}-byte items needs {nbytes}",
                data.len()
            ));
        }
        let mut data = data.to_vec();
        // Normalise to little-endian (unicode is stored as 4-byte code points).
        let swap_width = if kind == Kind::Unicode { 4 } else { item };
        if big && swap_width > 1 {
            data.chunks_exact_mut(swap_width).for_each(|c| c.reverse());
        }
        Ok(Array {
            kind,
            item,
            shape,
            fortran_order,
            data,
        })
    }

    impl Array {
        /// Numeric elements widened to f64 (float32/float64 and integers).
        pub(super) fn to_f64(&self) -> Result<Vec<f64>, String> {
            let it = self.data.chunks_exact(self.item.max(1));
            Ok(match (self.kind, self.item) {
                (Kind::Float, 8) => it
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
                (Kind::Float, 4) => it
                    .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
                    .collect(),
                (Kind::Int | Kind::Uint, _) => (0..self.data.len() / self.item.max(1))
                    .map(|i| self.int_at(i).map(|v| v as f64))
                    .collect::<Result<_, _>>()?,
                (k, s) => return Err(format!("expected a float array, got {k:?}{s}")),
            })
        }

        fn int_at(&self, i: usize) -> Result<i128, String> {
            let w = self.item;
            if !matches!(w, 1 | 2 | 4 | 8) {
                return Err(format!("unsupported integer width {w}"));
            }
            let c = &self.data[i * w..(i + 1) * w];
            // Little-endian: zero-extend (unsigned) or sign-extend (signed) to 16 bytes.
            let negative = self.kind == Kind::Int && c[w - 1] & 0x80 != 0;
            let mut buf = [if negative { 0xff } else { 0 }; 16];
            buf[..w].copy_from_slice(c);
            Ok(i128::from_le_bytes(buf))
        }

        /// A non-negative integer stored as a scalar or a one-element array.
        pub(super) fn to_count(&self) -> Result<u64, String> {
            if self.shape.iter().product::<usize>() != 1 {
                return Err(format!("expected a scalar, got shape {:?}", self.shape));
            }
            let v: i128 = match self.kind {
                Kind::Int | Kind::Uint => self.int_at(0)?,
                Kind::Float => {
                    let f = self.to_f64()?[0];
                    if f.fract() != 0.0 || !f.is_finite() {
                        return Err(format!("expected an integer, got {f}"));
                    }
                    f as i128
                }
                k => return Err(format!("expected an integer, got {k:?}")),
            };
            u64::try_from(v).map_err(|_| format!("expected a non-negative count, got {v}"))
        }

        /// A string stored as a unicode scalar (`<U…`), bytes (`|S…`) or a uint8 array.
        pub(super) fn to_string_value(&self) -> Result<String, String> {
            let bytes: Vec<u8> = match self.kind {
                Kind::Unicode => {
                    let mut s = String::new();
                    for c in self.data.chunks_exact(4) {
                        let cp = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                        if cp == 0 {
                            break; // numpy pads fixed-width strings with NULs
                        }
                        s.push(char::from_u32(cp).ok_or("invalid code point")?);
                    }
                    return Ok(s);
                }
                Kind::Bytes => self.data.iter().copied().take_while(|&b| b != 0).collect(),
                Kind::Uint if self.item == 1 => self.data.clone(),
                k => return Err(format!("expected a string, got {k:?}{}", self.item)),
            };
            String::from_utf8(bytes).map_err(|_| "not valid UTF-8".into())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn header_is_64_aligned_and_parses() {
            let b = encode_f64(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
            let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
            assert_eq!((10 + hl) % 64, 0);
            let a = decode(&b).expect("decode");
            assert_eq!(a.shape, vec![3, 2]);
            assert_eq!(a.to_f64().expect("f64"), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        }

        #[test]
        fn scalars_roundtrip() {
            let a = decode(&encode_i64_scalar(12345)).expect("decode");
            assert!(a.shape.is_empty());
            assert_eq!(a.to_count().expect("count"), 12345);
            let s = decode(&encode_unicode_scalar("tf1-bilinear é")).expect("decode");
            assert_eq!(s.to_string_value().expect("str"), "tf1-bilinear é");
        }

        #[test]
        fn rejects_garbage_and_truncation() {
            assert!(decode(b"hello world, not npy").is_err());
            let mut b = encode_f64(&[4], &[1.0, 2.0, 3.0, 4.0]);
            b.truncate(b.len() - 3);
            assert!(decode(&b).is_err());
            let obj = header("|O", &[1]);
            assert!(decode(&obj).is_err());
        }

        #[test]
        fn big_endian_and_fortran_flags() {
            let mut b = header(">f4", &[2]);
            b.extend_from_slice(&1.5f32.to_be_bytes());
            b.extend_from_slice(&(-2.0f32).to_be_bytes());
            let a = decode(&b).expect("decode");
            assert_eq!(a.to_f64().expect("f64"), vec![1.5, -2.0]);
            assert!(!a.fortran_order);
        }
    }
}
