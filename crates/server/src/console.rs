//! The web console's static files, compiled into the binary: one HTML shell, its script, its
//! strings and its style sheet. They hold no data; everything a page shows comes from the JSON
//! API under the caller's own session, so the API's extractors stay the one place where access
//! is decided (the console adds no privileged code path).
//!
//! What this module must not do: render anything that depends on who is asking. A file that
//! did would have to leave the public part of the route table.

use crate::error::ApiError;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The console's Content-Security-Policy: script, style, images, media and fetches from this
/// origin only; no inline script or style, no eval, no framing, forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     media-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

const SHELL: &str = include_str!("../assets/console/index.html");

/// Every file under `/console/assets/`, by name.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/console/app.js"),
    ),
    (
        "views.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/console/views.js"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/console/i18n.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../assets/console/icon.svg"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/console/app.css"),
    ),
];

fn with_csp(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    resp
}

/// The HTML shell; the script draws the page for the signed-in user (or the sign-in form).
pub async fn shell() -> Response {
    with_csp("text/html; charset=utf-8", SHELL)
}

pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => with_csp(content_type, body),
        None => ApiError::not_found().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_forbids_inline_and_eval() {
        assert!(!CSP.contains("unsafe"));
        assert!(CSP.contains("script-src 'self';"));
    }

    /// Inline script or handlers would be refused by the CSP, so the console would silently break.
    #[test]
    fn shell_has_no_inline_script_or_style() {
        let lower = SHELL.to_ascii_lowercase();
        assert!(!lower.contains("<script>"), "inline <script>");
        assert!(!lower.contains(" style="), "inline style attribute");
        assert!(!lower.contains(" onclick="), "inline handler");
        for (name, _, body) in ASSETS {
            assert!(!body.contains("innerHTML"), "{name} uses innerHTML");
            assert!(!body.contains("eval("), "{name} uses eval");
        }
    }
}
