//! Lifecycle and privacy: what is recorded (policy), how long it is kept (retention), what must
//! not be erased (legal holds), how it is erased (crypto-shredding), and what a caller is told
//! (subject access). The HTTP handlers are in `api/privacy.rs`; the decisions live here so that
//! every ingest path, the retention job and the CLI share them. Design: docs/design/lifecycle.md.

#![forbid(unsafe_code)]

pub mod erase;
pub mod export;
pub mod policy;
pub mod posture;
pub mod pseudonym;
pub mod retention;

use callvault_core::{E164, TenantId};
use callvault_service::Services;
use callvault_service::keys::KeyError;
use callvault_store::{Recording, RecordingFilter, StoreError};

/// Why a lifecycle action (a policy change, a retention run, an erasure, a subject access
/// export) was not done. The HTTP edge and the CLI each say it their own way; the cause is kept.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// A request a person must correct; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// The audit entry could not be written, so the action was not taken (fail closed).
    #[error("the audit record could not be written, so nothing was done: {0}")]
    AuditUnavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// Stored data failed its integrity check and was not used.
    #[error("{0} failed its integrity check")]
    Integrity(String),
    #[error("{0}")]
    Internal(String),
}

pub type LifecycleResult<T> = Result<T, LifecycleError>;

/// Commits `ev` before the action it records: no entry, no action.
async fn record(st: &Services, ev: callvault_service::audit_log::Event) -> LifecycleResult<()> {
    st.audit
        .record(ev)
        .await
        .map(drop)
        .map_err(LifecycleError::AuditUnavailable)
}

/// The tenant's keyed hash of a caller number: how callvault finds a caller's recordings
/// without storing the number in clear.
pub async fn caller_hash(
    st: &Services,
    tenant: &TenantId,
    caller: &E164,
) -> LifecycleResult<[u8; 32]> {
    Ok(st
        .keys()?
        .caller_key(&st.meta, tenant)
        .await?
        .hash(caller.expose()))
}

/// Every recording of the caller with keyed hash `hash` in `tenant`, newest first.
pub async fn caller_recordings(
    st: &Services,
    tenant: &TenantId,
    hash: [u8; 32],
) -> LifecycleResult<Vec<Recording>> {
    const PAGE: u32 = 500;
    let mut out: Vec<Recording> = Vec::new();
    loop {
        let f = RecordingFilter {
            caller_hash: Some(hash),
            after: out.last().map(|r| (r.started_at, r.id)),
            limit: PAGE,
            ..RecordingFilter::default()
        };
        let page = st.meta.search_recordings(tenant, &f).await?;
        let done = page.len() < PAGE as usize;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}
