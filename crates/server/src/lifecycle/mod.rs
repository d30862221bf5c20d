//! Lifecycle and privacy: what is recorded (policy), how long it is kept (retention), what must
//! not be erased (legal holds), how it is erased (crypto-shredding), and what a caller is told
//! (subject access). The HTTP handlers are in `api/privacy.rs`; the decisions live here so that
//! every ingest path, the retention job and the CLI share them. Design: docs/design/lifecycle.md.

pub mod erase;
pub mod export;
pub mod policy;
pub mod posture;
pub mod pseudonym;
pub mod retention;

use crate::error::ApiResult;
use crate::state::AppState;
use callvault_core::{E164, TenantId};
use callvault_store::{Recording, RecordingFilter};

/// The tenant's keyed hash of a caller number: how callvault finds a caller's recordings
/// without storing the number in clear.
pub async fn caller_hash(st: &AppState, tenant: &TenantId, caller: &E164) -> ApiResult<[u8; 32]> {
    Ok(st
        .keys()?
        .caller_key(&st.meta, tenant)
        .await?
        .hash(caller.expose()))
}

/// Every recording of the caller with keyed hash `hash` in `tenant`, newest first.
pub async fn caller_recordings(
    st: &AppState,
    tenant: &TenantId,
    hash: [u8; 32],
) -> ApiResult<Vec<Recording>> {
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
