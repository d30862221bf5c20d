//! Lifecycle and privacy over HTTP: recording policies and retention rules (a tenant's privacy
//! officer, or an admin managing the tenant), legal holds, erasure, subject access and the
//! records of processing (privacy officers). The decisions live in `crate::lifecycle`.

use crate::api::{Json, Path, Query, parse_rfc3339, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::lifecycle::erase::{Shredded, shred};
use crate::lifecycle::policy::{checked_policy, checked_rule, label, set_policy, set_rule};
use crate::lifecycle::{caller_hash, caller_recordings, export};
use crate::principal::{PolicyEditor, PrivacyOfficer};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use callvault_core::{E164, RecordingId, TenantId};
use callvault_store::{
    ErasureCause, ErasureRequest, Expired, HoldScope, LegalHold, RecordingPolicy, RetentionRule,
    StoreError,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A reason for a privacy action: 10 to 500 characters, so that it says something.
fn reason(v: &str) -> ApiResult<&str> {
    let n = v.trim().chars().count();
    if !(10..=500).contains(&n) || v.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "`reason` must be 10 to 500 characters without control characters: say why (case number, request reference)",
        ));
    }
    Ok(v.trim())
}

fn audited(r: Result<u64, String>) -> ApiResult<()> {
    r.map(drop).map_err(ApiError::audit_unavailable)
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{:032x}", rand::random::<u128>())
}

// ---- recording policies ------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRecordingPolicy {
    /// The queue (line) this policy is for; omit for the tenant's default.
    pub queue: Option<String>,
    /// Record calls on this queue at all.
    pub record: bool,
    /// `both`, `caller` or `agent`.
    pub parties: String,
    /// The retention class recordings admitted by this policy get.
    pub retention_class: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecordingPolicyView {
    /// Absent for the tenant's default.
    pub queue: Option<String>,
    pub record: bool,
    pub parties: String,
    pub retention_class: String,
    pub updated_by: String,
    pub updated_at: String,
}

fn policy_view(p: RecordingPolicy) -> RecordingPolicyView {
    RecordingPolicyView {
        queue: (!p.queue.is_empty()).then_some(p.queue),
        record: p.record,
        parties: p.parties,
        retention_class: p.retention_class,
        updated_by: p.updated_by,
        updated_at: rfc3339(p.updated_at),
    }
}

/// The tenant named in the path, if this editor may change it and it exists.
async fn editable(st: &AppState, who: &PolicyEditor, tenant: &str) -> ApiResult<TenantId> {
    let tenant = TenantId::parse(tenant).map_err(|_| ApiError::not_found())?;
    who.for_tenant(&tenant)?;
    st.meta.get_tenant(&tenant).await?;
    Ok(tenant)
}

pub async fn list_recording_policies(
    State(st): State<AppState>,
    who: PolicyEditor,
    Path(tenant): Path<String>,
) -> ApiResult<axum::Json<Vec<RecordingPolicyView>>> {
    let tenant = editable(&st, &who, &tenant).await?;
    let all = st.meta.recording_policies(&tenant).await?;
    Ok(axum::Json(all.into_iter().map(policy_view).collect()))
}

pub async fn set_recording_policy(
    State(st): State<AppState>,
    who: PolicyEditor,
    Path(tenant): Path<String>,
    Json(req): Json<SetRecordingPolicy>,
) -> ApiResult<axum::Json<RecordingPolicyView>> {
    let tenant = editable(&st, &who, &tenant).await?;
    let p = checked_policy(
        tenant,
        req.queue,
        req.record,
        req.parties,
        req.retention_class,
    )?;
    let p = set_policy(&st, &who.0.event("", ""), p, st.clock.now()).await?;
    Ok(axum::Json(policy_view(p)))
}

// ---- retention rules ---------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRetentionRule {
    /// `tenant` (every recording), `queue` or `class`.
    pub scope: String,
    /// The queue or retention class; omit for `tenant`.
    pub value: Option<String>,
    /// Keep matching recordings this many days after the call started (1 to 36500). Where rules
    /// overlap, the longest wins.
    #[schema(minimum = 1, maximum = 36500)]
    pub days: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RetentionRuleView {
    pub scope: String,
    pub value: Option<String>,
    pub days: i64,
    pub updated_by: String,
    pub updated_at: String,
}

fn rule_view(r: RetentionRule) -> RetentionRuleView {
    RetentionRuleView {
        scope: r.scope.as_str().to_owned(),
        value: (!r.value.is_empty()).then_some(r.value),
        days: r.days,
        updated_by: r.updated_by,
        updated_at: rfc3339(r.updated_at),
    }
}

pub async fn list_retention_rules(
    State(st): State<AppState>,
    who: PolicyEditor,
    Path(tenant): Path<String>,
) -> ApiResult<axum::Json<Vec<RetentionRuleView>>> {
    let tenant = editable(&st, &who, &tenant).await?;
    let all = st.meta.retention_rules(&tenant).await?;
    Ok(axum::Json(all.into_iter().map(rule_view).collect()))
}

pub async fn set_retention_rule(
    State(st): State<AppState>,
    who: PolicyEditor,
    Path(tenant): Path<String>,
    Json(req): Json<SetRetentionRule>,
) -> ApiResult<axum::Json<RetentionRuleView>> {
    let tenant = editable(&st, &who, &tenant).await?;
    let r = checked_rule(tenant, &req.scope, req.value, req.days)?;
    let r = set_rule(&st, &who.0.event("", ""), r, st.clock.now()).await?;
    Ok(axum::Json(rule_view(r)))
}

// ---- legal holds -------------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHold {
    /// Hold one recording…
    pub recording_id: Option<String>,
    /// …or every recording of a caller (now and later)…
    pub caller_number: Option<String>,
    /// …or every recording matching all of these (now and later).
    pub search: Option<HoldSearch>,
    pub reason: String,
    /// The hold ends by itself at this time (RFC 3339); omit to hold until lifted.
    pub until: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldSearch {
    pub queue: Option<String>,
    pub agent_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HoldView {
    pub id: String,
    /// `recording`, `caller` or `search`. A caller hold never shows the number.
    pub kind: &'static str,
    pub recording_id: Option<String>,
    pub queue: Option<String>,
    pub agent_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub reason: String,
    pub created_by: String,
    pub created_at: String,
    pub until: Option<String>,
    pub lifted_by: Option<String>,
    pub lifted_at: Option<String>,
}

fn hold_view(h: LegalHold) -> HoldView {
    let mut v = HoldView {
        id: h.id,
        kind: "search",
        recording_id: None,
        queue: None,
        agent_id: None,
        from: None,
        to: None,
        reason: h.reason,
        created_by: h.created_by,
        created_at: rfc3339(h.created_at),
        until: h.until.map(rfc3339),
        lifted_by: h.lifted_by,
        lifted_at: h.lifted_at.map(rfc3339),
    };
    match h.scope {
        HoldScope::Recording(id) => {
            v.kind = "recording";
            v.recording_id = Some(id.to_string());
        }
        HoldScope::Caller(_) => v.kind = "caller",
        HoldScope::Search {
            queue,
            agent_id,
            from,
            to,
        } => {
            v.queue = queue;
            v.agent_id = agent_id;
            v.from = from.map(rfc3339);
            v.to = to.map(rfc3339);
        }
    }
    v
}

fn opt_time(field: &str, v: Option<&str>) -> ApiResult<Option<i64>> {
    v.map(|s| parse_rfc3339(field, s)).transpose()
}

pub async fn create_hold(
    State(st): State<AppState>,
    PrivacyOfficer(p, tenant, _): PrivacyOfficer,
    Json(req): Json<NewHold>,
) -> ApiResult<(StatusCode, axum::Json<HoldView>)> {
    let why = reason(&req.reason)?.to_owned();
    let until = opt_time("until", req.until.as_deref())?;
    let scope = match (req.recording_id, req.caller_number, req.search) {
        (Some(id), None, None) => {
            let id = RecordingId::parse(&id)?;
            st.meta.get_recording(&tenant, &id).await?;
            HoldScope::Recording(id)
        }
        (None, Some(n), None) => {
            HoldScope::Caller(caller_hash(&st, &tenant, &E164::parse(&n)?).await?)
        }
        (None, None, Some(s)) => {
            for (f, v) in [("queue", &s.queue), ("agent_id", &s.agent_id)] {
                if let Some(v) = v {
                    label(f, v)?;
                }
            }
            HoldScope::Search {
                queue: s.queue,
                agent_id: s.agent_id,
                from: opt_time("from", s.from.as_deref())?,
                to: opt_time("to", s.to.as_deref())?,
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of `recording_id`, `caller_number` or `search`",
            ));
        }
    };
    let h = LegalHold {
        id: new_id("hold"),
        tenant,
        scope,
        reason: why,
        created_by: p.actor.clone(),
        created_at: st.clock.now(),
        until,
        lifted_by: None,
        lifted_at: None,
    };
    let view = hold_view(h.clone());
    let mut ev = p.event("hold.create", "ok");
    ev.target = Some(h.id.clone());
    ev.details = Some(serde_json::json!({
        "kind": view.kind, "recording": view.recording_id, "queue": view.queue,
        "agent_id": view.agent_id, "from": view.from, "to": view.to, "until": view.until, "reason": view.reason,
    }));
    audited(st.audit.record(ev).await)?;
    st.meta.create_hold(&h).await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

pub async fn list_holds(
    State(st): State<AppState>,
    PrivacyOfficer(_, tenant, _): PrivacyOfficer,
) -> ApiResult<axum::Json<Vec<HoldView>>> {
    let all = st.meta.holds(&tenant).await?;
    Ok(axum::Json(all.into_iter().map(hold_view).collect()))
}

pub async fn lift_hold(
    State(st): State<AppState>,
    PrivacyOfficer(p, tenant, _): PrivacyOfficer,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut ev = p.event("hold.lift", "ok");
    ev.target = Some(id.clone());
    audited(st.audit.record(ev.clone()).await)?;
    if let Err(e) = st
        .meta
        .lift_hold(&tenant, &id, &p.actor, st.clock.now())
        .await
    {
        // Recorded before it ran; correct the record.
        ev.result = "error";
        audited(st.audit.record(ev).await)?;
        return Err(e.into());
    }
    Ok(StatusCode::NO_CONTENT)
}

// ---- erasure -----------------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    /// Why (e.g. the art. 17 request reference).
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct EraseResult {
    /// Recordings crypto-shredded.
    pub erased: u64,
    /// Recordings kept because a legal hold covers them.
    pub held: u64,
}

fn held_conflict() -> ApiError {
    let mut e = ApiError::conflict(
        "this recording is under a legal hold and cannot be erased: lift the hold first (POST /api/v1/holds/{id}/lift)",
    );
    e.code = "held";
    e
}

/// Erases one recording at once: a privacy officer's action with a reason.
pub async fn erase_recording(
    State(st): State<AppState>,
    PrivacyOfficer(p, tenant, _): PrivacyOfficer,
    Path(id): Path<String>,
    Json(req): Json<EraseRequest>,
) -> ApiResult<axum::Json<EraseResult>> {
    let id = RecordingId::parse(&id)?;
    let why = reason(&req.reason)?;
    let now = st.clock.now();
    let rec = st.meta.get_recording(&tenant, &id).await?;
    if st.meta.is_held(&tenant, &id, now).await? {
        return Err(held_conflict());
    }
    let victim = Expired {
        id,
        blob: rec.blob,
        started_at: rec.started_at,
    };
    let origin = p.event("", "");
    let Shredded { erased, spared } = shred(
        &st,
        &origin,
        &tenant,
        &[victim],
        ErasureCause::Request,
        Some(why),
        now,
    )
    .await?;
    if erased == 0 {
        return Err(held_conflict());
    }
    Ok(axum::Json(EraseResult {
        erased,
        held: spared,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewErasure {
    pub caller_number: String,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct ErasurePending {
    pub id: String,
    /// Recordings of the caller stored now.
    pub recordings: usize,
    /// `awaiting_approval`: a second, different privacy officer must approve.
    pub status: &'static str,
}

/// Asks to erase every recording of a caller; nothing is erased until a second privacy
/// officer approves.
pub async fn request_erasure(
    State(st): State<AppState>,
    PrivacyOfficer(p, tenant, _): PrivacyOfficer,
    Json(req): Json<NewErasure>,
) -> ApiResult<(StatusCode, axum::Json<ErasurePending>)> {
    let why = reason(&req.reason)?.to_owned();
    let hash = caller_hash(&st, &tenant, &E164::parse(&req.caller_number)?).await?;
    let n = caller_recordings(&st, &tenant, hash).await?.len();
    let r = ErasureRequest {
        id: new_id("era"),
        tenant,
        caller_hash: hash,
        reason: why,
        requested_by: p.actor.clone(),
        requested_at: st.clock.now(),
        approved_by: None,
        approved_at: None,
    };
    let mut ev = p.event("erasure.request", "ok");
    ev.target = Some(r.id.clone());
    ev.details = Some(serde_json::json!({ "recordings": n, "reason": r.reason }));
    audited(st.audit.record(ev).await)?;
    st.meta.create_erasure_request(&r).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ErasurePending {
            id: r.id,
            recordings: n,
            status: "awaiting_approval",
        }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct ErasureView {
    pub id: String,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: String,
    /// Absent while the request awaits a second officer.
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
}

/// The tenant's erasure requests, so that a second officer can find the ones awaiting them.
/// The caller's number is not shown (only its keyed hash is kept).
pub async fn list_erasures(
    State(st): State<AppState>,
    PrivacyOfficer(_, tenant, _): PrivacyOfficer,
) -> ApiResult<axum::Json<Vec<ErasureView>>> {
    let all = st.meta.erasure_requests(&tenant).await?;
    Ok(axum::Json(
        all.into_iter()
            .map(|r| ErasureView {
                id: r.id,
                reason: r.reason,
                requested_by: r.requested_by,
                requested_at: rfc3339(r.requested_at),
                approved_by: r.approved_by,
                approved_at: r.approved_at.map(rfc3339),
            })
            .collect(),
    ))
}

/// A second privacy officer approves a caller's erasure, which then runs.
pub async fn approve_erasure(
    State(st): State<AppState>,
    PrivacyOfficer(p, tenant, _): PrivacyOfficer,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<EraseResult>> {
    let r = st.meta.get_erasure_request(&tenant, &id).await?;
    let mut ev = p.event("erasure.approve", "ok");
    ev.target = Some(id.clone());
    if r.requested_by == p.actor {
        ev.result = "denied";
        audited(st.audit.record(ev).await)?;
        return Err(ApiError::forbidden(
            "you asked for this erasure: a second, different privacy officer must approve it",
        ));
    }
    if r.approved_by.is_some() {
        return Err(ApiError::conflict(
            "this erasure was already approved and carried out",
        ));
    }
    audited(st.audit.record(ev).await)?;
    let now = st.clock.now();
    st.meta
        .approve_erasure_request(&tenant, &id, &p.actor, now)
        .await
        .map_err(|e| match e {
            // Another officer approved it a moment ago (the store says which rule refused).
            StoreError::Conflict(why) => ApiError::conflict(why),
            other => other.into(),
        })?;
    let recs = caller_recordings(&st, &tenant, r.caller_hash).await?;
    let victims: Vec<Expired> = recs
        .into_iter()
        .map(|r| Expired {
            id: r.id,
            blob: r.blob,
            started_at: r.started_at,
        })
        .collect();
    let mut origin = p.event("", "");
    origin.target = Some(id);
    let mut total = Shredded::default();
    for chunk in victims.chunks(st.cfg.retention.batch.max(1) as usize) {
        let s = shred(
            &st,
            &origin,
            &tenant,
            chunk,
            ErasureCause::Request,
            Some(&r.reason),
            now,
        )
        .await?;
        total.erased += s.erased;
        total.spared += s.spared;
    }
    Ok(axum::Json(EraseResult {
        erased: total.erased,
        held: total.spared,
    }))
}

// ---- subject access ----------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectAccessRequest {
    pub caller_number: String,
}

/// The signed archive of everything stored about one caller (docs/FORMAT.md).
pub async fn subject_access(
    State(st): State<AppState>,
    PrivacyOfficer(p, tenant, _): PrivacyOfficer,
    Json(req): Json<SubjectAccessRequest>,
) -> ApiResult<Response> {
    let caller = E164::parse(&req.caller_number)?;
    let origin = p.event("", "");
    let (archive, _) = export::build(&st, &origin, &tenant, &caller, st.clock.now()).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.callvault.subject-access",
            ),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"subject-access.cvsa\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        archive,
    )
        .into_response())
}

// ---- records of processing ---------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Start of the period for erasure counts (RFC 3339); default one year ago.
    pub since: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ClassCount {
    /// Absent for recordings stored before retention classes existed.
    pub retention_class: Option<String>,
    pub recordings: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ProcessingReport {
    pub tenant: String,
    pub generated_at: String,
    pub period_start: String,
    pub recordings: u64,
    pub by_retention_class: Vec<ClassCount>,
    pub oldest_recording_started_at: Option<String>,
    pub active_legal_holds: u64,
    pub erased_in_period: u64,
    pub recording_policies: Vec<RecordingPolicyView>,
    pub retention_rules: Vec<RetentionRuleView>,
}

/// GDPR art. 30: what the tenant stores, under which rules, and what was erased.
pub async fn processing_report(
    State(st): State<AppState>,
    who: PolicyEditor,
    Path(tenant): Path<String>,
    Query(q): Query<ReportQuery>,
) -> ApiResult<axum::Json<ProcessingReport>> {
    let tenant = editable(&st, &who, &tenant).await?;
    let now = st.clock.now();
    let since = opt_time("since", q.since.as_deref())?.unwrap_or(now - 365 * 86_400);
    let mut ev = who.0.event("report.processing", "ok");
    ev.tenant = Some(tenant.to_string());
    audited(st.audit.record(ev).await)?;
    let stats = st.meta.tenant_stats(&tenant, since, now).await?;
    let policies = st.meta.recording_policies(&tenant).await?;
    let rules = st.meta.retention_rules(&tenant).await?;
    Ok(axum::Json(ProcessingReport {
        tenant: tenant.to_string(),
        generated_at: rfc3339(now),
        period_start: rfc3339(since),
        recordings: stats.by_class.iter().map(|c| c.1).sum(),
        by_retention_class: stats
            .by_class
            .into_iter()
            .map(|(retention_class, recordings)| ClassCount {
                retention_class,
                recordings,
            })
            .collect(),
        oldest_recording_started_at: stats.oldest_started_at.map(rfc3339),
        active_legal_holds: stats.active_holds,
        erased_in_period: stats.erased_in_period,
        recording_policies: policies.into_iter().map(policy_view).collect(),
        retention_rules: rules.into_iter().map(rule_view).collect(),
    }))
}
