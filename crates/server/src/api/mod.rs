//! HTTP operations, one module per resource; the route table in `routes.rs` wires them.

pub mod admin;
pub mod audit;
pub mod live;
pub mod ops;
pub mod playback;
pub mod privacy;
pub mod recordings;
pub mod session;

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

/// RFC 3339 timestamps in and out of the API.
pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub fn parse_rfc3339(field: &str, s: &str) -> Result<i64, ApiError> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|d| d.unix_timestamp())
        .map_err(|_| {
            ApiError::bad_request(format!(
                "`{field}` must be an RFC 3339 time, e.g. 2026-11-28T14:05:00Z"
            ))
        })
}
