//! From journal to recording: decrypts a finished (or idle-finalised) call's chunks with the
//! tenant identity, lays them out by sequence number with silence for the gaps, and stores the
//! result exactly like an upload — one age file, header in the metadata store, payload in the
//! blob store — so playback, retention and disaster recovery know nothing of live calls.
//! Only full nodes (which hold the tenant identity) assemble.

use super::assembler::LowPriorityThread;
use super::{Acked, CallFormat, LiveCalls, LiveError, Plain};
use crate::audit_log::Event;
use crate::keys::Keys;
use crate::storing::{Row, Sealed, Stored, Vault};
use callvault_core::{BlobName, RecordingId};
use callvault_crypto::{JournalKey, RecordingWriter, SecretBox, TenantIdentity};
use callvault_store::{LiveCall, LiveChunk, LiveState, MetadataStore, Recording};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

/// Chunks read from the journal per query.
const PAGE: u32 = 256;

/// The journal keys of one call, unwrapped; reloads when it meets a key another node added.
pub(crate) struct JournalReader {
    call: RecordingId,
    identity: Arc<TenantIdentity>,
    keys: HashMap<i64, JournalKey>,
}

impl JournalReader {
    pub(crate) fn new(call: RecordingId, identity: Arc<TenantIdentity>) -> Self {
        Self {
            call,
            identity,
            keys: HashMap::new(),
        }
    }

    /// Unwraps every journal key of the call not unwrapped yet.
    async fn load(&mut self, meta: &MetadataStore) -> Result<(), LiveError> {
        for k in meta.live_keys(&self.call).await? {
            if let std::collections::hash_map::Entry::Vacant(v) = self.keys.entry(k.key_no) {
                v.insert(JournalKey::unwrap(&self.identity, &k.wrapped)?);
            }
        }
        Ok(())
    }

    pub(crate) async fn open(
        &mut self,
        meta: &MetadataStore,
        c: &LiveChunk,
    ) -> Result<SecretBox<Vec<u8>>, LiveError> {
        if !self.keys.contains_key(&c.key_no) {
            self.load(meta).await?;
        }
        self.open_loaded(c)
    }

    /// Opens a chunk with the keys loaded so far; one sealed under any other does not check out.
    fn open_loaded(&self, c: &LiveChunk) -> Result<SecretBox<Vec<u8>>, LiveError> {
        let key = self
            .keys
            .get(&c.key_no)
            .ok_or(LiveError::Crypto(callvault_crypto::CryptoError::Integrity))?;
        Ok(key.open_chunk(&self.call.to_string(), c.seq, &c.sealed)?)
    }
}

/// The WAV file of a call from all its chunks in sequence order: header, then every chunk at
/// `seq × frame_bytes`, silence where a chunk never arrived, a short chunk padded unless it is
/// the last.
fn wav_of(
    f: CallFormat,
    reader: &JournalReader,
    chunks: &[LiveChunk],
    total: u64,
) -> Result<Plain, LiveError> {
    let frame = f.frame_bytes as usize;
    let mut pcm = Plain::new(Vec::with_capacity(frame * total as usize));
    for c in chunks.iter().filter(|c| c.seq < total) {
        pcm.resize(c.seq as usize * frame, f.silence());
        pcm.extend_from_slice(super::expose(&reader.open_loaded(c)?));
        if c.seq + 1 < total {
            pcm.resize((c.seq as usize + 1) * frame, f.silence());
        }
    }
    let tail_present = total > 0 && pcm.len() > (total as usize - 1) * frame;
    if !tail_present {
        pcm.resize(total as usize * frame, f.silence());
    }
    let len = u32::try_from(pcm.len()).map_err(|_| LiveError::TooLong {
        seq: total,
        max: u64::from(u32::MAX) / frame as u64,
    })?;
    let header = callvault_media::wav::try_header(f.codec, f.channels, f.sample_rate, len)
        .map_err(|e| LiveError::BadFormat(e.to_string()))?;
    let mut out = Plain::new(Vec::with_capacity(header.len() + pcm.len()));
    out.extend_from_slice(&header);
    out.extend_from_slice(&pcm);
    Ok(out)
}

/// Every chunk of a call in the journal, in sequence order.
async fn sealed_chunks(
    meta: &MetadataStore,
    call: &RecordingId,
) -> Result<Vec<LiveChunk>, LiveError> {
    let mut all = Vec::new();
    loop {
        let page = meta
            .live_chunks(call, all.last().map_or(0, |c: &LiveChunk| c.seq + 1), PAGE)
            .await?;
        if page.is_empty() {
            return Ok(all);
        }
        all.extend(page);
    }
}

/// The recording file of a call, ready to store: what it is, its age header and payload, and
/// its plaintext size.
struct EncryptedRecording {
    info: callvault_media::MediaInfo,
    header: callvault_crypto::Header,
    payload: Vec<u8>,
    size: u64,
}

/// Decrypts, lays out and re-encrypts a call: all of assembly's CPU, on one thread.
fn decrypt_and_reencrypt(
    f: CallFormat,
    reader: &JournalReader,
    chunks: &[LiveChunk],
    total: u64,
    recipient: callvault_crypto::TenantRecipient,
) -> Result<EncryptedRecording, LiveError> {
    let wav = wav_of(f, reader, chunks, total)?;
    let info = callvault_media::probe(&wav).map_err(|e| LiveError::BadFormat(e.to_string()))?;
    let mut w = RecordingWriter::new(&[recipient], Vec::with_capacity(wav.len() + 4096))?;
    w.write_all(&wav)
        .map_err(callvault_crypto::CryptoError::Io)?;
    let (header, payload) = w.finish()?;
    Ok(EncryptedRecording {
        info,
        header,
        payload,
        size: wav.len() as u64,
    })
}

impl LiveCalls {
    /// Assembles a `Finished` or `Incomplete` call into a recording. `Ok(None)` if another node
    /// stored it first.
    pub(super) async fn assemble(
        &self,
        keys: &Keys,
        cpu: &LowPriorityThread,
        call: &LiveCall,
    ) -> Result<Option<Recording>, LiveError> {
        let meta = &self.0.meta;
        let identity = keys.identity(meta, &call.tenant, call.key_id).await?;
        let seqs = meta.live_chunk_seqs(&call.id).await?;
        let acked = Acked::from_sorted(seqs);
        let total = call
            .total_chunks
            .unwrap_or(0)
            .max(acked.highest().map_or(0, |h| h + 1));
        let gaps = acked.missing_below(total);
        let mut reader = JournalReader::new(call.id, identity);
        reader.load(meta).await?;
        let chunks = sealed_chunks(meta, &call.id).await?;
        let recipient = callvault_crypto::TenantRecipient::parse(
            &meta.get_key(&call.tenant, call.key_id).await?.recipient,
        )?;
        let f = CallFormat::of(call)?;
        let EncryptedRecording {
            info,
            header,
            payload,
            size,
        } = cpu
            .run(move || decrypt_and_reencrypt(f, &reader, &chunks, total, recipient))
            .await??;
        // The class of the policy covering the call's queue now (it was admitted at open).
        let policies = meta.recording_policies(&call.tenant).await?;
        let retention_class = crate::lifecycle::policy::covering(&policies, call.queue.as_deref())
            .map(|p| p.retention_class.clone());
        let rec = Recording {
            id: call.id,
            tenant: call.tenant.clone(),
            blob: BlobName::random(),
            header: header.as_bytes().to_vec(),
            key_id: call.key_id,
            container: info.container.as_str().to_owned(),
            codec: info.codec.as_str().to_owned(),
            channels: info.channels,
            sample_rate: info.sample_rate,
            duration_ms: info.duration_ms,
            size,
            started_at: call.started_at,
            direction: call.direction,
            caller_hash: call.caller_hash,
            caller_enc: call.caller_enc.clone(),
            agent_id: call.agent_id.clone(),
            queue: call.queue.clone(),
            external_call_id: call.external_call_id.clone(),
            retention_class,
            created_at: crate::clock::unix_now(),
        };
        let complete = call.state == LiveState::Finished;
        let outcome = super::Outcome {
            complete,
            chunks: total,
            gaps: gaps.clone(),
            paused: super::Outcome::of(call).paused,
        };
        let ev = Event {
            actor: "system".into(),
            tenant: Some(call.tenant.to_string()),
            action: "recording.live_store",
            target: Some(call.id.to_string()),
            result: "ok",
            details: Some(serde_json::json!({
                "complete": complete,
                "chunks": total,
                "gaps": gaps,
                "paused": outcome.paused,
                "duration_ms": rec.duration_ms,
            })),
            ..Event::default()
        };
        let outcome =
            serde_json::to_string(&outcome).map_err(|e| LiveError::Journal(e.to_string()))?;
        let sealed = Sealed {
            rec: rec.clone(),
            payload,
            peaks: None,
        };
        let row = Row::LiveCall { outcome: &outcome };
        let vault = Vault {
            meta,
            blobs: &self.0.blobs,
            audit: &self.0.audit,
        };
        match vault.store(sealed, ev, row).await? {
            Stored::Now => {
                self.0
                    .metrics
                    .live_stored
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(Some(rec))
            }
            Stored::Already => Ok(None),
        }
    }
}
