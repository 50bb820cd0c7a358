//! Bearer tokens: with `--token` set, every write and compute-heavy route wants
//! `Authorization: Bearer TOKEN` (401 otherwise); health, readiness, metrics, the OpenAPI
//! document and listings stay open. Which routes are guarded is decided where they are
//! registered ([`Access`]).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web;

use super::error::{ApiError, response_for};
use crate::state::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, metrics, listings).
    Open,
    /// Holders of the token, when one is configured (writes and compute-heavy work).
    Token,
}

/// Compares in time independent of where the strings differ (the length is not secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why `authorization` (the header's value) does not carry `token`, if it does not.
pub fn check(token: &str, authorization: Option<&str>) -> Result<(), ApiError> {
    let Some(value) = authorization else {
        return Err(ApiError::Unauthorized(
            "this route needs `Authorization: Bearer <token>` (the server was started with --token)".into(),
        ));
    };
    // The scheme is case-insensitive (RFC 9110 11.1).
    let presented = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest,
        _ => {
            return Err(ApiError::Unauthorized(
                "the Authorization header must be `Bearer <token>`".into(),
            ));
        }
    };
    if same(presented.trim().as_bytes(), token.trim().as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(
            "the bearer token is not the server's".into(),
        ))
    }
}

/// Middleware for one resource: lets the request through when `access` is open, no token
/// is configured, or the request carries it; answers 401 otherwise.
pub async fn guard(
    access: Access,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Open routes (most requests) look at nothing; guarded ones borrow the token.
    let refused = match access {
        Access::Open => None,
        Access::Token => req
            .app_data::<web::Data<AppState>>()
            .and_then(|s| s.config.token.as_ref())
            .and_then(|token| {
                let presented = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                check(token.expose(), presented).err()
            }),
    };
    if let Some(e) = refused {
        let res = response_for(req.path(), &e);
        return Ok(req.into_response(res));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        assert!(check("s3cret-token", Some("Bearer s3cret-token")).is_ok());
        assert!(check("s3cret-token", Some("bearer s3cret-token")).is_ok());
        assert!(check("s3cret-token", Some("BEARER s3cret-token")).is_ok());
        assert!(
            check(" s3cret-token\n", Some("Bearer s3cret-token")).is_ok(),
            "configured token trimmed"
        );
        for bad in [
            None,
            Some("s3cret-token"),
            Some("Basic s3cret-token"),
            Some("Bearer s3cret-tokem"),
            Some("Bearer s3cret-token-and-more"),
            Some("Bearer "),
        ] {
            let e = check("s3cret-token", bad).expect_err("refused");
            assert_eq!(e.status_code().as_u16(), 401, "{bad:?}");
        }
    }
}
