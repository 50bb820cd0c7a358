//! Minimal `.npy` (format 1.0) for little-endian f32 arrays in C order: latents in, images out.

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

const MAGIC: &[u8] = b"\x93NUMPY";

/// Serialises an f32 array with the given shape to `.npy` bytes.
pub fn to_bytes(data: &[f32], shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // Pad so the data starts on a 64-byte boundary, header ends with '\n' (npy spec).
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Parses `.npy` bytes holding a little-endian f32 (or f64, converted) C-order array.
pub fn from_bytes(bytes: &[u8], name: &str) -> Result<(Vec<f32>, Vec<usize>), NpyError> {
    let err = |reason: &str| NpyError::Format {
        path: name.to_string(),
        reason: reason.to_string(),
    };
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(err("not an .npy file (bad magic)"));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(err("unsupported .npy version")),
    };
    let header = bytes
        .get(start..start + hlen)
        .ok_or_else(|| err("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| err("header is not text"))?;
    let field = |key: &str| -> Option<&str> {
        let i = header.find(&format!("'{key}'"))?;
        let rest = header[i + key.len() + 2..]
            .trim_start()
            .strip_prefix(':')?
            .trim_start();
        Some(rest)
    };
    let descr = field("descr").ok_or_else(|| err("no descr"))?;
    let elem = if descr.starts_with("'<f4'") {
        4
    } else if descr.starts_with("'<f8'") {
        8
    } else {
        return Err(err("dtype must be little-endian float32 or float64"));
    };
    if field("fortran_order").is_some_and(|s| s.starts_with("True")) {
        return Err(err(
            "Fortran-order arrays are not supported; save with np.ascontiguousarray",
        ));
    }
    let shape_s = field("shape").ok_or_else(|| err("no shape"))?;
    let close = shape_s.find(')').ok_or_else(|| err("bad shape"))?;
    let shape: Vec<usize> = shape_s[1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| err("bad shape")))
        .collect::<Result<_, _>>()?;
    let count: usize = shape.iter().product();
    let body = &bytes[start + hlen..];
    if body.len() != count * elem {
        return Err(err(&format!(
            "expected {} data bytes for shape {shape:?}, found {}",
            count * elem,
            body.len()
        )));
    }
    let data = if elem == 4 {
        body.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        body.chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect()
    };
    Ok((data, shape))
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
    crate::grid::write_atomic(path, &to_bytes(data, shape)).map_err(|source| NpyError::Io {
        path: path.display().to_string(),
        source,
    })
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
