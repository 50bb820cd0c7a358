//! `.npy` arrays: the public f32 API (latents in, images out) and the general codec the
//! `.npz` statistics files use (floats, integers, strings; format 1.0-3.0; either byte order).

use std::path::Path;

use thiserror::Error;

/// Errors reading or writing `.npy` files.
#[derive(Debug, Error)]
pub enum NpyError {
    /// File I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not an npy array we can read.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Serialises an f32 array with the given shape to `.npy` bytes.
pub fn to_bytes(data: &[f32], shape: &[usize]) -> Vec<u8> {
    let mut out = header("<f4", shape);
    out.reserve(data.len() * 4);
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Parses `.npy` bytes holding a float32 or float64 (converted) C-order array.
pub fn from_bytes(bytes: &[u8], name: &str) -> Result<(Vec<f32>, Vec<usize>), NpyError> {
    let err = |reason: String| NpyError::Format {
        path: name.to_string(),
        reason,
    };
    let a = decode(bytes).map_err(err)?;
    if a.fortran_order {
        return Err(err(
            "Fortran-order arrays are not supported; save with np.ascontiguousarray".into(),
        ));
    }
    if !a.is_float() {
        return Err(err("dtype must be float32 or float64".into()));
    }
    let data = a.to_f64().map_err(err)?.into_iter().map(|v| v as f32).collect();
    Ok((data, a.shape))
}

/// Reads an `.npy` file (f32 or f64).
pub fn read(path: &Path) -> Result<(Vec<f32>, Vec<usize>), NpyError> {
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    from_bytes(&bytes, &path.display().to_string())
}

/// Writes an f32 `.npy` file atomically.
pub fn write(path: &Path, data: &[f32], shape: &[usize]) -> Result<(), NpyError> {
    crate::fs::write_atomic(path, &to_bytes(data, shape)).map_err(|source| NpyError::Io {
        path: path.display().to_string(),
        source,
    })
}

// The general codec, shared with `npz` (statistics files need f64, ints and strings).

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
pub(crate) struct Array {
    kind: Kind,
    item: usize,
    pub(crate) shape: Vec<usize>,
    pub(crate) fortran_order: bool,
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

pub(crate) fn encode_f64(shape: &[usize], v: &[f64]) -> Vec<u8> {
    let mut out = header("<f8", shape);
    out.reserve(v.len() * 8);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

pub(crate) fn encode_i64_scalar(v: i64) -> Vec<u8> {
    let mut out = header("<i8", &[]);
    out.extend_from_slice(&v.to_le_bytes());
    out
}

/// A 0-d numpy `str_` array: UTF-32LE code points, fixed width = char count.
pub(crate) fn encode_unicode_scalar(s: &str) -> Vec<u8> {
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

pub(crate) fn decode(bytes: &[u8]) -> Result<Array, String> {
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
    /// True for float32/float64 data.
    pub(crate) fn is_float(&self) -> bool {
        self.kind == Kind::Float && matches!(self.item, 4 | 8)
    }

    /// Numeric elements widened to f64 (float32/float64 and integers).
    /// The values of a uint8 array (image pixels).
    pub(crate) fn into_u8(self) -> Result<Vec<u8>, String> {
        match (self.kind, self.item) {
            (Kind::Uint, 1) => Ok(self.data),
            (k, s) => Err(format!("images must be uint8, the array is {k:?}{s}")),
        }
    }

    pub(crate) fn to_f64(&self) -> Result<Vec<f64>, String> {
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
    pub(crate) fn to_count(&self) -> Result<u64, String> {
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
    pub(crate) fn to_string_value(&self) -> Result<String, String> {
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
    fn roundtrip_and_alignment() {
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b = to_bytes(&data, &[2, 3, 4]);
        assert_eq!((10 + u16::from_le_bytes([b[8], b[9]]) as usize) % 64, 0);
        let (d, s) = from_bytes(&b, "x").expect("parse");
        assert_eq!(s, vec![2, 3, 4]);
        assert_eq!(d, data);
        let (_, s1) = from_bytes(&to_bytes(&[1.0], &[1]), "x").expect("1-d");
        assert_eq!(s1, vec![1]);
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(from_bytes(b"hello world", "x").is_err());
        let b = to_bytes(&[1.0, 2.0], &[2]);
        assert!(from_bytes(&b[..b.len() - 1], "x").is_err());
    }
}

#[cfg(test)]
mod codec_tests {
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
