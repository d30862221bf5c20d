//! Keyed hashes for numbers stored by ingest nodes. An ingest node holds no master key, so it
//! stores a caller's number only encrypted; until a full node adds the keyed hash, that
//! recording cannot be found by number — not by a listener, a legal hold, an erasure request or
//! a subject access export. Every retention run fills the gap first.

use super::{LifecycleError, LifecycleResult};
use callvault_core::{E164, TenantId};
use callvault_crypto::{ExposeSecret, decrypt_small};
use callvault_service::Services;

const BATCH: u32 = 500;

/// Adds the keyed hash to every recording of `tenant` that has an encrypted number but no hash.
/// Returns how many it filled.
pub async fn backfill(st: &Services, tenant: &TenantId) -> LifecycleResult<u64> {
    let keys = st.keys()?;
    let hasher = keys.caller_key(&st.meta, tenant).await?;
    let mut filled = 0;
    loop {
        let page = st
            .meta
            .recordings_without_caller_hash(tenant, BATCH)
            .await?;
        for r in &page {
            let Some(enc) = &r.caller_enc else { continue };
            let ident = keys.identity(&st.meta, tenant, r.key_id).await?;
            let plain = decrypt_small(&ident, enc).map_err(|e| {
                LifecycleError::Integrity(format!("the caller number of recording {} ({e})", r.id))
            })?;
            let number = std::str::from_utf8(plain.expose_secret())
                .ok()
                .and_then(|s| E164::parse(s).ok())
                .ok_or_else(|| {
                    LifecycleError::Internal(format!(
                        "the stored caller number of recording {} is not E.164",
                        r.id
                    ))
                })?;
            st.meta
                .set_caller_hash(tenant, &r.id, &hasher.hash(number.expose()))
                .await?;
            filled += 1;
        }
        if page.len() < BATCH as usize {
            return Ok(filled);
        }
    }
}
