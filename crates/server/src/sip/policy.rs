//! The one place a SIPREC call is checked against the tenant's recording policy before
//! anything is recorded: the same decision as every other ingest path
//! ([`crate::lifecycle::policy::admit_call`], which audits a refusal as `ingest.refused`).
//! Returning `Err` refuses the INVITE with 403 and the reason.

use crate::audit_log::Event;
use callvault_core::TenantId;
use std::net::SocketAddr;

pub struct Refusal(pub String);

/// Decides whether `tenant` may record a call from `peer` on `queue` (the source's line).
pub async fn admit_siprec_call(
    st: &crate::state::AppState,
    tenant: &TenantId,
    queue: Option<&str>,
    source: &str,
    peer: SocketAddr,
) -> Result<(), Refusal> {
    let origin = Event {
        actor: format!("sip:{source}"),
        tenant: Some(tenant.to_string()),
        client: Some(peer.ip().to_string()),
        ..Event::default()
    };
    crate::lifecycle::policy::admit_call(st, &origin, tenant, queue)
        .await
        .map(drop)
        .map_err(|e| Refusal(e.message))
}
