//! The one place a SIPREC call is checked against the tenant's recording policy before
//! anything is recorded: the same decision as every other ingest path
//! ([`crate::lifecycle::policy::admit_call`], which audits a refusal as `ingest.refused`).
//! Returning `Err` refuses the INVITE with 403 and the reason.

use crate::audit_log::Event;
use crate::lifecycle::policy::AdmissionError;
use callvault_core::TenantId;
use std::net::SocketAddr;

pub struct Refusal(pub String);

/// Decides whether `tenant` may record a call from `peer` on `queue` (the source's line).
pub async fn admit_siprec_call(
    st: &crate::Ingest,
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
    match crate::lifecycle::policy::admit_call(st, &origin, tenant, queue).await {
        Ok(_) => Ok(()),
        // The policy's own answer is for the SRC's operator: it names the tenant and queue.
        Err(e @ AdmissionError::NotRecorded { .. }) => Err(Refusal(e.to_string())),
        // Anything else is this server's trouble: the cause goes to the log, not the wire.
        Err(e) => {
            tracing::error!(source, tenant = %tenant, error = %e, "SIPREC call refused: the recording policy could not be checked");
            Err(Refusal(
                "the recording policy could not be checked; nothing was recorded".into(),
            ))
        }
    }
}
