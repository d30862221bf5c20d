//! Erasure by crypto-shredding. The age header — the only wrapped copy of a recording's file
//! key — lives in the recording's metadata row; deleting that row (in one transaction with a
//! tombstone and a queue entry for the payload blob) makes the payload undecryptable by anyone,
//! master key and tenant identity included. The payload blob is deleted afterwards; a blob
//! whose deletion fails stays queued and is retried by the next retention run.
//!
//! The audit entry is written before anything is erased (fail closed) and proves what was
//! erased without personal data: recording ids (random), SHA-256 of the blob names, counts.

use super::LifecycleResult;
use callvault_core::{BlobName, TenantId};
use callvault_service::Services;
use callvault_service::audit_log::Event;
use callvault_store::{ErasureCause, Expired, StoreError};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::sync::atomic::Ordering;

/// Blob deletions taken from the queue at a time.
const GC_BATCH: u32 = 1000;
const DELETES_IN_FLIGHT: usize = 16;

/// SHA-256 of a blob name, hex: lets an auditor match an erasure to an object in an old backup
/// without the audit record listing live object names.
pub fn blob_digest(b: &BlobName) -> String {
    hex::encode(Sha256::digest(b.to_string().as_bytes()))
}

/// What one call to [`shred`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shredded {
    pub erased: u64,
    /// Asked for, but covered by a legal hold (or already gone) when the transaction ran.
    pub spared: u64,
}

/// Crypto-shreds `victims` of `tenant`: audits the intent (as `recording.erase`, on behalf of
/// `origin`), erases the rows that no hold covers, then deletes the queued blobs.
pub async fn shred(
    st: &Services,
    origin: &Event,
    tenant: &TenantId,
    victims: &[Expired],
    cause: ErasureCause,
    reason: Option<&str>,
    now: i64,
) -> LifecycleResult<Shredded> {
    if victims.is_empty() {
        return Ok(Shredded::default());
    }
    let ids: Vec<_> = victims.iter().map(|v| v.id).collect();
    let ev = Event {
        action: "recording.erase",
        result: "ok",
        tenant: Some(tenant.to_string()),
        details: Some(serde_json::json!({
            "cause": cause.as_str(),
            "reason": reason,
            "count": victims.len(),
            "recordings": ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "blob_sha256": victims.iter().map(|v| blob_digest(&v.blob)).collect::<Vec<_>>(),
        })),
        ..origin.clone()
    };
    super::record(st, ev.clone()).await?;
    let erased = st.meta.erase_recordings(tenant, &ids, now, cause).await?;
    let spared: Vec<String> = ids
        .iter()
        .filter(|id| !erased.iter().any(|e| e.id == **id))
        .map(ToString::to_string)
        .collect();
    if !spared.is_empty() {
        // A hold arrived between the decision and the transaction: correct the record.
        let correction = Event {
            result: "spared",
            details: Some(serde_json::json!({ "cause": cause.as_str(), "not_erased": spared })),
            ..ev
        };
        super::record(st, correction).await?;
    }
    st.metrics
        .recordings_erased
        .fetch_add(erased.len() as u64, Ordering::Relaxed);
    collect_garbage(st).await?;
    Ok(Shredded {
        erased: erased.len() as u64,
        spared: spared.len() as u64,
    })
}

/// Deletes the payload blobs that erasures queued. Returns how many were deleted; a blob that
/// cannot be deleted now stays queued (logged, retried on the next run).
pub async fn collect_garbage(st: &Services) -> LifecycleResult<u64> {
    let mut deleted = 0;
    loop {
        let pending = st.meta.pending_blob_deletions(GC_BATCH).await?;
        // Deletions in flight at once: a local unlink is quick, an S3 DELETE is a round trip.
        let outcomes: Vec<_> = futures_util::stream::iter(pending.iter().copied())
            .map(|b| async move { (b, st.blobs.delete(&b).await) })
            .buffer_unordered(DELETES_IN_FLIGHT)
            .collect()
            .await;
        let mut done = Vec::with_capacity(pending.len());
        for (b, r) in outcomes {
            match r {
                Ok(()) | Err(StoreError::NotFound) => done.push(b),
                Err(e) => {
                    tracing::error!(error = %e, "deleting an erased recording's blob failed; it stays queued")
                }
            }
        }
        st.meta.blob_deletions_done(&done).await?;
        deleted += done.len() as u64;
        st.metrics
            .blobs_deleted
            .fetch_add(done.len() as u64, Ordering::Relaxed);
        if done.len() < pending.len() || pending.len() < GC_BATCH as usize {
            return Ok(deleted);
        }
    }
}
