//! The lifecycle's posture checks (T7: calls kept forever), run with the others in
//! the server's `posture::live_checks`.

use callvault_service::posture::{Finding, Severity};
use callvault_store::{MetadataStore, StoreError};

/// Retention is judged late only after this long, so that the hourly job is never a finding.
const GRACE_SECS: i64 = 86_400;

pub async fn checks(meta: &MetadataStore, now: i64) -> Result<Vec<Finding>, StoreError> {
    let mut f = Vec::new();
    let (mut unruled, mut overdue) = (Vec::new(), Vec::new());
    for t in meta.list_tenants().await? {
        if meta.retention_rules(&t.id).await?.is_empty() {
            unruled.push(t.id.to_string());
        } else if !meta
            .expired_recordings(&t.id, now - GRACE_SECS, None, 1)
            .await?
            .is_empty()
        {
            overdue.push(t.id.to_string());
        }
    }
    if !unruled.is_empty() {
        f.push(Finding {
            id: "tenant_without_retention",
            severity: Severity::High,
            explanation: format!(
                "tenant(s) {} have no retention rule, so their recordings are kept forever",
                unruled.join(", ")
            ),
            fix: "set at least a tenant-wide rule: POST /api/v1/tenants/{tenant}/retention-rules {\"scope\": \"tenant\", \"days\": N}".into(),
        });
    }
    if !overdue.is_empty() {
        f.push(Finding {
            id: "retention_overdue",
            severity: Severity::High,
            explanation: format!(
                "tenant(s) {} hold recordings more than a day past their retention that are not erased",
                overdue.join(", ")
            ),
            fix: "check the log for failed retention runs (`retention run failed`), then run `callvault retention run`".into(),
        });
    }
    Ok(f)
}
