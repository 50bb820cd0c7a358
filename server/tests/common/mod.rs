//! Helpers for the handler tests: request bodies built in memory (PNGs, zips, tars, npz,
//! multipart forms), including the malformed ones; tiny ONNX generators (`onnx`)
//! and the class-conditional fixture made of them (`conditional`).

#![allow(dead_code)]

pub mod conditional;
pub mod onnx;

use std::io::{Cursor, Write};

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;

/// Synthetic reference statistics: 8 random 2048-d feature rows and their Gaussian, its
/// diagonal regularised so the covariance is well conditioned.
pub fn synthetic_reference() -> (Vec<f32>, pagan_shared::Gaussian) {
    let d = 2048;
    let mut r = pagan_shared::rng::SplitMix64::new(1);
    let feats: Vec<f32> = (0..8 * d).map(|_| r.next_f32()).collect();
    let mut stats = pagan_shared::FeatureStats::new(d).expect("stats");
    stats.add_rows(&feats, 8).expect("rows");
    let mut g = stats.finalize().expect("gaussian");
    for i in 0..d {
        g.sigma[i * d + i] += 0.1;
    }
    (feats, g)
}

/// A grey (c = 1) or RGB (c = 3) PNG with a deterministic pattern.
pub fn png(w: u32, h: u32, c: usize, seed: u8) -> Vec<u8> {
    let px: Vec<u8> = (0..(w * h) as usize * c)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed.wrapping_mul(17)))
        .collect();
    pagan_shared::grid::encode_png(w, h, c, &px).expect("png")
}

/// A zip with the given (name, bytes) entries, deflated.
pub fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        zw.start_file(*name, opts).expect("start");
        zw.write_all(bytes).expect("write");
    }
    zw.finish().expect("finish").into_inner()
}

/// A ustar archive with raw entry names (no validation, so `../x` can be written).
pub fn tar_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, bytes) in entries {
        let mut h = tar::Header::new_ustar();
        {
            let raw = h.as_old_mut();
            raw.name = [0; 100];
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
        }
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(bytes);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// `.npy` bytes of a uint8 array.
pub fn npy_u8(shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|s| s.to_string()).collect();
    let shape_s = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut h = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': {shape_s}, }}");
    let total = 10 + h.len() + 1;
    h.push_str(&" ".repeat((64 - total % 64) % 64));
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

/// An `.npz` of (key, npy bytes) members.
pub fn npz_of(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in members {
        zw.start_file(format!("{name}.npy"), opts).expect("start");
        zw.write_all(bytes).expect("write");
    }
    zw.finish().expect("finish").into_inner()
}

/// pytorch-fid statistics as float32 npz: mu [d], sigma [d, d].
pub fn stats_npz(mu: &[f32], sigma: &[f32]) -> Vec<u8> {
    let d = mu.len();
    npz_of(&[
        ("mu", pagan_shared::npy::to_bytes(mu, &[d])),
        (
            "sigma",
            pagan_shared::npy::to_bytes(sigma, &[sigma.len() / d.max(1), d]),
        ),
    ])
}

/// Boundary used by [`multipart`].
pub const BOUNDARY: &str = "pagan-test-boundary-7d3a";

/// A multipart/form-data body of (field, filename, content type, bytes) parts.
pub fn multipart(parts: &[(&str, Option<&str>, &str, Vec<u8>)]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (field, filename, ctype, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let fname = filename
            .map(|f| format!("; filename=\"{f}\""))
            .unwrap_or_default();
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{field}\"{fname}\r\n").as_bytes(),
        );
        body.extend_from_slice(format!("Content-Type: {ctype}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// Reads a response body as JSON.
pub async fn json<B: MessageBody>(res: ServiceResponse<B>) -> serde_json::Value {
    let bytes = actix_web::test::read_body(res).await;
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// Asserts an error response's status and code.
pub async fn assert_error<B: MessageBody>(
    res: ServiceResponse<B>,
    status: u16,
    code: &str,
) -> serde_json::Value {
    let got = res.status().as_u16();
    let v = json(res).await;
    assert_eq!(got, status, "status for {v}");
    assert_eq!(v["error"]["code"], code, "code in {v}");
    assert!(
        v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {v}"
    );
    v
}
