//! Refusing an oversized body so that the client hears the refusal.
//!
//! A request that declares a body longer than its route accepts is answered 413 before any
//! handler runs. Leaving the rest of that body unread and closing the connection resets it under
//! a client that is still sending, which then reports a broken pipe instead of the 413 (seen by
//! the tests and by schemathesis). So a declared body of up to [`DRAIN_MAX`] bytes is read and
//! thrown away first — a lingering close, as nginx does; anything larger is cut off at once.

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

/// Most bytes read and discarded to deliver a 413 cleanly.
pub const DRAIN_MAX: u64 = 4 << 20;

pub async fn refuse_oversized(limit: usize, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => {
            if n <= DRAIN_MAX {
                let mut body = req.into_body().into_data_stream();
                while let Some(Ok(_)) = body.next().await {}
            }
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is over this route's limit of {limit} bytes"),
            )
            .into_response()
        }
        _ => next.run(req).await,
    }
}
