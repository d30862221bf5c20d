//! Recordings: upload (recorder), search, view and access with a purpose (listener).

use crate::api::{Json, Path, parse_rfc3339, rfc3339};
use crate::clock::unix_now;
use crate::error::{ApiError, ApiResult};
use crate::lifecycle::policy::admit_call;
use crate::principal::{Listener, Recorder};
use crate::state::AppState;
use crate::storing;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use callvault_auth::token::{self, Kind};
use callvault_core::{BlobName, Direction, E164, Purpose, PurposeCode, RecordingId};
use callvault_crypto::{ExposeSecret, RecordingWriter, decrypt_small, encrypt_small};
use callvault_media::Container;
use callvault_store::{Grant, Recording, RecordingFilter};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::atomic::Ordering;
use utoipa::ToSchema;

/// The `metadata` part of an upload.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadMetadata {
    /// When the call started (RFC 3339).
    pub started_at: String,
    /// `inbound`, `outbound` or `internal`.
    pub direction: String,
    /// The caller's number in international form; stored only encrypted and as a keyed hash.
    pub caller_number: Option<String>,
    pub agent_id: Option<String>,
    pub queue: Option<String>,
    pub external_call_id: Option<String>,
    /// `wav`, `mp3` or `ogg_opus`; when given, the audio must be that format.
    pub format: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Uploaded {
    pub id: String,
    pub container: String,
    pub codec: String,
    pub channels: u16,
    pub sample_rate: u32,
    pub duration_ms: u64,
    pub size: u64,
}

/// Multipart upload: `metadata` (JSON, see UploadMetadata) and `audio` (the file).
#[derive(ToSchema)]
#[allow(dead_code)] // documents the multipart body for OpenAPI only
pub struct UploadForm {
    pub metadata: UploadMetadata,
    #[schema(format = Binary, value_type = String)]
    pub audio: Vec<u8>,
}

pub(crate) fn short_text(field: &str, v: Option<String>) -> ApiResult<Option<String>> {
    match v {
        Some(s) if s.is_empty() || s.len() > 128 || s.chars().any(char::is_control) => {
            Err(ApiError::bad_request(format!(
                "`{field}` must be 1 to 128 characters without control characters"
            )))
        }
        other => Ok(other),
    }
}

/// The `metadata` and `audio` parts of an upload, each exactly once.
async fn read_form(
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<(UploadMetadata, Vec<u8>)> {
    // axum's own rejection is plain text; every error of the API is the one JSON error body.
    let mut form = form.map_err(|e| {
        ApiError::bad_request(format!(
            "send the recording as multipart/form-data with `metadata` and `audio` parts: {}",
            e.body_text()
        ))
    })?;
    let mut meta: Option<UploadMetadata> = None;
    let mut audio: Option<Vec<u8>> = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("malformed multipart body: {e}")))?
    {
        match field.name() {
            Some("metadata") => {
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                meta = Some(serde_json::from_slice(&bytes).map_err(|e| {
                    ApiError::bad_request(format!("`metadata` part is not valid: {e}"))
                })?);
            }
            Some("audio") => {
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| ApiError::bad_request(format!("reading `audio`: {e}")))?;
                audio = Some(bytes.to_vec());
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unexpected part {:?}; send exactly `metadata` (JSON) and `audio` (the file)",
                    other.unwrap_or("")
                )));
            }
        }
    }
    match (meta, audio) {
        (Some(m), Some(audio)) => Ok((m, audio)),
        _ => Err(ApiError::bad_request(
            "send both a `metadata` part (JSON) and an `audio` part",
        )),
    }
}

/// The uploaded file sealed to the tenant: age header and payload, and the sealed waveform
/// peaks for the console. CPU work, off the async workers.
async fn seal_upload(
    audio: Vec<u8>,
    info: callvault_media::MediaInfo,
    recipient: callvault_crypto::TenantRecipient,
) -> ApiResult<(Option<Vec<u8>>, (callvault_crypto::Header, Vec<u8>))> {
    tokio::task::spawn_blocking(move || {
        let peaks = callvault_media::peaks::compute(&audio, &info)
            .map(|p| encrypt_small(std::slice::from_ref(&recipient), &p.encode()))
            .transpose()?;
        let mut w = RecordingWriter::new(
            &[recipient],
            Vec::with_capacity(audio.len() + audio.len() / 4000 + 64),
        )?;
        w.write_all(&audio)?;
        w.finish().map(|sealed| (peaks, sealed))
    })
    .await
    .map_err(|e| ApiError::internal(format!("sealing an upload: {e}")))?
    .map_err(|e| ApiError::internal(format!("sealing an upload: {e}")))
}

pub async fn upload(
    State(st): State<AppState>,
    Recorder(p, tenant): Recorder,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<(StatusCode, axum::Json<Uploaded>)> {
    let (m, audio) = read_form(form).await?;
    let started_at = parse_rfc3339("started_at", &m.started_at)?;
    let direction = Direction::parse(&m.direction)?;
    let caller = m.caller_number.as_deref().map(E164::parse).transpose()?;
    let agent_id = short_text("agent_id", m.agent_id)?;
    let queue = short_text("queue", m.queue)?;
    let external_call_id = short_text("external_call_id", m.external_call_id)?;
    let admitted = admit_call(&st, &p.event("", ""), &tenant, queue.as_deref()).await?;
    let info = match m.format.as_deref() {
        Some(f) => {
            let claimed = Container::parse(f)
                .ok_or_else(|| ApiError::bad_request("`format` must be wav, mp3 or ogg_opus"))?;
            callvault_media::probe_as(&audio, claimed)
        }
        None => callvault_media::probe(&audio),
    }
    .map_err(|e| {
        let mut err = ApiError::bad_request(format!("the audio was refused: {e}"));
        err.status = StatusCode::UNPROCESSABLE_ENTITY;
        err.code = "unsupported_media";
        err
    })?;

    let (key_id, recipient) = st.active_recipient(&tenant).await?;
    let caller_enc = caller
        .as_ref()
        .map(|c| encrypt_small(std::slice::from_ref(&recipient), c.expose().as_bytes()))
        .transpose()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    // The keyed hash needs the master key; an ingest node stores the number encrypted only.
    let caller_hash = match (&caller, &st.keys) {
        (Some(c), Some(keys)) => Some(keys.caller_key(&st.meta, &tenant).await?.hash(c.expose())),
        _ => None,
    };
    let size = audio.len() as u64;
    let (peaks_enc, (header, payload)) = seal_upload(audio, info.clone(), recipient).await?;
    let id = RecordingId::random();
    let rec = Recording {
        id,
        tenant: tenant.clone(),
        blob: BlobName::random(),
        header: header.as_bytes().to_vec(),
        key_id,
        container: info.container.as_str().to_owned(),
        codec: info.codec.as_str().to_owned(),
        channels: info.channels,
        sample_rate: info.sample_rate,
        duration_ms: info.duration_ms,
        size,
        started_at,
        direction,
        caller_hash,
        caller_enc,
        agent_id,
        queue,
        external_call_id,
        created_at: unix_now(),
        retention_class: Some(admitted.retention_class),
    };
    let mut ev = p.event("recording.upload", "ok");
    ev.target = Some(id.to_string());
    ev.details = Some(
        serde_json::json!({ "container": rec.container, "bytes": size, "duration_ms": rec.duration_ms, "retention_class": rec.retention_class, "parties": admitted.parties }),
    );
    let uploaded = Uploaded {
        id: id.to_string(),
        container: rec.container.clone(),
        codec: rec.codec.clone(),
        channels: rec.channels,
        sample_rate: rec.sample_rate,
        duration_ms: rec.duration_ms,
        size,
    };
    let sealed = storing::Sealed {
        rec,
        payload,
        peaks: peaks_enc,
    };
    st.vault().store(sealed, ev, storing::Row::New).await?;
    st.metrics.uploads.fetch_add(1, Ordering::Relaxed);
    Ok((StatusCode::CREATED, axum::Json(uploaded)))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Calls that started at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Calls that started before this time (RFC 3339).
    pub to: Option<String>,
    pub queue: Option<String>,
    pub agent_id: Option<String>,
    /// Any common notation; matched through the tenant's keyed hash, never stored in clear.
    pub caller_number: Option<String>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
    /// 1 to 500, default 50.
    #[schema(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct RecordingSummary {
    pub id: String,
    pub started_at: String,
    pub direction: String,
    pub duration_ms: u64,
    pub container: String,
    pub codec: String,
    pub channels: u16,
    pub agent_id: Option<String>,
    pub queue: Option<String>,
    pub external_call_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchPage {
    pub items: Vec<RecordingSummary>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn summary(r: &Recording) -> RecordingSummary {
    RecordingSummary {
        id: r.id.to_string(),
        started_at: rfc3339(r.started_at),
        direction: r.direction.as_str().to_owned(),
        duration_ms: r.duration_ms,
        container: r.container.clone(),
        codec: r.codec.clone(),
        channels: r.channels,
        agent_id: r.agent_id.clone(),
        queue: r.queue.clone(),
        external_call_id: r.external_call_id.clone(),
    }
}

fn parse_cursor(c: &str) -> ApiResult<(i64, RecordingId)> {
    let bad = || ApiError::bad_request("`cursor` is not one this server issued");
    let (t, id) = c.split_once('.').ok_or_else(bad)?;
    Ok((
        t.parse().map_err(|_| bad())?,
        RecordingId::parse(id).map_err(|_| bad())?,
    ))
}

pub async fn search(
    State(st): State<AppState>,
    Listener(p, tenant, _): Listener,
    Json(req): Json<SearchRequest>,
) -> ApiResult<axum::Json<SearchPage>> {
    let limit = req.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be between 1 and 500"));
    }
    let caller_hash = match req.caller_number.as_deref() {
        Some(n) => {
            let n = E164::parse(n)?;
            Some(
                st.keys()?
                    .caller_key(&st.meta, &tenant)
                    .await?
                    .hash(n.expose()),
            )
        }
        None => None,
    };
    let f = RecordingFilter {
        from: req
            .from
            .as_deref()
            .map(|s| parse_rfc3339("from", s))
            .transpose()?,
        to: req
            .to
            .as_deref()
            .map(|s| parse_rfc3339("to", s))
            .transpose()?,
        queue: req.queue.clone(),
        agent_id: req.agent_id.clone(),
        caller_hash,
        after: req.cursor.as_deref().map(parse_cursor).transpose()?,
        limit,
    };
    // The audit entry records the search's shape, never the number searched for.
    let mut ev = p.event("recording.search", "ok");
    let used: Vec<&str> = [
        ("from", f.from.is_some()),
        ("to", f.to.is_some()),
        ("queue", f.queue.is_some()),
        ("agent_id", f.agent_id.is_some()),
        ("caller_number", f.caller_hash.is_some()),
        ("cursor", f.after.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, on)| on.then_some(k))
    .collect();
    ev.details = Some(serde_json::json!({ "criteria": used }));
    st.audit
        .record(ev)
        .await
        .map_err(ApiError::audit_unavailable)?;
    let rows = st.meta.search_recordings(&tenant, &f).await?;
    let next_cursor = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| format!("{}.{}", r.started_at, r.id)))
        .flatten();
    Ok(axum::Json(SearchPage {
        items: rows.iter().map(summary).collect(),
        next_cursor,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct RecordingDetail {
    #[serde(flatten)]
    pub summary: RecordingSummary,
    /// Decrypted for the listener; absent when the recorder sent none.
    pub caller_number: Option<String>,
    /// The call's other parties' numbers (e.g. named by SIPREC metadata, also when they joined
    /// mid-call), decrypted for the listener; the search by `caller_number` finds them too.
    pub other_parties: Vec<String>,
    pub size: u64,
    pub sample_rate: u32,
    /// Present when the call was recorded live.
    pub live: Option<LiveOutcome>,
}

/// How a live call ended.
#[derive(Serialize, ToSchema)]
pub struct LiveOutcome {
    /// False when the call was finalised after its recorder went silent (incomplete).
    pub complete: bool,
    /// Chunks that never arrived, as `[first, last]` sequence numbers; silence in the audio.
    pub gaps: Vec<[u64; 2]>,
    /// Intervals silent on purpose (e.g. the SIPREC client paused while a card number was
    /// spoken); silence in the audio too.
    pub paused: Vec<crate::live::Paused>,
    /// Bytes per chunk: gap `[a, b]` is audio bytes `a × frame_bytes` to `(b + 1) × frame_bytes`
    /// after the WAV header.
    pub frame_bytes: u32,
}

pub async fn get(
    State(st): State<AppState>,
    Listener(p, tenant, _): Listener,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RecordingDetail>> {
    let id = RecordingId::parse(&id)?;
    let keys = st.keys()?;
    let mut ev = p.event("recording.view", "ok");
    ev.target = Some(id.to_string());
    let rec = match st.meta.get_recording(&tenant, &id).await {
        Ok(r) => r,
        Err(e) => {
            ev.result = "not_found";
            st.audit
                .record(ev)
                .await
                .map_err(ApiError::audit_unavailable)?;
            return Err(e.into());
        }
    };
    st.audit
        .record(ev)
        .await
        .map_err(ApiError::audit_unavailable)?;
    let parties = st.meta.parties(&tenant, &id).await?;
    let ident = match (&rec.caller_enc, parties.is_empty()) {
        (None, true) => None,
        _ => Some(keys.identity(&st.meta, &tenant, rec.key_id).await?),
    };
    let number = |enc: &[u8]| -> ApiResult<String> {
        let ident = ident.as_ref().ok_or_else(ApiError::integrity)?;
        let bytes = decrypt_small(ident, enc).map_err(|_| ApiError::integrity())?;
        Ok(String::from_utf8_lossy(bytes.expose_secret()).into_owned())
    };
    let caller_number = rec.caller_enc.as_deref().map(number).transpose()?;
    let other_parties = parties
        .iter()
        .map(|p| number(&p.number_enc))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(axum::Json(RecordingDetail {
        summary: summary(&rec),
        caller_number,
        other_parties,
        size: rec.size,
        sample_rate: rec.sample_rate,
        live: st.meta.get_live_call(&tenant, &id).await.ok().map(|c| {
            let stored = crate::live::Outcome::of(&c);
            LiveOutcome {
                complete: stored.complete,
                gaps: stored.gaps,
                paused: stored.paused,
                frame_bytes: c.frame_bytes,
            }
        }),
    }))
}

/// A grant may name a stored recording or a call still being recorded (followed live).
async fn recording_or_live_call(
    st: &AppState,
    tenant: &callvault_core::TenantId,
    id: &RecordingId,
) -> Result<(), callvault_store::StoreError> {
    match st.meta.get_recording(tenant, id).await {
        Err(callvault_store::StoreError::NotFound) => {
            st.meta.get_live_call(tenant, id).await.map(drop)
        }
        other => other.map(drop),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessRequest {
    /// clinical_followup, quality_review, complaint, subject_access or legal_request.
    #[schema(value_type = String)]
    pub purpose_code: PurposeCode,
    /// Why you need to hear this call (10 to 500 characters).
    pub purpose_text: String,
}

#[derive(Serialize, ToSchema)]
pub struct AccessGrant {
    /// Relative URL to play the recording; valid for you only, until `expires_at`.
    pub playback_url: String,
    pub expires_at: String,
}

/// States a purpose and receives a short-lived grant. The audit entry is durable before the
/// grant exists.
pub async fn access(
    State(st): State<AppState>,
    Listener(p, tenant, user): Listener,
    Path(id): Path<String>,
    Json(req): Json<AccessRequest>,
) -> ApiResult<(StatusCode, axum::Json<AccessGrant>)> {
    let id = RecordingId::parse(&id)?;
    let purpose = Purpose::new(req.purpose_code, &req.purpose_text)?;
    st.keys()?;
    let mut ev = p.event("recording.access", "ok");
    ev.target = Some(id.to_string());
    ev.purpose = Some(purpose.audit_form());
    if let Err(e) = recording_or_live_call(&st, &tenant, &id).await {
        ev.result = "not_found";
        st.audit
            .record(ev)
            .await
            .map_err(ApiError::audit_unavailable)?;
        return Err(e.into());
    }
    st.audit
        .record(ev)
        .await
        .map_err(ApiError::audit_unavailable)?;
    let (grant, hash) = token::generate(Kind::Grant);
    let expires_at = unix_now() + st.cfg.grants.ttl_secs;
    st.meta
        .create_grant(&Grant {
            hash: hash.0,
            recording: id,
            tenant,
            user_id: user,
            purpose: purpose.audit_form(),
            expires_at,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(AccessGrant {
            playback_url: format!("/api/v1/playback/{}", grant.expose_secret()),
            expires_at: rfc3339(expires_at),
        }),
    ))
}
