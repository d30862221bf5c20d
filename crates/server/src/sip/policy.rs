//! The one place a SIPREC call is checked against the tenant's recording policy before
//! anything is recorded. Issue 6 (recording policy) fills this in; until then every call from a
//! known source is admitted. Returning `Err` refuses the INVITE with 403 and the reason, and the
//! refusal is audited.

use callvault_core::TenantId;
use callvault_sip::metadata::Metadata;

pub struct Refusal(pub String);

/// Decides whether `tenant` may record this call.
pub async fn admit_siprec_call(
    _st: &crate::state::AppState,
    _tenant: &TenantId,
    _metadata: &Metadata,
) -> Result<(), Refusal> {
    Ok(())
}
