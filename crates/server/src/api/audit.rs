//! The audit record for auditors: query and verify. Auditors never see audio.

use crate::api::{Json, Query, rfc3339};
use crate::audit_log::{Verification, verify_all};
use crate::error::{ApiError, ApiResult};
use crate::principal::Auditor;
use crate::state::AppState;
use axum::extract::State;
use callvault_audit::StoredEntry;
use callvault_audit::sink::FileSink;
use callvault_core::{E164, TenantId};
use callvault_store::{AuditFilter, RecordingFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries after this sequence number (for paging).
    #[param(maximum = 9223372036854775807_i64)]
    pub after_seq: Option<u64>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub tenant: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub seq: u64,
    pub time: String,
    pub actor: String,
    pub tenant: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub purpose: Option<String>,
    pub result: String,
    pub client: Option<String>,
    pub details: Option<String>,
    pub hash: String,
}

pub async fn query(
    State(st): State<AppState>,
    Auditor(p): Auditor,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<Vec<AuditEntry>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be between 1 and 1000"));
    }
    // Sequence numbers are stored as signed 64-bit integers.
    if q.after_seq.is_some_and(|s| i64::try_from(s).is_err()) {
        return Err(ApiError::bad_request(
            "`after_seq` is larger than any entry can be",
        ));
    }
    // A tenant's auditor sees only that tenant's entries.
    let tenant = match (&p.tenant, q.tenant) {
        (Some(own), Some(asked)) if asked != own.as_str() => {
            return Err(ApiError::forbidden("you audit only your own tenant"));
        }
        (Some(own), _) => Some(own.to_string()),
        (None, asked) => asked,
    };
    let mut ev = p.event("audit.query", "ok");
    ev.details =
        Some(serde_json::json!({ "after_seq": q.after_seq, "action": q.action, "limit": limit }));
    st.audit
        .record(ev)
        .await
        .map_err(ApiError::audit_unavailable)?;
    let rows = st
        .meta
        .audit_query(&AuditFilter {
            after_seq: q.after_seq.unwrap_or(0),
            tenant,
            action: q.action,
            actor: q.actor,
            target: q.target,
            limit,
        })
        .await?;
    Ok(axum::Json(rows.into_iter().map(entry_view).collect()))
}

fn entry_view(r: StoredEntry) -> AuditEntry {
    AuditEntry {
        seq: r.seq,
        time: rfc3339(r.entry.time.unix_timestamp()),
        actor: r.entry.actor,
        tenant: r.entry.tenant,
        action: r.entry.action,
        target: r.entry.target,
        purpose: r.entry.purpose,
        result: r.entry.result,
        client: r.entry.client,
        details: r.entry.details,
        hash: r.hash.to_string(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallerReportRequest {
    /// The caller's number in international form. Sent in the body so it never appears in a
    /// URL or access log; the audit entry of this report does not contain it either.
    pub caller_number: String,
    /// Required for operator-wide auditors; a tenant's auditor may only name their own.
    pub tenant: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CallerReport {
    /// The caller's recordings (newest first, at most 500): id and start time.
    pub recordings: Vec<ReportedRecording>,
    /// Every audit entry about those recordings, oldest first.
    pub entries: Vec<AuditEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct ReportedRecording {
    pub id: String,
    pub started_at: String,
}

/// Who accessed one caller's calls, and why: for subject access requests and complaints. The
/// number is matched through the tenant's keyed hash, like a listener's search.
pub async fn caller_report(
    State(st): State<AppState>,
    Auditor(p): Auditor,
    Json(req): Json<CallerReportRequest>,
) -> ApiResult<axum::Json<CallerReport>> {
    let tenant = match (&p.tenant, req.tenant) {
        (Some(own), Some(asked)) if asked != own.as_str() => {
            return Err(ApiError::forbidden("you audit only your own tenant"));
        }
        (Some(own), _) => own.clone(),
        (None, Some(asked)) => TenantId::parse(&asked)?,
        (None, None) => {
            return Err(ApiError::bad_request(
                "name the `tenant` whose caller this is (your account spans all tenants)",
            ));
        }
    };
    let number = E164::parse(&req.caller_number)?;
    let keys = st.keys()?;
    let mut ev = p.event("audit.caller_report", "ok");
    ev.tenant = Some(tenant.to_string());
    st.audit
        .record(ev)
        .await
        .map_err(ApiError::audit_unavailable)?;
    let hash = keys
        .caller_key(&st.meta, &tenant)
        .await?
        .hash(number.expose());
    let recs = st
        .meta
        .search_recordings(
            &tenant,
            &RecordingFilter {
                caller_hash: Some(hash),
                limit: 500,
                ..RecordingFilter::default()
            },
        )
        .await?;
    let mut entries = Vec::new();
    for r in &recs {
        let rows = st
            .meta
            .audit_query(&AuditFilter {
                target: Some(r.id.to_string()),
                limit: 1000,
                ..AuditFilter::default()
            })
            .await?;
        entries.extend(rows);
    }
    entries.sort_by_key(|e| e.seq);
    Ok(axum::Json(CallerReport {
        recordings: recs
            .iter()
            .map(|r| ReportedRecording {
                id: r.id.to_string(),
                started_at: rfc3339(r.started_at),
            })
            .collect(),
        entries: entries.into_iter().map(entry_view).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct VerifyReport {
    /// True when the chain, its checkpoints and the external sink all agree.
    pub intact: bool,
    pub entries: u64,
    pub checkpoints: u64,
    pub sink_checkpoints: u64,
    /// The first problem found, naming the entry.
    pub finding: Option<String>,
    pub first_bad_seq: Option<u64>,
    /// The newest signed checkpoint: the entry it covers and when it was signed.
    pub last_checkpoint_seq: Option<u64>,
    pub last_checkpoint_time: Option<String>,
}

pub async fn verify(
    State(st): State<AppState>,
    Auditor(p): Auditor,
) -> ApiResult<axum::Json<VerifyReport>> {
    let keys = st.keys()?;
    let sink = FileSink::new(st.cfg.sink_path());
    let outcome = verify_all(&st.meta, keys.audit_verifying, &sink)
        .await
        .map_err(ApiError::internal)?;
    let last = st
        .meta
        .checkpoints()
        .await?
        .into_iter()
        .max_by_key(|c| c.seq);
    let last_checkpoint_seq = last.as_ref().map(|c| c.seq);
    let last_checkpoint_time = last.map(|c| rfc3339(c.time.unix_timestamp()));
    let report = match outcome {
        Verification::Intact(r) => VerifyReport {
            intact: true,
            entries: r.entries,
            checkpoints: r.checkpoints,
            sink_checkpoints: r.sink_checkpoints,
            finding: None,
            first_bad_seq: None,
            last_checkpoint_seq,
            last_checkpoint_time,
        },
        Verification::Broken(f) => VerifyReport {
            intact: false,
            entries: 0,
            checkpoints: 0,
            sink_checkpoints: 0,
            first_bad_seq: Some(first_seq(&f)),
            finding: Some(f.to_string()),
            last_checkpoint_seq,
            last_checkpoint_time,
        },
    };
    let mut ev = p.event("audit.verify", if report.intact { "ok" } else { "broken" });
    ev.details = Some(serde_json::json!({ "first_bad_seq": report.first_bad_seq }));
    st.audit
        .record(ev)
        .await
        .map_err(ApiError::audit_unavailable)?;
    Ok(axum::Json(report))
}

pub fn first_seq(f: &callvault_audit::Finding) -> u64 {
    use callvault_audit::Finding::*;
    match *f {
        Altered { seq }
        | BadCheckpointSignature { seq }
        | CheckpointMismatch { seq }
        | SinkMismatch { seq } => seq,
        OutOfOrder { seq, .. } => seq,
        Missing { expected, .. } => expected,
        Truncated { last_entry, .. } => last_entry + 1,
    }
}
