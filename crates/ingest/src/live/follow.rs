//! Following a call in progress: a WAV stream of everything acknowledged so far, then each new
//! chunk as it is acknowledged, until the call ends. The header announces the largest length
//! RIFF allows (the usual convention for a stream whose end is unknown). A gap is waited for
//! briefly (the chunk may be in flight out of order), then played as silence. A finished call
//! not stored yet plays the same way; if the call is stored while it is played, the rest comes
//! from the stored recording.

use super::recording::JournalReader;
use super::{CallFormat, LiveError};
use crate::Ingest;
use crate::audit_log::Event;
use callvault_crypto::{Header, TenantIdentity, open_recording};
use callvault_store::{LiveCall, LiveState};
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often a follower looks for new chunks.
const POLL: Duration = Duration::from_millis(100);
/// How long a follower waits for a missing chunk before playing silence in its place.
const GAP_WAIT: Duration = Duration::from_secs(2);

type Piece = std::io::Result<Vec<u8>>;

/// Starts following `call`; the receiver yields the WAV stream. `ev` is the playback's audit
/// event, recorded again with `integrity_error` if a chunk fails authentication.
pub fn follow(
    st: Ingest,
    identity: Arc<TenantIdentity>,
    call: LiveCall,
    ev: Event,
) -> Result<mpsc::Receiver<Piece>, LiveError> {
    let f = CallFormat::of(&call)?;
    let align = f.block_align();
    let max = (u32::MAX - 64) / align * align;
    let header = callvault_media::wav::try_header(f.codec, f.channels, f.sample_rate, max)
        .map_err(|e| LiveError::BadFormat(e.to_string()))?;
    let (tx, rx) = mpsc::channel::<Piece>(8);
    tokio::spawn(async move {
        let header_len = header.len() as u64;
        if tx.send(Ok(header)).await.is_err() {
            return;
        }
        if let Err(e) = run(&st, identity.clone(), call.clone(), f, header_len, &tx).await {
            if matches!(e, LiveError::Crypto(_)) {
                let mut ev = ev;
                ev.result = "integrity_error";
                let _ = st.audit.record(ev).await;
            }
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    Ok(rx)
}

async fn run(
    st: &Ingest,
    identity: Arc<TenantIdentity>,
    mut call: LiveCall,
    f: CallFormat,
    header_len: u64,
    tx: &mpsc::Sender<Piece>,
) -> Result<(), LiveError> {
    let frame = f.frame_bytes as usize;
    let mut reader = JournalReader::new(call.id, identity.clone());
    let mut next: u64 = 0;
    let mut sent: u64 = 0;
    let mut stalled: Option<Instant> = None;
    loop {
        let open = call.state == LiveState::Open;
        let total = call.total_chunks;
        let page = st.meta.live_chunks(&call.id, next, 64).await?;
        let mut progressed = false;
        for c in &page {
            if c.seq > next {
                let waited = stalled.get_or_insert_with(Instant::now).elapsed();
                if open && waited < GAP_WAIT {
                    break;
                }
            }
            let mut piece = vec![f.silence(); (c.seq - next) as usize * frame];
            piece.extend_from_slice(super::expose(&reader.open(&st.meta, c).await?));
            if total != Some(c.seq + 1) {
                piece.resize((c.seq - next + 1) as usize * frame, f.silence());
            }
            sent += piece.len() as u64;
            next = c.seq + 1;
            stalled = None;
            progressed = true;
            if tx.send(Ok(piece)).await.is_err() {
                return Ok(());
            }
        }
        if progressed {
            continue;
        }
        if !open {
            // The assembler may have stored the call and dropped its chunks meanwhile.
            let now = st.meta.get_live_call(&call.tenant, &call.id).await?;
            if now.state == LiveState::Stored {
                return from_recording(st, identity, &now, header_len + sent, tx).await;
            }
            let total = total.unwrap_or(next);
            if next < total {
                let piece = vec![f.silence(); (total - next) as usize * frame];
                let _ = tx.send(Ok(piece)).await;
            }
            return Ok(());
        }
        if tx.is_closed() {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
        call = match st.meta.get_live_call(&call.tenant, &call.id).await {
            Ok(c) => c,
            Err(e) => return Err(e.into()),
        };
        if call.state == LiveState::Stored {
            return from_recording(st, identity, &call, header_len + sent, tx).await;
        }
    }
}

/// The rest of a call that was assembled while followed, from its stored recording.
async fn from_recording(
    st: &Ingest,
    identity: Arc<TenantIdentity>,
    call: &LiveCall,
    offset: u64,
    tx: &mpsc::Sender<Piece>,
) -> Result<(), LiveError> {
    let rec = st.meta.get_recording(&call.tenant, &call.id).await?;
    let blob = st.blobs.open(&rec.blob).await?;
    let header = Header::from_bytes(rec.header);
    let tx = tx.clone();
    tokio::task::spawn_blocking(move || -> Result<(), LiveError> {
        let mut r = open_recording(&header, blob, &identity)?;
        r.seek(SeekFrom::Start(offset.min(rec.size)))
            .map_err(|e| LiveError::Journal(e.to_string()))?;
        loop {
            let mut buf = vec![0u8; 64 * 1024];
            let n = r
                .read(&mut buf)
                .map_err(|_| LiveError::Crypto(callvault_crypto::CryptoError::Integrity))?;
            if n == 0 {
                return Ok(());
            }
            buf.truncate(n);
            if tx.blocking_send(Ok(buf)).is_err() {
                return Ok(());
            }
        }
    })
    .await
    .map_err(|e| LiveError::Journal(e.to_string()))?
}
