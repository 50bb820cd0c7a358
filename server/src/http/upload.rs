//! Receiving uploads: the request body (raw, or each file of a multipart form) is
//! streamed into files in a private temp folder, counting bytes against the body limit,
//! so memory does not grow with the upload size. What arrives is a
//! `crate::scoring::upload::Upload`, the input of scoring and reference uploads.

use std::io::Write;
use std::time::Duration;

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;

use super::error::ApiError;
use crate::scoring::upload::{Part, Upload};

fn too_large(limit: u64) -> ApiError {
    ApiError::too_large(
        "body_too_large",
        format!("request body exceeds the limit of {limit} bytes (--max-body-bytes)"),
    )
}

/// The next item of `stream`, or 408 when nothing arrives for `idle`: a client that stops
/// sending would otherwise hold its upload (temp files, a scoring slot) forever. It is a
/// limit on silence, not on the upload's duration.
async fn next_within<S: futures_util::Stream + Unpin>(
    stream: &mut S,
    idle: Duration,
) -> Result<Option<S::Item>, ApiError> {
    tokio::time::timeout(idle, stream.next()).await.map_err(|_| {
        ApiError::Timeout(format!(
            "the request body sent nothing for {} s (--body-idle-timeout-s)",
            idle.as_secs()
        ))
    })
}

fn io_err(e: std::io::Error) -> ApiError {
    ApiError::internal(format!("writing upload to a temp file: {e}"))
}

/// 413 before reading a byte when the declared Content-Length is over `limit`.
fn refuse_declared_over(req: &HttpRequest, limit: u64) -> Result<(), ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    Ok(())
}

/// Streams chunks into `file`, failing with 413 once `total` passes `limit` and with 408
/// when no chunk arrives for `idle`.
/// The writes are synchronous: they go to the page cache in chunk-sized pieces, which
/// costs far less than a hop to the blocking pool per chunk.
async fn copy_stream<S, E>(
    mut stream: S,
    file: &mut std::fs::File,
    total: &mut u64,
    limits: BodyLimits,
    on_err: impl Fn(E) -> ApiError,
) -> Result<u64, ApiError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, E>> + Unpin,
{
    let limit = limits.max_bytes;
    let mut size = 0u64;
    while let Some(chunk) = next_within(&mut stream, limits.idle).await? {
        let chunk = chunk.map_err(&on_err)?;
        size += chunk.len() as u64;
        *total += chunk.len() as u64;
        if *total > limit {
            return Err(too_large(limit));
        }
        file.write_all(&chunk).map_err(io_err)?;
    }
    Ok(size)
}

/// How much of a request body is read, and how long it may stall.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Bytes (413 past it).
    pub max_bytes: u64,
    /// Time without a byte (408 past it).
    pub idle: Duration,
}

impl BodyLimits {
    /// The service's body limits with `max_bytes` (some endpoints read less).
    pub fn new(limits: &crate::config::Limits, max_bytes: u64) -> Self {
        Self {
            max_bytes,
            idle: limits.body_idle_timeout,
        }
    }
}

/// Receives the body of `req` into temp files: every file field of a
/// `multipart/form-data` body (fields without a file name are ignored), or the raw body.
pub async fn receive(
    req: &HttpRequest,
    payload: web::Payload,
    limits: BodyLimits,
) -> Result<Upload, ApiError> {
    refuse_declared_over(req, limits.max_bytes)?;
    // The pid in the name lets a restarted server remove what a killed one left behind.
    let dir = tempfile::Builder::new()
        .prefix(&format!(
            "{}{}-",
            pagan_shared::fs::UPLOAD_DIR_PREFIX,
            std::process::id()
        ))
        .tempdir()
        .map_err(io_err)?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut parts = Vec::new();
    let mut total = 0u64;
    let is_multipart = content_type
        .as_deref()
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("multipart/form-data"));
    if is_multipart {
        let mut form = Multipart::new(req.headers(), payload);
        while let Some(field) = next_within(&mut form, limits.idle).await? {
            let field = field.map_err(|e| ApiError::bad("bad_multipart", format!("multipart body: {e}")))?;
            let filename = field
                .content_disposition()
                .and_then(|cd| cd.get_filename())
                .map(str::to_owned);
            // Fields without a file, and a browser's unselected file input (filename="",
            // empty body), are not images.
            let Some(filename) = filename.filter(|f| !f.is_empty()) else {
                continue;
            };
            let ctype = field.content_type().map(|m| m.essence_str().to_owned());
            let path = dir.path().join(format!("part-{}", parts.len()));
            let mut file = std::fs::File::create(&path).map_err(io_err)?;
            let size = copy_stream(field, &mut file, &mut total, limits, |e| {
                ApiError::bad("bad_multipart", format!("multipart body: {e}"))
            })
            .await?;
            parts.push(Part {
                path,
                filename: Some(filename),
                content_type: ctype,
                size,
            });
        }
    } else {
        let path = dir.path().join("body");
        let mut file = std::fs::File::create(&path).map_err(io_err)?;
        let size = copy_stream(payload, &mut file, &mut total, limits, |e| {
            ApiError::bad("bad_body", format!("reading the request body: {e}"))
        })
        .await?;
        if size > 0 {
            parts.push(Part {
                path,
                filename: None,
                content_type,
                size,
            });
        }
    }
    Ok(Upload { dir, parts })
}

/// Reads a (small) body into memory, failing with 413 past `limits.max_bytes` bytes and
/// 408 when it stalls.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limits: BodyLimits,
) -> Result<Vec<u8>, ApiError> {
    let limit = limits.max_bytes;
    refuse_declared_over(req, limit)?;
    let mut body = Vec::new();
    while let Some(chunk) = next_within(&mut payload, limits.idle).await? {
        let chunk = chunk.map_err(|e| ApiError::bad("bad_body", format!("reading the request body: {e}")))?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
