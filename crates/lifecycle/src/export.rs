//! Subject access (GDPR art. 15): one archive with every recording of a caller — the audio, its
//! metadata, and who accessed it, when and for what purpose — signed with the deployment's
//! Ed25519 key so the recipient can check where it came from. Format: docs/FORMAT.md,
//! "Subject access archive".
//!
//! The archive is built in memory and sent; the server never writes it to disk.

use super::{LifecycleError, LifecycleResult};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use callvault_core::{E164, TenantId};
use callvault_crypto::{Header, open_recording};
use callvault_service::Services;
use callvault_service::audit_log::Event;
use callvault_service::clock::rfc3339;
use callvault_store::AuditFilter;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Read;

/// First line of every archive; also the domain separator of its signature, so no signature
/// over an archive can stand for an audit checkpoint or anything else the key signs.
pub const MAGIC: &str = "callvault-subject-access-v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExportError {
    #[error("not a callvault subject access archive: {0}")]
    Malformed(&'static str),
    #[error("the archive was signed by key {found}, not the expected {expected}")]
    WrongKey { found: String, expected: String },
    #[error("the signature does not match the contents: the archive was altered or damaged")]
    BadSignature,
}

/// `MAGIC \n ed25519 <key> <signature> \n body`, signing `MAGIC \n body`.
pub fn seal(key: &SigningKey, body: &[u8]) -> Vec<u8> {
    let sig = key.sign(&signed_message(body));
    let mut out = format!(
        "{MAGIC}\ned25519 {} {}\n",
        B64.encode(key.verifying_key().as_bytes()),
        B64.encode(sig.to_bytes())
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    [MAGIC.as_bytes(), b"\n", body].concat()
}

/// Checks an archive against the key the recipient trusts; returns the signed body.
pub fn verify<'a>(archive: &'a [u8], trusted: &VerifyingKey) -> Result<&'a [u8], ExportError> {
    let mut parts = archive.splitn(3, |b| *b == b'\n');
    let (Some(magic), Some(sig_line), Some(body)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ExportError::Malformed("fewer than three lines"));
    };
    if magic != MAGIC.as_bytes() {
        return Err(ExportError::Malformed("wrong first line"));
    }
    let line =
        std::str::from_utf8(sig_line).map_err(|_| ExportError::Malformed("signature line"))?;
    let mut words = line.split(' ');
    let (Some("ed25519"), Some(key), Some(sig), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(ExportError::Malformed("signature line"));
    };
    let expected = B64.encode(trusted.as_bytes());
    if key != expected {
        return Err(ExportError::WrongKey {
            found: key.to_owned(),
            expected,
        });
    }
    let sig: [u8; 64] = B64
        .decode(sig)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or(ExportError::Malformed("signature"))?;
    trusted
        .verify(&signed_message(body), &Signature::from_bytes(&sig))
        .map_err(|_| ExportError::BadSignature)?;
    Ok(body)
}

#[derive(Serialize)]
struct Body {
    format: &'static str,
    tenant: String,
    caller_number: String,
    generated_at: String,
    generated_by: String,
    recordings: Vec<ExportedRecording>,
}

#[derive(Serialize)]
struct ExportedRecording {
    id: String,
    started_at: String,
    direction: &'static str,
    duration_ms: u64,
    container: String,
    codec: String,
    channels: u16,
    sample_rate: u32,
    agent_id: Option<String>,
    queue: Option<String>,
    external_call_id: Option<String>,
    retention_class: Option<String>,
    audio_sha256: String,
    audio_base64: String,
    /// Every audit entry about this recording, oldest first.
    accesses: Vec<Access>,
}

#[derive(Serialize)]
struct Access {
    seq: u64,
    time: String,
    actor: String,
    action: String,
    purpose: Option<String>,
    result: String,
}

/// Builds and signs the archive for `caller`. Every recording's export is audited (purpose
/// `subject_access`) before its audio is read, and so appears in its own access report.
pub async fn build(
    st: &Services,
    origin: &Event,
    tenant: &TenantId,
    caller: &E164,
    now: i64,
) -> LifecycleResult<(Vec<u8>, usize)> {
    let keys = st.keys()?;
    let recs =
        super::caller_recordings(st, tenant, super::caller_hash(st, tenant, caller).await?).await?;
    let purpose = "subject_access: art. 15 request of the caller".to_owned();
    let summary = Event {
        action: "subject_access.export",
        result: "ok",
        purpose: Some(purpose.clone()),
        details: Some(serde_json::json!({ "recordings": recs.len() })),
        ..origin.clone()
    };
    super::record(st, summary).await?;
    let mut recordings = Vec::with_capacity(recs.len());
    for r in recs {
        let ev = Event {
            action: "recording.export",
            result: "ok",
            target: Some(r.id.to_string()),
            purpose: Some(purpose.clone()),
            ..origin.clone()
        };
        super::record(st, ev).await?;
        let identity = keys.identity(&st.meta, tenant, r.key_id).await?;
        let blob = st.blobs.open(&r.blob).await?;
        let header = Header::from_bytes(r.header.clone());
        let audio = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            open_recording(&header, blob, &identity)
                .and_then(|mut rd| rd.read_to_end(&mut out).map_err(Into::into))
                .map(|_| out)
        })
        .await
        .map_err(|e| LifecycleError::Internal(format!("reading recording {}: {e}", r.id)))?
        .map_err(|e| LifecycleError::Integrity(format!("recording {} ({e})", r.id)))?;
        recordings.push(ExportedRecording {
            id: r.id.to_string(),
            started_at: rfc3339(r.started_at),
            direction: r.direction.as_str(),
            duration_ms: r.duration_ms,
            container: r.container,
            codec: r.codec,
            channels: r.channels,
            sample_rate: r.sample_rate,
            agent_id: r.agent_id,
            queue: r.queue,
            external_call_id: r.external_call_id,
            retention_class: r.retention_class,
            audio_sha256: hex::encode(Sha256::digest(&audio)),
            audio_base64: B64.encode(&audio),
            accesses: accesses(st, &r.id.to_string()).await?,
        });
    }
    let n = recordings.len();
    let body = Body {
        format: MAGIC,
        tenant: tenant.to_string(),
        caller_number: caller.expose().to_owned(),
        generated_at: rfc3339(now),
        generated_by: origin.actor.clone(),
        recordings,
    };
    let json = serde_json::to_vec_pretty(&body)
        .map_err(|e| LifecycleError::Internal(format!("encoding the archive: {e}")))?;
    Ok((seal(&keys.signing, &json), n))
}

/// The access report of one recording: every audit entry that names it.
async fn accesses(st: &Services, id: &str) -> LifecycleResult<Vec<Access>> {
    let mut out = Vec::new();
    let mut after_seq = 0;
    loop {
        let page = st
            .meta
            .audit_query(&AuditFilter {
                after_seq,
                target: Some(id.to_owned()),
                limit: 1000,
                ..AuditFilter::default()
            })
            .await?;
        let Some(last) = page.last() else {
            return Ok(out);
        };
        after_seq = last.seq;
        out.extend(page.into_iter().map(|e| {
            Access {
                seq: e.seq,
                time: e
                    .entry
                    .time
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                actor: e.entry.actor,
                action: e.entry.action,
                purpose: e.entry.purpose,
                result: e.entry.result,
            }
        }));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The test vector of docs/FORMAT.md, cross-checked with Python's `cryptography` package.
    #[test]
    fn test_vector() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let want = "callvault-subject-access-v1\n\
            ed25519 6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw= \
            IZWn/3D/xvsW5g2k3ENM7/8R1NYz1wbTHbXPTbK5KFgvIvs+C+ep2WXbgqIS7PFQFhBtevxbiH0Wx7Wikd57AQ==\n\
            {\"recordings\":[]}";
        assert_eq!(
            String::from_utf8(seal(&key, br#"{"recordings":[]}"#)).unwrap(),
            want
        );
    }

    #[test]
    fn a_sealed_archive_verifies_and_any_change_is_caught() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let archive = seal(&key, br#"{"recordings":[]}"#);
        assert_eq!(
            verify(&archive, &key.verifying_key()).unwrap(),
            br#"{"recordings":[]}"#
        );
        for i in 0..archive.len() {
            let mut bad = archive.clone();
            bad[i] ^= 0x01;
            assert!(verify(&bad, &key.verifying_key()).is_err(), "flip at {i}");
        }
        let other = SigningKey::from_bytes(&[8; 32]);
        assert!(matches!(
            verify(&archive, &other.verifying_key()),
            Err(ExportError::WrongKey { .. })
        ));
        assert!(matches!(
            verify(&archive[..archive.len() - 1], &key.verifying_key()),
            Err(ExportError::BadSignature)
        ));
    }
}
