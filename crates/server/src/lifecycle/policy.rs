//! The recording policy decision. Every ingest path — file upload, HTTPS live ingest, SIPREC —
//! asks [`admit_call`] before it stores a byte, so that nothing is recorded that no policy
//! asks for.

use crate::audit_log::Event;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::http::StatusCode;
use callvault_core::TenantId;
use callvault_store::RecordingPolicy;
use std::sync::atomic::Ordering;

/// `parties` values: which legs of a call a live recorder keeps.
pub const PARTIES: [&str; 3] = ["both", "caller", "agent"];

/// What the policy that admitted a call says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// Store on the recording; selects its retention rules.
    pub retention_class: String,
    /// `both`, `caller` or `agent`. A file upload stores the file as sent (it cannot split a
    /// mixed channel); live ingest keeps only these legs.
    pub parties: String,
}

/// The policy that covers `queue`: the queue's own, else the tenant's default (`queue = ""`).
pub fn covering<'a>(
    policies: &'a [RecordingPolicy],
    queue: Option<&str>,
) -> Option<&'a RecordingPolicy> {
    let own = queue.and_then(|q| policies.iter().find(|p| p.queue == q));
    own.or_else(|| policies.iter().find(|p| p.queue.is_empty()))
}

/// Decides whether a call of `tenant` on `queue` may be recorded. A call that no policy covers,
/// or whose policy says not to record, is refused with an error the recorder can act on, and the
/// refusal is audited (as `ingest.refused`, from `origin`'s actor and client). If the refusal
/// cannot be audited, the answer is still a refusal.
pub async fn admit_call(
    st: &AppState,
    origin: &Event,
    tenant: &TenantId,
    queue: Option<&str>,
) -> ApiResult<Admission> {
    let policies = st.meta.recording_policies(tenant).await?;
    let why = match covering(&policies, queue) {
        Some(p) if p.record => {
            return Ok(Admission {
                retention_class: p.retention_class.clone(),
                parties: p.parties.clone(),
            });
        }
        Some(_) => "the recording policy for this queue says not to record",
        None => "no recording policy covers this queue",
    };
    st.metrics.ingest_refused.fetch_add(1, Ordering::Relaxed);
    let ev = Event {
        action: "ingest.refused",
        result: "refused",
        details: Some(serde_json::json!({ "queue": queue, "reason": why })),
        ..origin.clone()
    };
    st.audit
        .record(ev)
        .await
        .map_err(ApiError::audit_unavailable)?;
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "not_recorded",
        format!(
            "call refused: {why} (tenant `{tenant}`, queue {}); nothing was stored. The tenant's privacy officer sets policies with POST /api/v1/tenants/{tenant}/recording-policies",
            queue.map_or("not given".to_owned(), |q| format!("`{q}`"))
        ),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(queue: &str, record: bool, class: &str) -> RecordingPolicy {
        RecordingPolicy {
            tenant: TenantId::parse("acme").unwrap(),
            queue: queue.into(),
            record,
            parties: "both".into(),
            retention_class: class.into(),
            updated_by: "user:po".into(),
            updated_at: 0,
        }
    }

    #[test]
    fn the_queue_policy_beats_the_default_and_nothing_covers_nothing() {
        let both = [p("", true, "standard"), p("triage", false, "short")];
        assert_eq!(covering(&both, Some("triage")), Some(&both[1]));
        assert_eq!(covering(&both, Some("other")), Some(&both[0]));
        assert_eq!(covering(&both, None), Some(&both[0]));
        let only_queue = [p("triage", true, "short")];
        assert_eq!(covering(&only_queue, Some("other")), None);
        assert_eq!(covering(&only_queue, None), None);
        assert_eq!(covering(&[], Some("triage")), None);
    }
}
