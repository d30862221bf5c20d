//! HTTP operations, one module per resource; the route table in `routes.rs` wires them.

pub mod admin;
pub mod audit;
pub mod charts;
pub mod live;
pub mod ops;
pub mod playback;
pub mod privacy;
pub mod recordings;
pub mod session;
pub mod waveform;

use crate::error::ApiError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};

/// `axum::Json`, but a malformed body answers in our error format with what was wrong.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let mut e = ApiError::bad_request(r.body_text());
        e.status = r.status();
        e
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request(r.body_text())
    }
}

pub use crate::clock::rfc3339;

/// An RFC 3339 time from a request's `field`.
pub fn parse_rfc3339(field: &str, s: &str) -> Result<i64, ApiError> {
    crate::clock::parse_rfc3339(s).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`{field}` must be an RFC 3339 time, e.g. 2026-11-28T14:05:00Z"
        ))
    })
}
