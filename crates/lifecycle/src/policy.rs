//! The recording policy decision. Every ingest path — file upload, HTTPS live ingest, SIPREC —
//! asks [`admit_call`] before it stores a byte, so that nothing is recorded that no policy
//! asks for.

use super::{LifecycleError, LifecycleResult};
use callvault_core::TenantId;
use callvault_service::Services;
use callvault_service::audit_log::Event;
use callvault_store::{RecordingPolicy, RetentionRule, RuleScope, StoreError};
use std::sync::atomic::Ordering;

/// `parties` values: which legs of a call a live recorder keeps.
pub const PARTIES: [&str; 3] = ["both", "caller", "agent"];

/// Longest retention a rule may set: a century (keeps `days × 86400` far from overflow).
pub const MAX_DAYS: i64 = 36_500;

/// A queue, class or agent name: 1 to 128 characters without control characters.
pub fn label(field: &str, v: &str) -> LifecycleResult<()> {
    if v.is_empty() || v.len() > 128 || v.chars().any(char::is_control) {
        return Err(LifecycleError::Invalid(format!(
            "`{field}` must be 1 to 128 characters without control characters"
        )));
    }
    Ok(())
}

/// Checks a policy a person asked for; `queue: None` is the tenant's default.
pub fn checked_policy(
    tenant: TenantId,
    queue: Option<String>,
    record: bool,
    parties: String,
    retention_class: String,
) -> LifecycleResult<RecordingPolicy> {
    if let Some(q) = &queue {
        label("queue", q)?;
    }
    label("retention_class", &retention_class)?;
    if !PARTIES.contains(&parties.as_str()) {
        return Err(LifecycleError::Invalid(
            "`parties` must be both, caller or agent".into(),
        ));
    }
    Ok(RecordingPolicy {
        tenant,
        queue: queue.unwrap_or_default(),
        record,
        parties,
        retention_class,
        updated_by: String::new(),
        updated_at: 0,
    })
}

/// Checks a retention rule a person asked for.
pub fn checked_rule(
    tenant: TenantId,
    scope: &str,
    value: Option<String>,
    days: i64,
) -> LifecycleResult<RetentionRule> {
    let scope = RuleScope::parse(scope)
        .ok_or_else(|| LifecycleError::Invalid("`scope` must be tenant, queue or class".into()))?;
    let value = match (scope, value) {
        (RuleScope::Tenant, None) => String::new(),
        (RuleScope::Tenant, Some(_)) => {
            return Err(LifecycleError::Invalid(
                "a `tenant` rule takes no `value`".into(),
            ));
        }
        (_, Some(v)) => {
            label("value", &v)?;
            v
        }
        (_, None) => {
            return Err(LifecycleError::Invalid(
                "a `queue` or `class` rule needs `value`: the queue or class it is for".into(),
            ));
        }
    };
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(LifecycleError::Invalid(
            "`days` must be between 1 and 36500".into(),
        ));
    }
    Ok(RetentionRule {
        tenant,
        scope,
        value,
        days,
        updated_by: String::new(),
        updated_at: 0,
    })
}

/// Stores `p` as `origin`'s change at `now`, audited first (`policy.recording.set`).
pub async fn set_policy(
    st: &Services,
    origin: &Event,
    mut p: RecordingPolicy,
    now: i64,
) -> LifecycleResult<RecordingPolicy> {
    (p.updated_by, p.updated_at) = (origin.actor.clone(), now);
    let details = serde_json::json!({
        "queue": p.queue, "record": p.record, "parties": p.parties, "retention_class": p.retention_class,
    });
    super::record(
        st,
        change(origin, "policy.recording.set", &p.tenant, details),
    )
    .await?;
    st.meta.put_recording_policy(&p).await?;
    Ok(p)
}

/// Stores `r` as `origin`'s change at `now`, audited first (`policy.retention.set`).
pub async fn set_rule(
    st: &Services,
    origin: &Event,
    mut r: RetentionRule,
    now: i64,
) -> LifecycleResult<RetentionRule> {
    (r.updated_by, r.updated_at) = (origin.actor.clone(), now);
    let details =
        serde_json::json!({ "scope": r.scope.as_str(), "value": r.value, "days": r.days });
    super::record(
        st,
        change(origin, "policy.retention.set", &r.tenant, details),
    )
    .await?;
    st.meta.put_retention_rule(&r).await?;
    Ok(r)
}

/// The audit entry of `origin` changing one of `tenant`'s policies.
fn change(
    origin: &Event,
    action: &'static str,
    tenant: &TenantId,
    details: serde_json::Value,
) -> Event {
    Event {
        action,
        result: "ok",
        tenant: Some(tenant.to_string()),
        details: Some(details),
        ..origin.clone()
    }
}

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

/// Why a call was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// No policy asks for this call; the message says which tenant and queue, and that nothing
    /// was stored. Each edge adds how its caller can change that.
    #[error("call refused: {reason} (tenant `{tenant}`, queue {}); nothing was stored", queue.as_deref().map_or("not given".to_owned(), |q| format!("`{q}`")))]
    NotRecorded {
        reason: &'static str,
        tenant: TenantId,
        queue: Option<String>,
    },
    /// The refusal could not be audited; the call is refused all the same.
    #[error("call refused, and the refusal could not be audited: {0}")]
    AuditUnavailable(String),
    #[error("reading the recording policies: {0}")]
    Store(#[from] StoreError),
}

/// Decides whether a call of `tenant` on `queue` may be recorded. A call that no policy covers,
/// or whose policy says not to record, is refused with an error the recorder can act on, and the
/// refusal is audited (as `ingest.refused`, from `origin`'s actor and client). If the refusal
/// cannot be audited, the answer is still a refusal.
pub async fn admit_call(
    st: &Services,
    origin: &Event,
    tenant: &TenantId,
    queue: Option<&str>,
) -> Result<Admission, AdmissionError> {
    let policies = st.meta.recording_policies(tenant).await?;
    let reason = match covering(&policies, queue) {
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
        details: Some(serde_json::json!({ "queue": queue, "reason": reason })),
        ..origin.clone()
    };
    st.audit
        .record(ev)
        .await
        .map_err(AdmissionError::AuditUnavailable)?;
    Err(AdmissionError::NotRecorded {
        reason,
        tenant: tenant.clone(),
        queue: queue.map(str::to_owned),
    })
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
