//! The HTTP face of every failure: [`ApiError`] carries a status and a stable
//! machine-readable code, rendered as `{"error": {"code", "message"}}`. The domain
//! modules' errors are mapped here, and only here.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use pagan_shared::images::ImageError;
use serde_json::json;

use crate::models::ReferenceError;
use crate::models::classes::LabelError;
use crate::models::encode::EncodeError;
use crate::models::runtime::RuntimeError;
use crate::scoring::ScoreError;
use crate::scoring::jobs::JobError;

/// An error a request can end in. Client faults are 4xx; only server faults are 5xx.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request: bad parameters, corrupt or unsupported files (400).
    #[error("{message}")]
    BadRequest {
        /// Stable code, e.g. `corrupt_image`.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
    /// A write or compute-heavy route without the right bearer token (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Unknown model, reference, job or route (404).
    #[error("{message}")]
    NotFound {
        /// Stable code, e.g. `model_not_found`.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
    /// A known path with a method it does not serve (405).
    #[error("{message}")]
    MethodNotAllowed {
        /// Human-readable detail.
        message: String,
        /// The methods the path serves, for the `Allow` header.
        allow: String,
    },
    /// The resource already exists (409).
    #[error("{0}")]
    Conflict(String),
    /// Over a configured limit: body size, images, pixels, archive entries (413).
    #[error("{message}")]
    TooLarge {
        /// Stable code, e.g. `too_many_images`.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
    /// The request body stopped arriving for longer than the idle limit (408).
    #[error("{0}")]
    Timeout(String),
    /// A body type the endpoint does not read (415).
    #[error("{0}")]
    UnsupportedMedia(String),
    /// Well-formed but unusable content: too few images, NaN statistics (422).
    #[error("{message}")]
    Unprocessable {
        /// Stable code, e.g. `too_few_images`.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
    /// The job queue is full; retry after the given seconds (429).
    #[error("{message}")]
    Busy {
        /// Human-readable detail.
        message: String,
        /// Seconds for the `Retry-After` header.
        retry_after_s: u64,
    },
    /// A dependency (the feature extractor, a model) is not loaded (503).
    #[error("{0}")]
    Unavailable(String),
    /// A fault on our side (500); the message is logged and returned.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 with `code`.
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A 404 with `code`.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }

    /// A 413 with `code`.
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::TooLarge {
            code,
            message: message.into(),
        }
    }

    /// A 422 with `code`.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            message: message.into(),
        }
    }

    /// A 500 for a fault on our side.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    /// The stable code clients can switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::NotFound { code, .. }
            | Self::TooLarge { code, .. }
            | Self::Unprocessable { code, .. } => code,
            Self::Unauthorized(_) => "unauthorized",
            Self::Timeout(_) => "request_timeout",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::UnsupportedMedia(_) => "unsupported_media_type",
            Self::Busy { .. } => "busy",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

/// The JSON body of an error response.
pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({ "error": { "code": code, "message": message } })
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if matches!(self, Self::Internal(_)) {
            tracing::error!(error = %self, "internal error");
        }
        let mut res = HttpResponse::build(self.status_code());
        match self {
            Self::Busy { retry_after_s, .. } => {
                res.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after_s)));
            }
            Self::MethodNotAllowed { allow, .. } => {
                res.insert_header((header::ALLOW, allow.as_str()));
            }
            Self::Unauthorized(_) => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        res.json(error_body(self.code(), &self.to_string()))
    }
}

impl From<&ScoreError> for ApiError {
    fn from(e: &ScoreError) -> Self {
        use ScoreError as S;
        let m = e.to_string();
        match e {
            S::Image(ImageError::Unsupported { .. }) | S::UnsupportedFile(_) => Self::UnsupportedMedia(m),
            S::Image(ImageError::Corrupt { .. } | ImageError::Shape { .. }) => Self::bad("corrupt_image", m),
            S::Image(ImageError::TooManyPixels { .. }) => {
                Self::too_large("too_many_pixels", format!("{m} (--max-pixels)"))
            }
            S::CorruptArchive { .. } => Self::bad("corrupt_archive", m),
            S::TooManyImages(_) => Self::too_large("too_many_images", m),
            S::TooManyEntries { .. } => Self::too_large("too_many_entries", m),
            S::ArchiveTooLarge { .. } => Self::too_large("archive_too_large", m),
            S::UnsafePath { .. } => Self::bad("unsafe_path", m),
            S::UnsupportedEntry { .. } => Self::bad("unsupported_entry", m),
            S::BadNpz { .. } => Self::bad("bad_npz", m),
            S::NpzMember(_) => Self::unprocessable("bad_npz", m),
            S::BadDtype { .. } => Self::unprocessable("bad_dtype", m),
            S::FortranOrder(_) => Self::unprocessable("bad_layout", m),
            S::BadShape { .. } => Self::unprocessable("bad_shape", m),
            S::EmptySet(_) => Self::unprocessable("empty_set", m),
            S::TooFewImages { .. } => Self::unprocessable("too_few_images", m),
            S::NoReferenceFeatures(_) => Self::unprocessable("reference_has_no_features", m),
            S::Statistics(_) => Self::unprocessable("scoring_failed", m),
            S::Reference(r) => r.into(),
            S::Runtime(_) => Self::internal(m),
            S::Io(_) => Self::internal(m),
        }
    }
}

impl From<ScoreError> for ApiError {
    fn from(e: ScoreError) -> Self {
        (&e).into()
    }
}

impl From<ReferenceError> for ApiError {
    fn from(e: ReferenceError) -> Self {
        (&e).into()
    }
}

impl From<&ReferenceError> for ApiError {
    fn from(e: &ReferenceError) -> Self {
        let m = e.to_string();
        match e {
            ReferenceError::BadName => Self::bad("bad_name", m),
            ReferenceError::Exists(_) => Self::Conflict(m),
            ReferenceError::NotNpz(_) => Self::bad("bad_npz", m),
            ReferenceError::Invalid(_) | ReferenceError::Dimension(_) => {
                Self::unprocessable("invalid_statistics", m)
            }
            ReferenceError::Io(_) => Self::internal(m),
        }
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::QueueFull { retry_after_s } => Self::Busy {
                message: e.to_string(),
                retry_after_s,
            },
            JobError::WorkerGone => Self::Unavailable(e.to_string()),
        }
    }
}

impl From<EncodeError> for ApiError {
    fn from(e: EncodeError) -> Self {
        Self::internal(e.to_string())
    }
}

impl From<LabelError> for ApiError {
    fn from(e: LabelError) -> Self {
        let m = e.to_string();
        match e {
            LabelError::NotConditional(_) => Self::unprocessable("model_not_conditional", m),
            LabelError::UnknownClass { .. } | LabelError::ClassOutOfRange { .. } => Self::bad("bad_class", m),
            LabelError::Both
            | LabelError::LabelOutOfRange { .. }
            | LabelError::Length { .. }
            | LabelError::Syntax(_) => Self::bad("bad_labels", m),
        }
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        Self::internal(e.to_string())
    }
}

/// `e` in the shape of the API `path` belongs to: the KServe V2 protocol's
/// `{"error": "message"}` under `/v2`, ours elsewhere (same status and headers).
pub fn response_for(path: &str, e: &ApiError) -> HttpResponse {
    let res = e.error_response();
    if path == "/v2" || path.starts_with("/v2/") {
        res.set_body(actix_web::body::BoxBody::new(
            json!({ "error": e.to_string() }).to_string(),
        ))
    } else {
        res
    }
}

/// Maps actix's own extractor errors (bad JSON, query, path) to our JSON shape.
pub fn extractor_error(err: impl std::fmt::Display, code: &'static str) -> actix_web::Error {
    ApiError::bad(code, err.to_string()).into()
}

/// A JSON body that could not be read: 415 for another content type, 413 past the limit,
/// else 400 `bad_json`.
pub fn json_error(err: actix_web::error::JsonPayloadError, limit: usize) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::ContentType => {
            ApiError::UnsupportedMedia("a JSON body needs `content-type: application/json`".into())
        }
        J::Overflow { .. } | J::OverflowKnownLength { .. } => ApiError::too_large(
            "body_too_large",
            format!("a JSON body may have at most {limit} bytes"),
        ),
        other => ApiError::bad("bad_json", other.to_string()),
    }
    .into()
}

/// A query string that does not parse: 400 `bad_query`, quoting (the start of) the query,
/// since the parser's message does not name the parameter.
pub fn query_error(err: impl std::fmt::Display, query: &str) -> actix_web::Error {
    let shown: String = query.chars().take(200).collect();
    let more = if shown.len() < query.len() { "..." } else { "" };
    ApiError::bad("bad_query", format!("{err} (in the query `{shown}{more}`)")).into()
}
