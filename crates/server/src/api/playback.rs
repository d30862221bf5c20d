//! Playback with a grant: decrypts as it streams, honours one HTTP byte range, and starts at
//! any offset with one chunk of work (age STREAM chunks are independently authenticated).
//!
//! Order matters: grant checked → access recorded durably → first chunk decrypted and
//! authenticated → headers sent. A chunk that fails authentication is never sent, and is
//! recorded as an integrity failure.

use crate::api::Path;
use crate::clock::unix_now;
use crate::error::{ApiError, ApiResult};
use crate::principal::Listener;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use callvault_auth::token::{self, Kind};
use callvault_core::{TenantId, UserId};
use callvault_crypto::{Header, open_recording};
use callvault_media::Container;
use callvault_store::Grant;
use callvault_store::{LiveCall, StoreError};
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

const PIECE: usize = 64 * 1024;

/// Parses a single `bytes=` range against `size`; `Ok(None)` means the whole file.
fn parse_range(h: Option<&HeaderValue>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = h else { return Ok(None) };
    let v = v.to_str().map_err(|_| ())?.trim();
    let spec = v.strip_prefix("bytes=").ok_or(())?;
    if spec.contains(',') {
        return Err(()); // multiple ranges: not offered
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size.checked_sub(1).ok_or(())?)
        }
        (s, "") => (s.parse().map_err(|_| ())?, size.checked_sub(1).ok_or(())?),
        (s, e) => {
            let (s, e): (u64, u64) = (s.parse().map_err(|_| ())?, e.parse().map_err(|_| ())?);
            (s, e.min(size.saturating_sub(1)))
        }
    };
    if start > end || start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// The grant behind a playback URL, if it is this listener's and still valid. Someone else's
/// grant answers like an unknown one.
pub async fn valid_grant(
    st: &AppState,
    tenant: &TenantId,
    user: &UserId,
    grant: &str,
) -> ApiResult<Grant> {
    let hash = token::hash(Kind::Grant, grant).map_err(|_| ApiError::not_found())?;
    let g = st.meta.get_grant(&hash.0).await?;
    if g.user_id != *user || g.tenant != *tenant {
        return Err(ApiError::not_found());
    }
    if g.expires_at <= unix_now() {
        let mut e =
            ApiError::forbidden("this playback grant has expired; state your purpose again");
        e.code = "grant_expired";
        return Err(e);
    }
    Ok(g)
}

/// Decrypted pieces of a range, in order; an error ends the stream.
type Pieces = mpsc::Receiver<std::io::Result<Vec<u8>>>;
/// Whether the first piece of a range checked out.
type FirstPiece = tokio::sync::oneshot::Receiver<Result<(), ()>>;

/// Decrypts `len` bytes from `start` on a blocking thread, in pieces: the pieces come through
/// the returned channel, and the one-shot says whether the first piece checked out (so the
/// response can still become an error before any byte is sent).
fn spawn_reader(
    header: Header,
    blob: Box<dyn callvault_store::BlobRead>,
    identity: std::sync::Arc<callvault_crypto::TenantIdentity>,
    start: u64,
    len: u64,
) -> (Pieces, FirstPiece) {
    let (tx, rx) = mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Result<(), ()>>();
    tokio::task::spawn_blocking(move || {
        let opened = open_recording(&header, blob, &identity).ok();
        let Some(mut r) = opened else {
            let _ = first_tx.send(Err(()));
            return;
        };
        if r.seek(SeekFrom::Start(start)).is_err() {
            let _ = first_tx.send(Err(()));
            return;
        }
        let mut remaining = len;
        let mut first_tx = Some(first_tx);
        loop {
            let want = remaining.min(PIECE as u64) as usize;
            let mut buf = vec![0u8; want];
            let res = r.read_exact(&mut buf);
            if let Some(f) = first_tx.take() {
                let ok = res.is_ok();
                let _ = f.send(if ok { Ok(()) } else { Err(()) });
                if !ok {
                    return;
                }
            }
            match res {
                Ok(()) => {
                    remaining -= want as u64;
                    if tx.blocking_send(Ok(buf)).is_err() || remaining == 0 {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    (rx, first_rx)
}

pub async fn play(
    State(st): State<AppState>,
    Listener(p, tenant, user): Listener,
    Path(grant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let keys = st.keys()?;
    let g = valid_grant(&st, &tenant, &user, &grant).await?;
    let rec = match st.meta.get_recording(&tenant, &g.recording).await {
        Err(StoreError::NotFound) => {
            let call = st.meta.get_live_call(&tenant, &g.recording).await?;
            return follow_live(&st, &p, &g.purpose, call).await;
        }
        other => other?,
    };
    let size = rec.size;
    let range = parse_range(headers.get(header::RANGE), size).map_err(|()| {
        let mut e = ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "bad_range",
            format!("send one range within 0-{}", size.saturating_sub(1)),
        );
        e.detail = None;
        e
    })?;
    let (start, end) = range.unwrap_or((0, size.saturating_sub(1)));
    let len = if size == 0 { 0 } else { end - start + 1 };

    let mut ev = p.event("recording.play", "ok");
    ev.target = Some(rec.id.to_string());
    ev.purpose = Some(g.purpose.clone());
    ev.details = Some(serde_json::json!({ "range": [start, end] }));
    st.audit
        .record(ev.clone())
        .await
        .map_err(ApiError::audit_unavailable)?;

    let identity = keys.identity(&st.meta, &tenant, rec.key_id).await?;
    let blob = st.blobs.open(&rec.blob).await?;
    let header = Header::from_bytes(rec.header.clone());
    let (rx, first_rx) = spawn_reader(header, blob, identity, start, len);
    if len > 0 && first_rx.await != Ok(Ok(())) {
        st.metrics
            .integrity_failures
            .fetch_add(1, Ordering::Relaxed);
        ev.result = "integrity_error";
        st.audit
            .record(ev)
            .await
            .map_err(ApiError::audit_unavailable)?;
        return Err(ApiError::integrity());
    }
    st.metrics.playbacks.fetch_add(1, Ordering::Relaxed);
    let stream = futures_util::stream::unfold(
        (rx, st.clone(), ev, false),
        |(mut rx, st, mut ev, done)| async move {
            if done {
                return None;
            }
            match rx.recv().await {
                Some(Ok(b)) => Some((Ok(b), (rx, st, ev, false))),
                Some(Err(e)) => {
                    // A later chunk failed authentication: the response stops here, and it is recorded.
                    st.metrics
                        .integrity_failures
                        .fetch_add(1, Ordering::Relaxed);
                    ev.result = "integrity_error";
                    let _ = st.audit.record(ev.clone()).await;
                    Some((Err(e), (rx, st, ev, true)))
                }
                None => None,
            }
        },
    );
    let content_type = Container::parse(&rec.container)
        .map(Container::content_type)
        .unwrap_or("application/octet-stream");
    let mut resp = Response::builder()
        .status(if range.is_some() {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        })
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, len);
    if range.is_some() {
        resp = resp.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"));
    }
    resp.body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// A call still being recorded: the audio acknowledged so far, then each new chunk, until the
/// call ends. No ranges (the length is not known yet); the access is recorded first, as for
/// any playback.
async fn follow_live(
    st: &AppState,
    p: &crate::principal::Principal,
    purpose: &str,
    call: LiveCall,
) -> ApiResult<Response> {
    let keys = st.keys()?;
    let mut ev = p.event("recording.play", "ok");
    ev.target = Some(call.id.to_string());
    ev.purpose = Some(purpose.to_owned());
    ev.details = Some(serde_json::json!({ "live": true }));
    st.audit
        .record(ev.clone())
        .await
        .map_err(ApiError::audit_unavailable)?;
    let identity = keys.identity(&st.meta, &call.tenant, call.key_id).await?;
    let rx = crate::live::follow(st.ingest.clone(), identity, call, ev)?;
    st.metrics.playbacks.fetch_add(1, Ordering::Relaxed);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "audio/wav")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(e.to_string()))
}
