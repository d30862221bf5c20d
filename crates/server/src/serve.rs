//! The accept loop: TCP → TLS (rustls) → HTTP/1.1 or HTTP/2 → the router with its guards.

use crate::bootstrap::{BootError, Bootstrapped, start_background};
use crate::principal::ClientAddr;
use crate::routes;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Headers every response carries. `no-store` everywhere: every answer is either sensitive or
/// worthless to cache.
async fn security_headers(req: Request, next: Next) -> Response {
    let tls = req.extensions().get::<Tls>().is_some();
    let st = req.extensions().get::<crate::state::AppState>().cloned();
    let mut resp = next.run(req).await;
    if let Some(st) = st {
        st.metrics.count_status(resp.status().as_u16());
    }
    let h = resp.headers_mut();
    let set = |h: &mut http::HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    // The console's files carry their own (still strict) policy; everything else allows nothing.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        set(
            h,
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        );
    }
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::CACHE_CONTROL, "no-store");
    set(
        h,
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if tls {
        set(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    resp
}

#[derive(Clone, Copy)]
struct Tls;

/// Binds, reports the bound address through `ready`, and serves until the process ends.
pub async fn serve(
    b: Bootstrapped,
    ready: impl FnOnce(SocketAddr, bool, &crate::sip::Listening),
) -> Result<(), BootError> {
    let st = b.state.clone();
    let cfg = st.cfg.clone();
    // A critical posture finding refuses to start, with the fix.
    let critical: Vec<String> = crate::posture::static_checks(&cfg)
        .into_iter()
        .filter(|f| f.severity == crate::posture::Severity::Critical)
        .map(|f| format!("[critical] {}: {} — fix: {}", f.id, f.explanation, f.fix))
        .collect();
    if !critical.is_empty() {
        return Err(BootError::Other(format!(
            "refusing to start:\n{}",
            critical.join("\n")
        )));
    }
    let ingest_only = st.keys.is_none();
    let tls = if cfg.server.insecure_plaintext {
        None
    } else {
        let (cert, key) = cfg.tls_paths();
        Some(tokio_rustls::TlsAcceptor::from(
            crate::tls::server_config(&cert, &key).map_err(BootError::Other)?,
        ))
    };
    let app = routes::router(ingest_only, cfg.server.max_upload_bytes)
        .layer(middleware::from_fn(security_headers))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(cfg.server.request_timeout_secs),
        ))
        .with_state(st.clone());
    let listener = TcpListener::bind(cfg.server.listen)
        .await
        .map_err(|e| BootError::Other(format!("cannot listen on {}: {e}", cfg.server.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| BootError::Other(e.to_string()))?;
    let sip = crate::sip::start(st.ingest.clone())
        .await
        .map_err(BootError::Other)?;
    start_background(&b)?;
    tracing::info!(%addr, tls = tls.is_some(), ingest_only, ?sip, "callvault serving");
    ready(addr, tls.is_some(), &sip);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let app = app.clone();
        let tls = tls.clone();
        let st = st.clone();
        tokio::spawn(async move {
            let is_tls = tls.is_some();
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ClientAddr(peer));
                    req.extensions_mut().insert(st.clone());
                    if is_tls {
                        req.extensions_mut().insert(Tls);
                    }
                    app.clone().oneshot(req.map(axum::body::Body::new))
                },
            );
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .header_read_timeout(Duration::from_secs(20))
                .timer(hyper_util::rt::TokioTimer::new());
            let result = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(20), acceptor.accept(tcp)).await
                    {
                        Ok(Ok(stream)) => {
                            builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                                .await
                        }
                        _ => return,
                    }
                }
                None => {
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                        .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection closed with error");
            }
        });
    }
}
