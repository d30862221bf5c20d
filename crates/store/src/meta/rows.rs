//! Reading stored rows into model types, written once for every SQL adapter.
//!
//! An adapter implements [`Cells`] for its driver's row type (a handful of primitive getters);
//! everything else here is pure: the column lists both schemas share, the parsing of stored
//! text into newtypes, and the checks that turn a malformed row into [`StoreError::Corrupt`]
//! instead of a panic or a wrong value. Writing rows stays in each adapter, because parameter
//! binding is where the drivers differ.

use crate::StoreError;
use crate::model::*;
use callvault_audit::{Checkpoint, Entry, Hash, StoredEntry};
use callvault_core::{BlobName, Direction, RecordingId, Role, TenantId, UserId, Username};
use std::fmt::Display;
use time::OffsetDateTime;

// Column lists: each `*_row` function below reads its columns in exactly this order.
pub(super) const TENANT_COLS: &str = "id, name, caller_hash_key_sealed, created_at";
pub(super) const KEY_COLS: &str = "tenant, key_id, recipient, identity_sealed, active, created_at";
pub(super) const USER_COLS: &str = "id, username, tenant, role, password_hash, must_change_password, totp_sealed, totp_last_step, failed_logins, locked_until, disabled, created_at";
pub(super) const SESSION_COLS: &str =
    "hash, user_id, stage, pending_totp_sealed, created_at, last_seen";
pub(super) const TOKEN_COLS: &str =
    "id, hash, name, tenant, role, created_by, created_at, expires_at, revoked_at";
pub(super) const REC_COLS: &str = "id, tenant, blob, header, key_id, container, codec, channels, sample_rate, duration_ms, size, started_at, direction, caller_hash, caller_enc, agent_id, queue, external_call_id, created_at, retention_class";
pub(super) const LIVE_COLS: &str = "id, tenant, key_id, codec, sample_rate, channels, frame_bytes, started_at, direction, caller_hash, caller_enc, agent_id, queue, external_call_id, state, total_chunks, gaps, updated_at, created_at";
pub(super) const GRANT_COLS: &str = "hash, recording, tenant, user_id, purpose, expires_at";
pub(super) const AUDIT_COLS: &str =
    "seq, time_ns, actor, tenant, action, target, purpose, result, client, details, hash";
pub(super) const CHECKPOINT_COLS: &str = "seq, hash, time_ns, signature";

pub(super) const DAY_SECS: i64 = 86_400;

pub(super) const PARTY_COLS: &str = "number_hash, number_enc";

pub(super) fn party_row(r: &dyn Cells) -> Result<Party, StoreError> {
    Ok(Party {
        number_hash: hash32("party number_hash", r.bytes(0)?)?,
        number_enc: r.bytes(1)?,
    })
}

/// `day, calls, bytes`
pub(super) fn daily_recordings_row(r: &dyn Cells) -> Result<DailyRecordings, StoreError> {
    Ok(DailyRecordings {
        day: r.int(0)?,
        calls: i64_to_u64(r.int(1)?),
        bytes: i64_to_u64(r.int(2)?),
    })
}

/// `day, actor, count`
pub(super) fn daily_actions_row(r: &dyn Cells) -> Result<DailyActions, StoreError> {
    Ok(DailyActions {
        day: r.int(0)?,
        actor: r.text(1)?,
        count: i64_to_u64(r.int(2)?),
    })
}

/// The primitive getters an adapter provides for one result row, by column index. A driver
/// error (wrong type, NULL where a value was required) comes back as a `StoreError`.
pub(super) trait Cells {
    fn text(&self, i: usize) -> Result<String, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn flag(&self, i: usize) -> Result<bool, StoreError>;
    fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError>;
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError>;
}

/// Implements [`Cells`] for a driver's row type `$row` whose generic getter `$get` reads a
/// column as any type and whose errors `$map_err` turns into a `StoreError`: the seven getters
/// differ only in the type they ask for.
macro_rules! impl_cells {
    ($row:ty, $get:ident, $map_err:path) => {
        impl $crate::meta::rows::Cells for $row {
            fn text(&self, i: usize) -> Result<String, $crate::StoreError> {
                self.$get(i).map_err($map_err)
            }
            fn opt_text(&self, i: usize) -> Result<Option<String>, $crate::StoreError> {
                self.$get(i).map_err($map_err)
            }
            fn int(&self, i: usize) -> Result<i64, $crate::StoreError> {
                self.$get(i).map_err($map_err)
            }
            fn opt_int(&self, i: usize) -> Result<Option<i64>, $crate::StoreError> {
                self.$get(i).map_err($map_err)
            }
            fn flag(&self, i: usize) -> Result<bool, $crate::StoreError> {
                self.$get(i).map_err($map_err)
            }
            fn bytes(&self, i: usize) -> Result<Vec<u8>, $crate::StoreError> {
                self.$get(i).map_err($map_err)
            }
            fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, $crate::StoreError> {
                self.$get(i).map_err($map_err)
            }
        }
    };
}
pub(super) use impl_cells;

fn corrupt(what: &str, e: impl Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// Unsigned model fields are stored in signed 64-bit columns as the same 64 bits, so every
/// value round-trips (SQLite and PostgreSQL have no unsigned integers).
pub(super) fn u64_to_i64(v: u64) -> i64 {
    v as i64
}

fn i64_to_u64(v: i64) -> u64 {
    v as u64
}

/// An instant as stored: unix nanoseconds (saturating far past the year 2262).
pub(super) fn ns(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

fn time_ns(what: &str, v: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v)).map_err(|e| corrupt(what, e))
}

fn hash32(what: &str, v: Vec<u8>) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(v.as_slice())
        .map_err(|_| corrupt(what, format!("{} bytes, expected 32", v.len())))
}

fn narrow<T: TryFrom<i64>>(what: &str, v: i64) -> Result<T, StoreError> {
    T::try_from(v).map_err(|_| corrupt(what, format!("{v} out of range")))
}

fn tenant_id(s: String) -> Result<TenantId, StoreError> {
    TenantId::parse(&s).map_err(|e| corrupt("tenant", e))
}

fn opt_tenant(s: Option<String>) -> Result<Option<TenantId>, StoreError> {
    s.map(tenant_id).transpose()
}

fn user_id(s: String) -> Result<UserId, StoreError> {
    UserId::parse(&s).map_err(|e| corrupt("user id", e))
}

fn recording_id(s: String) -> Result<RecordingId, StoreError> {
    RecordingId::parse(&s).map_err(|e| corrupt("recording id", e))
}

fn role(s: String) -> Result<Role, StoreError> {
    Role::parse(&s).map_err(|e| corrupt("role", e))
}

pub(super) fn tenant_row(r: &dyn Cells) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: tenant_id(r.text(0)?)?,
        name: r.text(1)?,
        caller_hash_key_sealed: r.bytes(2)?,
        created_at: r.int(3)?,
    })
}

pub(super) fn key_row(r: &dyn Cells) -> Result<TenantKey, StoreError> {
    Ok(TenantKey {
        tenant: tenant_id(r.text(0)?)?,
        key_id: r.int(1)?,
        recipient: r.text(2)?,
        identity_sealed: r.bytes(3)?,
        active: r.flag(4)?,
        created_at: r.int(5)?,
    })
}

pub(super) fn user_row(r: &dyn Cells) -> Result<User, StoreError> {
    Ok(User {
        id: user_id(r.text(0)?)?,
        username: Username::parse(&r.text(1)?).map_err(|e| corrupt("username", e))?,
        tenant: opt_tenant(r.opt_text(2)?)?,
        role: role(r.text(3)?)?,
        password_hash: r.text(4)?,
        must_change_password: r.flag(5)?,
        totp_sealed: r.opt_bytes(6)?,
        totp_last_step: r.opt_int(7)?.map(i64_to_u64),
        failed_logins: narrow("failed_logins", r.int(8)?)?,
        locked_until: r.opt_int(9)?,
        disabled: r.flag(10)?,
        created_at: r.int(11)?,
    })
}

pub(super) fn session_row(r: &dyn Cells) -> Result<Session, StoreError> {
    let stage = r.text(2)?;
    Ok(Session {
        hash: hash32("session hash", r.bytes(0)?)?,
        user_id: user_id(r.text(1)?)?,
        stage: SessionStage::parse(&stage)
            .ok_or_else(|| corrupt("session stage", format!("unknown stage {stage:?}")))?,
        pending_totp_sealed: r.opt_bytes(3)?,
        created_at: r.int(4)?,
        last_seen: r.int(5)?,
    })
}

pub(super) fn token_row(r: &dyn Cells) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: r.text(0)?,
        hash: hash32("token hash", r.bytes(1)?)?,
        name: r.text(2)?,
        tenant: opt_tenant(r.opt_text(3)?)?,
        role: role(r.text(4)?)?,
        created_by: r.text(5)?,
        created_at: r.int(6)?,
        expires_at: r.int(7)?,
        revoked_at: r.opt_int(8)?,
    })
}

pub(super) fn rec_row(r: &dyn Cells) -> Result<Recording, StoreError> {
    Ok(Recording {
        id: recording_id(r.text(0)?)?,
        tenant: tenant_id(r.text(1)?)?,
        blob: BlobName::parse(&r.text(2)?).map_err(|e| corrupt("blob", e))?,
        header: r.bytes(3)?,
        key_id: r.int(4)?,
        container: r.text(5)?,
        codec: r.text(6)?,
        channels: narrow("channels", r.int(7)?)?,
        sample_rate: narrow("sample_rate", r.int(8)?)?,
        duration_ms: i64_to_u64(r.int(9)?),
        size: i64_to_u64(r.int(10)?),
        started_at: r.int(11)?,
        direction: Direction::parse(&r.text(12)?).map_err(|e| corrupt("direction", e))?,
        caller_hash: r
            .opt_bytes(13)?
            .map(|h| hash32("caller hash", h))
            .transpose()?,
        caller_enc: r.opt_bytes(14)?,
        agent_id: r.opt_text(15)?,
        queue: r.opt_text(16)?,
        external_call_id: r.opt_text(17)?,
        created_at: r.int(18)?,
        retention_class: r.opt_text(19)?,
    })
}

pub(super) fn live_row(r: &dyn Cells) -> Result<LiveCall, StoreError> {
    Ok(LiveCall {
        id: recording_id(r.text(0)?)?,
        tenant: tenant_id(r.text(1)?)?,
        key_id: r.int(2)?,
        codec: r.text(3)?,
        sample_rate: narrow("sample_rate", r.int(4)?)?,
        channels: narrow("channels", r.int(5)?)?,
        frame_bytes: narrow("frame_bytes", r.int(6)?)?,
        started_at: r.int(7)?,
        direction: Direction::parse(&r.text(8)?).map_err(|e| corrupt("direction", e))?,
        caller_hash: r
            .opt_bytes(9)?
            .map(|h| hash32("caller hash", h))
            .transpose()?,
        caller_enc: r.opt_bytes(10)?,
        agent_id: r.opt_text(11)?,
        queue: r.opt_text(12)?,
        external_call_id: r.opt_text(13)?,
        state: {
            let s = r.text(14)?;
            LiveState::parse(&s).ok_or_else(|| corrupt("live state", s))?
        },
        total_chunks: r.opt_int(15)?.map(i64_to_u64),
        gaps: r.opt_text(16)?,
        updated_at: r.int(17)?,
        created_at: r.int(18)?,
    })
}

pub(super) fn live_key_row(r: &dyn Cells) -> Result<LiveKey, StoreError> {
    Ok(LiveKey {
        call: recording_id(r.text(0)?)?,
        key_no: r.int(1)?,
        wrapped: r.bytes(2)?,
    })
}

pub(super) fn live_chunk_row(r: &dyn Cells) -> Result<LiveChunk, StoreError> {
    Ok(LiveChunk {
        call: recording_id(r.text(0)?)?,
        seq: i64_to_u64(r.int(1)?),
        key_no: r.int(2)?,
        sealed: r.bytes(3)?,
    })
}

pub(super) fn grant_row(r: &dyn Cells) -> Result<Grant, StoreError> {
    Ok(Grant {
        hash: hash32("grant hash", r.bytes(0)?)?,
        recording: recording_id(r.text(1)?)?,
        tenant: tenant_id(r.text(2)?)?,
        user_id: user_id(r.text(3)?)?,
        purpose: r.text(4)?,
        expires_at: r.int(5)?,
    })
}

pub(super) fn audit_row(r: &dyn Cells) -> Result<StoredEntry, StoreError> {
    Ok(StoredEntry {
        seq: i64_to_u64(r.int(0)?),
        entry: Entry {
            time: time_ns("audit time", r.int(1)?)?,
            actor: r.text(2)?,
            tenant: r.opt_text(3)?,
            action: r.text(4)?,
            target: r.opt_text(5)?,
            purpose: r.opt_text(6)?,
            result: r.text(7)?,
            client: r.opt_text(8)?,
            details: r.opt_text(9)?,
        },
        hash: Hash(hash32("audit hash", r.bytes(10)?)?),
    })
}

/// The head of the chain as `append_audit` needs it: `(seq, hash)`.
pub(super) fn audit_link(seq: i64, hash: Vec<u8>) -> Result<(u64, Hash), StoreError> {
    Ok((i64_to_u64(seq), Hash(hash32("audit hash", hash)?)))
}

pub(super) fn checkpoint_row(r: &dyn Cells) -> Result<Checkpoint, StoreError> {
    let sig = r.bytes(3)?;
    Ok(Checkpoint {
        seq: i64_to_u64(r.int(0)?),
        hash: Hash(hash32("checkpoint hash", r.bytes(1)?)?),
        time: time_ns("checkpoint time", r.int(2)?)?,
        signature: <[u8; 64]>::try_from(sig.as_slice()).map_err(|_| {
            corrupt(
                "checkpoint signature",
                format!("{} bytes, expected 64", sig.len()),
            )
        })?,
    })
}

// ---- lifecycle: policies, retention rules, holds, erasure requests -------------------------

pub(super) const POLICY_COLS: &str =
    "tenant, queue, record, parties, retention_class, updated_by, updated_at";
pub(super) const RULE_COLS: &str = "tenant, scope, value, days, updated_by, updated_at";
pub(super) const HOLD_COLS: &str = "id, tenant, kind, recording, caller_hash, queue, agent_id, from_ts, to_ts, reason, created_by, created_at, hold_until, lifted_by, lifted_at";
pub(super) const ERASURE_REQ_COLS: &str =
    "id, tenant, caller_hash, reason, requested_by, requested_at, approved_by, approved_at";

pub(super) fn policy_row(r: &dyn Cells) -> Result<RecordingPolicy, StoreError> {
    Ok(RecordingPolicy {
        tenant: tenant_id(r.text(0)?)?,
        queue: r.text(1)?,
        record: r.flag(2)?,
        parties: r.text(3)?,
        retention_class: r.text(4)?,
        updated_by: r.text(5)?,
        updated_at: r.int(6)?,
    })
}

pub(super) fn rule_row(r: &dyn Cells) -> Result<RetentionRule, StoreError> {
    let scope = r.text(1)?;
    Ok(RetentionRule {
        tenant: tenant_id(r.text(0)?)?,
        scope: RuleScope::parse(&scope)
            .ok_or_else(|| corrupt("retention rule scope", format!("unknown {scope:?}")))?,
        value: r.text(2)?,
        days: r.int(3)?,
        updated_by: r.text(4)?,
        updated_at: r.int(5)?,
    })
}

/// The columns `kind, recording, caller_hash, queue, agent_id, from_ts, to_ts` of a hold, in
/// that order, as one adapter binds them.
pub(super) struct HoldCells<'a> {
    pub kind: &'static str,
    pub recording: Option<String>,
    pub caller_hash: Option<&'a [u8]>,
    pub queue: Option<&'a str>,
    pub agent_id: Option<&'a str>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

pub(super) fn hold_cells(s: &HoldScope) -> HoldCells<'_> {
    let mut c = HoldCells {
        kind: "search",
        recording: None,
        caller_hash: None,
        queue: None,
        agent_id: None,
        from: None,
        to: None,
    };
    match s {
        HoldScope::Recording(id) => {
            c.kind = "recording";
            c.recording = Some(id.to_string());
        }
        HoldScope::Caller(h) => {
            c.kind = "caller";
            c.caller_hash = Some(h.as_slice());
        }
        HoldScope::Search {
            queue,
            agent_id,
            from,
            to,
        } => {
            c.queue = queue.as_deref();
            c.agent_id = agent_id.as_deref();
            c.from = *from;
            c.to = *to;
        }
    }
    c
}

pub(super) fn hold_row(r: &dyn Cells) -> Result<LegalHold, StoreError> {
    let kind = r.text(2)?;
    let scope = match kind.as_str() {
        "recording" => HoldScope::Recording(recording_id(r.text(3)?)?),
        "caller" => HoldScope::Caller(hash32("hold caller hash", r.bytes(4)?)?),
        "search" => HoldScope::Search {
            queue: r.opt_text(5)?,
            agent_id: r.opt_text(6)?,
            from: r.opt_int(7)?,
            to: r.opt_int(8)?,
        },
        other => return Err(corrupt("hold kind", format!("unknown {other:?}"))),
    };
    Ok(LegalHold {
        id: r.text(0)?,
        tenant: tenant_id(r.text(1)?)?,
        scope,
        reason: r.text(9)?,
        created_by: r.text(10)?,
        created_at: r.int(11)?,
        until: r.opt_int(12)?,
        lifted_by: r.opt_text(13)?,
        lifted_at: r.opt_int(14)?,
    })
}

pub(super) fn erasure_request_row(r: &dyn Cells) -> Result<ErasureRequest, StoreError> {
    Ok(ErasureRequest {
        id: r.text(0)?,
        tenant: tenant_id(r.text(1)?)?,
        caller_hash: hash32("erasure caller hash", r.bytes(2)?)?,
        reason: r.text(3)?,
        requested_by: r.text(4)?,
        requested_at: r.int(5)?,
        approved_by: r.opt_text(6)?,
        approved_at: r.opt_int(7)?,
    })
}

pub(super) fn expired_row(r: &dyn Cells) -> Result<Expired, StoreError> {
    Ok(Expired {
        id: recording_id(r.text(0)?)?,
        blob: BlobName::parse(&r.text(1)?).map_err(|e| corrupt("blob", e))?,
        started_at: r.int(2)?,
    })
}

pub(super) fn blob_row(r: &dyn Cells) -> Result<BlobName, StoreError> {
    BlobName::parse(&r.text(0)?).map_err(|e| corrupt("blob", e))
}

/// SQL true when recording `r` is under no active legal hold at time `now` (a placeholder such
/// as `?2` or `$2`). Both adapters use this one text, so a hold means the same everywhere.
pub(super) fn not_held(now: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.tenant = r.tenant AND h.lifted_at IS NULL
           AND (h.hold_until IS NULL OR h.hold_until > {now})
           AND ((h.kind = 'recording' AND h.recording = r.id)
             OR (h.kind = 'caller' AND h.caller_hash = r.caller_hash)
             OR (h.kind = 'search' AND (h.queue IS NULL OR h.queue = r.queue)
                 AND (h.agent_id IS NULL OR h.agent_id = r.agent_id)
                 AND (h.from_ts IS NULL OR r.started_at >= h.from_ts)
                 AND (h.to_ts IS NULL OR r.started_at < h.to_ts))))"
    )
}

/// The query for one page of recordings of tenant `t` whose retention has ended by `now` and
/// that no hold covers, oldest first after the cursor `(after_t, after_id)`, at most `limit`.
/// A recording's retention is the longest of the rules that match it (tenant, its queue, its
/// class); one that no rule matches is never returned. The bound on `started_at` by the
/// shortest rule lets the time index stop the scan early, and the cursor is written with a
/// plain lower bound on `started_at` so that the index can start the scan there.
pub(super) fn expired_sql(
    t: &str,
    now: &str,
    after_t: &str,
    after_id: &str,
    limit: &str,
) -> String {
    format!(
        "SELECT r.id, r.blob, r.started_at FROM recordings r WHERE r.tenant = {t}
           AND r.started_at <= {now} - 86400 * (SELECT MIN(days) FROM retention_rules WHERE tenant = {t})
           AND r.started_at + 86400 * (SELECT MAX(x.days) FROM retention_rules x WHERE x.tenant = r.tenant
                 AND (x.scope = 'tenant' OR (x.scope = 'queue' AND x.value = r.queue)
                      OR (x.scope = 'class' AND x.value = r.retention_class))) <= {now}
           AND r.started_at >= {after_t} AND (r.started_at > {after_t} OR r.id > {after_id})
           AND {}
         ORDER BY r.started_at, r.id LIMIT {limit}",
        not_held(now)
    )
}

/// The cursor before every row, for the first page of `expired_sql`.
pub(super) const EXPIRED_START: (i64, &str) = (i64::MIN, "");

/// Why `approve_erasure_request` refuses an existing request.
pub(super) const APPROVAL_REFUSED: &str =
    "the request is already approved, or you asked for it: a second privacy officer must approve";

/// Assembles `TenantStats` from `(class, count, oldest started_at)` groups and two counts.
pub(super) fn stats(
    mut classes: Vec<(Option<String>, i64, i64)>,
    active_holds: i64,
    erased: i64,
) -> TenantStats {
    classes.sort_by(|a, b| a.0.cmp(&b.0));
    TenantStats {
        oldest_started_at: classes.iter().map(|c| c.2).min(),
        by_class: classes
            .into_iter()
            .map(|(class, n, _)| (class, i64_to_u64(n)))
            .collect(),
        active_holds: i64_to_u64(active_holds),
        erased_in_period: i64_to_u64(erased),
    }
}
