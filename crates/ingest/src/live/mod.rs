//! Live ingest: calls recorded while they happen (docs/live-ingest.md, docs/design/live-ingest.md).
//!
//! [`LiveCalls`] is the one internal API every live protocol uses — the HTTPS and WebSocket
//! handlers in `api/live.rs` today, a SIPREC listener later: [`LiveCalls::open`],
//! [`LiveCalls::append`], [`LiveCalls::finish`], [`LiveCalls::status`]. It owns the rules
//! (formats, frame sizes, the sequence window, idempotence) and the journal: each chunk is sealed
//! under this node's journal key for the call (public key only, `callvault_crypto::JournalKey`)
//! and acknowledged only after the group-commit writer made it durable in the metadata store.
//! Assembly into a standard recording (`recording.rs`, run by the job in `assembler.rs`) and idle
//! finalisation (`sweep.rs`) run in the background; assembly needs the tenant identity, so only
//! full nodes do it.
//!
//! It must not: keep plaintext anywhere but in memory, acknowledge before the commit, or let a
//! call be touched by another tenant (every lookup takes the tenant).

mod acked;
mod assembler;
mod follow;
mod recording;
mod sweep;
mod writer;

pub use acked::Acked;
pub use assembler::start as start_assembler;
pub use callvault_service::config::LiveLimits;
pub use follow::follow;
pub use sweep::start as start_sweeper;

use crate::audit_log::{AuditLog, Event};
use callvault_core::{Direction, E164, RecordingId, TenantId};
use callvault_crypto::{CryptoError, ExposeSecret, JournalKey, TenantRecipient, encrypt_small};
use callvault_media::Codec;
use callvault_store::{
    BlobStore, ChunkOutcome, LiveCall, LiveChunk, LiveKey, LiveState, MetadataStore, StoreError,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use utoipa::ToSchema;
use writer::ChunkWriter;

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("no such live call, or not one of your tenant's")]
    UnknownCall,
    #[error("the call is {0}; it takes no more chunks. Open a new call for new audio")]
    Closed(&'static str),
    #[error("{0}")]
    BadFormat(String),
    #[error(
        "chunk of {len} bytes: every chunk carries exactly {frame} bytes (the last may be shorter), in whole samples of {align} bytes"
    )]
    ChunkSize { len: usize, frame: u32, align: u32 },
    #[error(
        "sequence number {seq} is too far ahead: the newest acknowledged chunk is {newest}, and at most {window} chunks beyond it are accepted; send the missing ones first or ask GET …/calls/{{id}} where to resume"
    )]
    OutOfWindow { seq: u64, newest: i64, window: u64 },
    #[error("sequence number {seq} is beyond the longest call this server records ({max} chunks)")]
    TooLong { seq: u64, max: u64 },
    #[error("`chunks` = {total} is less than the chunks already acknowledged (up to {highest})")]
    BadTotal { total: u64, highest: u64 },
    #[error("audit record unavailable: {0}")]
    Audit(String),
    #[error("journal: {0}")]
    Journal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Storing(#[from] crate::storing::StoringError),
}

/// The audio format of a call, fixed at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallFormat {
    pub codec: Codec,
    pub sample_rate: u32,
    pub channels: u16,
    /// Bytes of every chunk but the last.
    pub frame_bytes: u32,
}

impl CallFormat {
    /// `codec` is `mulaw`, `alaw` or `pcm16`; 8 or 16 kHz; 1 or 2 channels (caller left, agent
    /// right); `frame_ms` from 10 to 1000.
    pub fn new(
        codec: &str,
        sample_rate: u32,
        channels: u16,
        frame_ms: u32,
    ) -> Result<Self, LiveError> {
        let codec = match Codec::parse(codec) {
            Some(c @ (Codec::Mulaw | Codec::Alaw | Codec::Pcm16)) => c,
            _ => {
                return Err(LiveError::BadFormat(format!(
                    "codec `{codec}` is not offered for live calls: use mulaw, alaw (G.711) or pcm16"
                )));
            }
        };
        if ![8000, 16000].contains(&sample_rate) {
            return Err(LiveError::BadFormat(format!(
                "sample_rate {sample_rate} is not offered: use 8000 or 16000"
            )));
        }
        if !(1..=2).contains(&channels) {
            return Err(LiveError::BadFormat(format!(
                "channels {channels} is not offered: use 1, or 2 (caller left, agent right)"
            )));
        }
        if !(10..=1000).contains(&frame_ms) {
            return Err(LiveError::BadFormat(format!(
                "frame_ms {frame_ms} is out of range: use 10 to 1000 (200 is a good default)"
            )));
        }
        let mut f = Self {
            codec,
            sample_rate,
            channels,
            frame_bytes: 0,
        };
        f.frame_bytes = sample_rate / 1000 * frame_ms * f.block_align();
        Ok(f)
    }

    fn of(call: &LiveCall) -> Result<Self, LiveError> {
        let codec = Codec::parse(&call.codec)
            .ok_or_else(|| StoreError::Corrupt(format!("live call codec {}", call.codec)))?;
        Ok(Self {
            codec,
            sample_rate: call.sample_rate,
            channels: call.channels,
            frame_bytes: call.frame_bytes,
        })
    }

    /// Bytes of one sample on every channel.
    pub fn block_align(&self) -> u32 {
        u32::from(self.channels) * if self.codec == Codec::Pcm16 { 2 } else { 1 }
    }

    /// The byte that is silence in this codec.
    pub fn silence(&self) -> u8 {
        match self.codec {
            Codec::Mulaw => 0xFF,
            Codec::Alaw => 0xD5,
            _ => 0,
        }
    }

    fn max_chunks(&self, max_call_secs: u64) -> u64 {
        let per_sec = u64::from(self.sample_rate) * u64::from(self.block_align());
        (max_call_secs * per_sec).div_ceil(u64::from(self.frame_bytes.max(1)))
    }
}

/// An interval of the recording that is silent on purpose, e.g. a SIPREC client stopped the
/// media (`a=inactive`) while a card number was spoken. Part of the call's [`Outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Paused {
    /// From the start of the recording.
    pub offset_ms: u64,
    pub length_ms: u64,
    pub by: PausedBy,
}

/// Who paused a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PausedBy {
    /// The recording client (SIPREC SRC).
    Src,
}

/// How a call went: the JSON kept in [`LiveCall::gaps`] (docs/FORMAT.md). `paused` is written
/// at finish by the protocol that knows it; the rest at assembly.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Outcome {
    pub complete: bool,
    pub chunks: u64,
    /// Chunks never received, as `[first, last]` sequence numbers.
    pub gaps: Vec<[u64; 2]>,
    pub paused: Vec<Paused>,
}

impl Outcome {
    /// What the call's row holds (empty if nothing, or nothing readable).
    pub fn of(call: &LiveCall) -> Self {
        call.gaps
            .as_deref()
            .and_then(|g| serde_json::from_str(g).ok())
            .unwrap_or_default()
    }
}

/// A call to open: its format and metadata.
pub struct OpenCall {
    pub format: CallFormat,
    pub started_at: i64,
    pub direction: Direction,
    pub caller: Option<E164>,
    /// The keyed hash of the caller, when this node holds the tenant's hash key.
    pub caller_hash: Option<[u8; 32]>,
    pub agent_id: Option<String>,
    pub queue: Option<String>,
    pub external_call_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkAck {
    pub seq: u64,
    /// The chunk was already stored; the first copy stays.
    pub duplicate: bool,
}

/// Where a call stands, for a recorder that wants to resume.
#[derive(Debug, Clone)]
pub struct CallStatus {
    pub call: LiveCall,
    pub acked: Acked,
}

/// This node's state for a call it has seen: its journal key and what is acknowledged.
struct Active {
    tenant: TenantId,
    format: CallFormat,
    key: JournalKey,
    key_no: i64,
    acked: Acked,
    closed: Option<&'static str>,
}

#[derive(Clone)]
pub struct LiveCalls(Arc<Inner>);

struct Inner {
    meta: MetadataStore,
    blobs: BlobStore,
    audit: AuditLog,
    metrics: crate::metrics::SharedMetrics,
    writer: ChunkWriter,
    limits: LiveLimits,
    active: Mutex<HashMap<RecordingId, Arc<Mutex<Active>>>>,
    assembly_due: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another request panicked mid-update of in-memory state that
    // the journal can rebuild; carry on with what is there.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LiveCalls {
    pub fn start(
        meta: MetadataStore,
        blobs: BlobStore,
        audit: AuditLog,
        metrics: crate::metrics::SharedMetrics,
        limits: LiveLimits,
    ) -> Self {
        Self(Arc::new(Inner {
            writer: ChunkWriter::start(meta.clone(), metrics.clone()),
            meta,
            blobs,
            audit,
            metrics,
            limits,
            active: Mutex::default(),
            assembly_due: tokio::sync::Notify::new(),
        }))
    }

    pub fn limits(&self) -> LiveLimits {
        self.0.limits
    }

    /// Opens a call for `tenant`. `ev` is the caller's audit event (actor, client); it is
    /// recorded durably before the call exists.
    pub async fn open(
        &self,
        tenant: &TenantId,
        key_id: i64,
        recipient: TenantRecipient,
        req: OpenCall,
        mut ev: Event,
    ) -> Result<LiveCall, LiveError> {
        let recipients = [recipient];
        let caller_enc = req
            .caller
            .as_ref()
            .map(|c| encrypt_small(&recipients, c.expose().as_bytes()))
            .transpose()?;
        let (key, wrapped) = JournalKey::generate(&recipients)?;
        let id = RecordingId::random();
        let now = crate::clock::unix_now();
        let call = LiveCall {
            id,
            tenant: tenant.clone(),
            key_id,
            codec: req.format.codec.as_str().to_owned(),
            sample_rate: req.format.sample_rate,
            channels: req.format.channels,
            frame_bytes: req.format.frame_bytes,
            started_at: req.started_at,
            direction: req.direction,
            caller_hash: req.caller_hash,
            caller_enc,
            agent_id: req.agent_id,
            queue: req.queue,
            external_call_id: req.external_call_id,
            state: LiveState::Open,
            total_chunks: None,
            gaps: None,
            updated_at: now,
            created_at: now,
        };
        ev.target = Some(id.to_string());
        ev.details = Some(serde_json::json!({
            "codec": call.codec, "sample_rate": call.sample_rate, "channels": call.channels,
            "frame_bytes": call.frame_bytes,
        }));
        self.0.audit.record(ev).await.map_err(LiveError::Audit)?;
        let first = LiveKey {
            call: id,
            key_no: 1,
            wrapped,
        };
        self.0.meta.create_live_call(&call, &first).await?;
        lock(&self.0.active).insert(
            id,
            Arc::new(Mutex::new(Active {
                tenant: tenant.clone(),
                format: req.format,
                key,
                key_no: 1,
                acked: Acked::default(),
                closed: None,
            })),
        );
        Ok(call)
    }

    /// Seals and journals one chunk; returns once it is durable. Idempotent by `seq`.
    pub async fn append(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
        seq: u64,
        audio: &[u8],
    ) -> Result<ChunkAck, LiveError> {
        let active = self.active(tenant, id).await?;
        let chunk = {
            let a = lock(&active);
            if let Some(state) = a.closed {
                return Err(LiveError::Closed(state));
            }
            let (frame, align) = (a.format.frame_bytes, a.format.block_align());
            if audio.is_empty()
                || audio.len() > frame as usize
                || !audio.len().is_multiple_of(align as usize)
            {
                return Err(LiveError::ChunkSize {
                    len: audio.len(),
                    frame,
                    align,
                });
            }
            let max = a.format.max_chunks(self.0.limits.max_call_secs);
            if seq >= max {
                return Err(LiveError::TooLong { seq, max });
            }
            let window = self.0.limits.window;
            let newest = a.acked.highest();
            if seq > newest.map_or(0, |h| h + 1) + window {
                return Err(LiveError::OutOfWindow {
                    seq,
                    newest: newest.map_or(-1, |h| h as i64),
                    window,
                });
            }
            if a.acked.contains(seq) {
                return Ok(ChunkAck {
                    seq,
                    duplicate: true,
                });
            }
            LiveChunk {
                call: *id,
                seq,
                key_no: a.key_no,
                sealed: a.key.seal_chunk(&id.to_string(), seq, audio)?,
            }
        };
        let outcome = self
            .0
            .writer
            .write(chunk)
            .await
            .map_err(LiveError::Journal)?;
        let mut a = lock(&active);
        match outcome {
            ChunkOutcome::Stored | ChunkOutcome::Duplicate => {
                a.acked.insert(seq);
                self.0
                    .metrics
                    .live_chunks
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(ChunkAck {
                    seq,
                    duplicate: outcome == ChunkOutcome::Duplicate,
                })
            }
            ChunkOutcome::Closed => {
                a.closed = Some("finished");
                drop(a);
                self.forget(id);
                Err(LiveError::Closed("finished"))
            }
        }
    }

    /// The call as the journal has it, on whichever node it was written.
    pub async fn status(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
    ) -> Result<CallStatus, LiveError> {
        let call = self.get(tenant, id).await?;
        let acked = match call.state {
            // The journal rows are gone; the outcome recorded at assembly says what was there.
            LiveState::Stored => stored_outcome(&call),
            _ => Acked::from_sorted(self.0.meta.live_chunk_seqs(id).await?),
        };
        Ok(CallStatus { call, acked })
    }

    /// Marks the call finished with `total` chunks (default: up to the newest acknowledged);
    /// chunks never received below it are gaps; `paused`, the intervals the protocol says were
    /// silent on purpose, go into the outcome. Finishing a finished call changes nothing. The
    /// call is stored as a recording by a full node's assembler afterwards.
    pub async fn finish(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
        total: Option<u64>,
        paused: &[Paused],
        mut ev: Event,
    ) -> Result<CallStatus, LiveError> {
        let st = self.status(tenant, id).await?;
        if st.call.state != LiveState::Open {
            return Ok(st);
        }
        let have = st.acked.highest().map_or(0, |h| h + 1);
        let total = total.unwrap_or(have);
        if total < have {
            return Err(LiveError::BadTotal {
                total,
                highest: have.saturating_sub(1),
            });
        }
        ev.target = Some(id.to_string());
        ev.details = Some(serde_json::json!({
            "chunks": total,
            "missing": st.acked.missing_below(total).len(),
        }));
        self.0.audit.record(ev).await.map_err(LiveError::Audit)?;
        let now = crate::clock::unix_now();
        let outcome =
            (!paused.is_empty()).then(|| serde_json::json!({ "paused": paused }).to_string());
        self.0
            .meta
            .set_live_state(
                id,
                LiveState::Open,
                LiveState::Finished,
                Some(total),
                outcome.as_deref(),
                now,
            )
            .await?;
        self.forget(id);
        // Read before waking the assembler, so that the answer says `finished` however quick
        // it is; the chunks acknowledged are final now.
        let done = self.status(tenant, id).await?;
        self.wake_assembler();
        Ok(done)
    }

    async fn get(&self, tenant: &TenantId, id: &RecordingId) -> Result<LiveCall, LiveError> {
        match self.0.meta.get_live_call(tenant, id).await {
            Err(StoreError::NotFound) => Err(LiveError::UnknownCall),
            other => Ok(other?),
        }
    }

    fn forget(&self, id: &RecordingId) {
        lock(&self.0.active).remove(id);
    }

    /// Tells this node's assembler a call is waiting to be stored.
    fn wake_assembler(&self) {
        self.0.assembly_due.notify_one();
    }

    /// Returns once a call may be waiting to be stored (at once if one was since the last wait).
    async fn assembly_due(&self) {
        self.0.assembly_due.notified().await;
    }

    /// This node's state for the call, loading it from the journal (with a fresh journal key
    /// of this node's) when the call was opened elsewhere or before a restart.
    async fn active(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
    ) -> Result<Arc<Mutex<Active>>, LiveError> {
        if let Some(a) = lock(&self.0.active).get(id).cloned() {
            return if lock(&a).tenant == *tenant {
                Ok(a)
            } else {
                Err(LiveError::UnknownCall)
            };
        }
        let call = self.get(tenant, id).await?;
        if call.state != LiveState::Open {
            return Err(LiveError::Closed(call.state.as_str()));
        }
        let format = CallFormat::of(&call)?;
        let acked = Acked::from_sorted(self.0.meta.live_chunk_seqs(id).await?);
        let recipient = {
            let k = self.0.meta.get_key(tenant, call.key_id).await?;
            TenantRecipient::parse(&k.recipient)?
        };
        let (key, wrapped) = JournalKey::generate(&[recipient])?;
        // Another node (or a concurrent request here) may take a number first: try the next.
        let mut key_no = self
            .0
            .meta
            .live_keys(id)
            .await?
            .iter()
            .map(|k| k.key_no)
            .max()
            .unwrap_or(0);
        loop {
            key_no += 1;
            let k = LiveKey {
                call: *id,
                key_no,
                wrapped: wrapped.clone(),
            };
            match self.0.meta.add_live_key(&k).await {
                Ok(()) => break,
                Err(StoreError::Conflict(_)) if key_no < 1000 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let loaded = Arc::new(Mutex::new(Active {
            tenant: tenant.clone(),
            format,
            key,
            key_no,
            acked,
            closed: None,
        }));
        Ok(lock(&self.0.active).entry(*id).or_insert(loaded).clone())
    }

    /// Live calls this node holds state for (a gauge for metrics and the bench).
    pub fn active_count(&self) -> usize {
        lock(&self.0.active).len()
    }
}

/// The chunks a stored call had, from the outcome written at assembly
/// (`{"complete", "chunks", "gaps"}`).
fn stored_outcome(call: &LiveCall) -> Acked {
    let Outcome { chunks, gaps, .. } = Outcome::of(call);
    Acked::from_sorted((0..chunks).filter(|s| !gaps.iter().any(|g| (g[0]..=g[1]).contains(s))))
}

/// Plaintext never outlives the request that needs it: the assembled file and decrypted
/// chunks are wiped when dropped.
pub(crate) type Plain = zeroize::Zeroizing<Vec<u8>>;

pub(crate) fn expose(b: &callvault_crypto::SecretBox<Vec<u8>>) -> &[u8] {
    b.expose_secret()
}
