//! Live ingest over HTTPS (recorder): open a call, send chunks (one request each, or over a
//! WebSocket), ask where to resume, finish. Thin translation onto `crate::live::LiveCalls`,
//! which holds every rule; the protocol is described in docs/live-ingest.md.

use crate::api::{Json, Path, parse_rfc3339, recordings::short_text};
use crate::error::{ApiError, ApiResult};
use crate::live::{CallFormat, CallStatus, LiveError, OpenCall};
use crate::principal::Recorder;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use callvault_core::{Direction, E164, RecordingId, TenantId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// When the call started (RFC 3339).
    pub started_at: String,
    /// `inbound`, `outbound` or `internal`.
    pub direction: String,
    pub caller_number: Option<String>,
    pub agent_id: Option<String>,
    pub queue: Option<String>,
    pub external_call_id: Option<String>,
    /// `mulaw` or `alaw` (G.711, 8 bits), or `pcm16` (little-endian).
    pub codec: String,
    /// 8000 or 16000.
    pub sample_rate: u32,
    /// 1, or 2 interleaved: caller left, agent right.
    pub channels: u16,
    /// Duration of every chunk but the last, 10 to 1000 ms (default 200).
    pub frame_ms: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct OpenedCall {
    /// The call's id; the finished recording keeps it.
    pub id: String,
    /// Bytes every chunk but the last must carry.
    pub frame_bytes: u32,
    /// How far beyond the newest acknowledged chunk a chunk may be.
    pub window: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ChunkAck {
    pub seq: u64,
    /// True if this sequence number was already stored (the first copy stays).
    pub duplicate: bool,
}

#[derive(Serialize, ToSchema)]
pub struct CallStatusView {
    pub id: String,
    /// `open`, `finished`, `incomplete` or `stored`.
    pub state: String,
    /// Every chunk below this is acknowledged: resume here.
    pub acked_through: u64,
    /// The newest acknowledged chunk, if any.
    pub newest: Option<u64>,
    /// Chunks below `newest` (or below `chunks`, once finished) never received, as
    /// `[first, last]`; at most 1000 ranges.
    pub missing: Vec<[u64; 2]>,
    /// The number of chunks the recorder declared at finish.
    pub chunks: Option<u64>,
    pub frame_bytes: u32,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct FinishRequest {
    /// How many chunks the call has (sequence numbers 0 to chunks − 1); those never received
    /// are gaps. Default: up to the newest acknowledged chunk.
    pub chunks: Option<u64>,
}

impl From<LiveError> for ApiError {
    fn from(e: LiveError) -> Self {
        let msg = e.to_string();
        match e {
            LiveError::UnknownCall => ApiError::new(StatusCode::NOT_FOUND, "not_found", msg),
            LiveError::Closed(_) => ApiError::new(StatusCode::CONFLICT, "call_closed", msg),
            LiveError::BadFormat(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unsupported_format", msg)
            }
            LiveError::ChunkSize { len, frame, .. } if len > frame as usize => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "chunk_too_large", msg)
            }
            LiveError::ChunkSize { .. } | LiveError::BadTotal { .. } => ApiError::bad_request(msg),
            LiveError::OutOfWindow { .. } => {
                ApiError::new(StatusCode::CONFLICT, "out_of_window", msg)
            }
            LiveError::TooLong { .. } => ApiError::new(StatusCode::CONFLICT, "call_too_long", msg),
            LiveError::Audit(d) => ApiError::audit_unavailable(d),
            LiveError::Journal(d) => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "journal_unavailable",
                    "the chunk could not be made durable and is not acknowledged; send it again",
                );
                e.detail = Some(d);
                e
            }
            LiveError::Store(s) => s.into(),
            LiveError::Crypto(c) => ApiError::internal(c.to_string()),
            LiveError::Keys(k) => k.into(),
            LiveError::Storing(s) => s.into(),
        }
    }
}

fn status_view(s: &CallStatus) -> CallStatusView {
    let end = s
        .call
        .total_chunks
        .unwrap_or(0)
        .max(s.acked.highest().map_or(0, |h| h + 1));
    let mut missing = s.acked.missing_below(end);
    missing.truncate(1000);
    CallStatusView {
        id: s.call.id.to_string(),
        state: s.call.state.as_str().to_owned(),
        acked_through: s.acked.contiguous(),
        newest: s.acked.highest(),
        missing,
        chunks: s.call.total_chunks,
        frame_bytes: s.call.frame_bytes,
    }
}

pub async fn open(
    State(st): State<AppState>,
    Recorder(p, tenant): Recorder,
    Json(req): Json<OpenRequest>,
) -> ApiResult<(StatusCode, axum::Json<OpenedCall>)> {
    let format = CallFormat::new(
        &req.codec,
        req.sample_rate,
        req.channels,
        req.frame_ms.unwrap_or(200),
    )?;
    let caller = req.caller_number.as_deref().map(E164::parse).transpose()?;
    let caller_hash = match (&caller, &st.keys) {
        (Some(c), Some(keys)) => Some(keys.caller_key(&st.meta, &tenant).await?.hash(c.expose())),
        _ => None,
    };
    let open = OpenCall {
        format,
        started_at: parse_rfc3339("started_at", &req.started_at)?,
        direction: Direction::parse(&req.direction)?,
        caller,
        caller_hash,
        agent_id: short_text("agent_id", req.agent_id)?,
        queue: short_text("queue", req.queue)?,
        external_call_id: short_text("external_call_id", req.external_call_id)?,
    };
    // Nothing is recorded that no recording policy asks for (refusals are audited).
    crate::lifecycle::policy::admit_call(&st, &p.event("", ""), &tenant, open.queue.as_deref())
        .await?;
    let (key_id, recipient) = st.active_recipient(&tenant).await?;
    let call = st
        .live
        .open(
            &tenant,
            key_id,
            recipient,
            open,
            p.event("recording.live_open", "ok"),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(OpenedCall {
            id: call.id.to_string(),
            frame_bytes: call.frame_bytes,
            window: st.live.limits().window,
        }),
    ))
}

pub async fn status(
    State(st): State<AppState>,
    Recorder(_, tenant): Recorder,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<CallStatusView>> {
    let id = RecordingId::parse(&id)?;
    Ok(axum::Json(status_view(
        &st.live.status(&tenant, &id).await?,
    )))
}

pub async fn chunk(
    State(st): State<AppState>,
    Recorder(_, tenant): Recorder,
    Path((id, seq)): Path<(String, u64)>,
    body: Bytes,
) -> ApiResult<axum::Json<ChunkAck>> {
    let id = RecordingId::parse(&id)?;
    let ack = st.live.append(&tenant, &id, seq, &body).await?;
    Ok(axum::Json(ChunkAck {
        seq: ack.seq,
        duplicate: ack.duplicate,
    }))
}

/// Marks the call finished; a full node's assembler stores it as a recording soon after.
pub async fn finish(
    State(st): State<AppState>,
    Recorder(p, tenant): Recorder,
    Path(id): Path<String>,
    Json(req): Json<FinishRequest>,
) -> ApiResult<axum::Json<CallStatusView>> {
    let id = RecordingId::parse(&id)?;
    finish_call(&st, &p, &tenant, &id, req.chunks)
        .await
        .map(axum::Json)
}

async fn finish_call(
    st: &AppState,
    p: &crate::principal::Principal,
    tenant: &TenantId,
    id: &RecordingId,
    chunks: Option<u64>,
) -> ApiResult<CallStatusView> {
    let done = st
        .live
        .finish(
            tenant,
            id,
            chunks,
            &[],
            p.event("recording.live_finish", "ok"),
        )
        .await?;
    Ok(status_view(&done))
}

/// The same protocol over one WebSocket: binary messages are chunks (8-byte big-endian
/// sequence number, then the audio); each gets a text answer, `{"ack":n,"duplicate":b}` or
/// `{"seq":n,"error":code,"message":…}`. A text message `{"finish":{"chunks":n}}` finishes the
/// call and is answered with its status; the server then closes.
pub async fn stream(
    State(st): State<AppState>,
    Recorder(p, tenant): Recorder,
    Path(id): Path<String>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    // axum's own rejection is plain text; every error of the API is the one JSON error body.
    let ws = ws.map_err(|e| {
        ApiError::bad_request(format!(
            "this route speaks WebSocket only (GET with Upgrade: websocket): {}",
            e.body_text()
        ))
    })?;
    let id = RecordingId::parse(&id)?;
    // Refuse an unknown or closed call before upgrading, with a plain HTTP error.
    st.live.status(&tenant, &id).await?;
    Ok(ws
        .max_message_size(crate::routes::SMALL_BODY)
        // tungstenite zero-fills its whole read buffer on every read; at the 128 KiB default
        // that memset was a tenth of the server's CPU with 2,000 calls of 3 KB frames.
        .read_buffer_size(16 * 1024)
        .on_upgrade(move |socket| serve_socket(st, p, tenant, id, socket)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Control {
    finish: FinishRequest,
}

async fn serve_socket(
    st: AppState,
    p: crate::principal::Principal,
    tenant: TenantId,
    id: RecordingId,
    mut socket: WebSocket,
) {
    while let Some(Ok(msg)) = socket.recv().await {
        let reply = match msg {
            Message::Binary(b) if b.len() >= 8 => {
                let (head, audio) = b.split_at(8);
                let mut seq_bytes = [0u8; 8];
                seq_bytes.copy_from_slice(head);
                let seq = u64::from_be_bytes(seq_bytes);
                match st.live.append(&tenant, &id, seq, audio).await {
                    Ok(a) => serde_json::json!({ "ack": a.seq, "duplicate": a.duplicate }),
                    Err(e) => {
                        let e = ApiError::from(e);
                        serde_json::json!({ "seq": seq, "error": e.code, "message": e.message })
                    }
                }
            }
            Message::Text(t) => match serde_json::from_str::<Control>(t.as_str()) {
                Ok(c) => {
                    let reply = match finish_call(&st, &p, &tenant, &id, c.finish.chunks).await {
                        Ok(v) => serde_json::to_value(v).unwrap_or_default(),
                        Err(e) => serde_json::json!({ "error": e.code, "message": e.message }),
                    };
                    let _ = socket.send(Message::Text(reply.to_string().into())).await;
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                Err(_) => serde_json::json!({
                    "error": "bad_request",
                    "message": "text messages are control messages: send {\"finish\":{\"chunks\":n}}",
                }),
            },
            Message::Binary(_) => serde_json::json!({
                "error": "bad_request",
                "message": "a chunk is an 8-byte big-endian sequence number followed by the audio",
            }),
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if socket
            .send(Message::Text(reply.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
    }
}
