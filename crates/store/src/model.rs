//! Rows as the rest of callvault sees them. Timestamps are unix seconds (UTC) unless named `_ns`.

use callvault_core::{BlobName, Direction, RecordingId, Role, TenantId, UserId, Username};

#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// The tenant's caller-number hash key, sealed under the master key.
    pub caller_hash_key_sealed: Vec<u8>,
    pub created_at: i64,
}

/// One generation of a tenant's key pair. New recordings use the active one; older ones stay
/// until no recording needs them.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantKey {
    pub tenant: TenantId,
    pub key_id: i64,
    /// age recipient, `age1…` (public).
    pub recipient: String,
    /// age identity sealed under the master key.
    pub identity_sealed: Vec<u8>,
    pub active: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    /// `None` only for operator-wide admins and auditors.
    pub tenant: Option<TenantId>,
    pub role: Role,
    pub password_hash: String,
    pub must_change_password: bool,
    /// TOTP secret sealed under the master key, once enrolled.
    pub totp_sealed: Option<Vec<u8>>,
    /// Last accepted TOTP time step; a code for this step or earlier is a replay.
    pub totp_last_step: Option<u64>,
    pub failed_logins: u32,
    pub locked_until: Option<i64>,
    pub disabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    /// Logged in with a one-time password; may only set a new password.
    PasswordChange,
    /// Password set; may only confirm TOTP enrolment.
    TotpEnroll,
    /// Fully authenticated, second factor included.
    Full,
}

impl SessionStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordChange => "password_change",
            Self::TotpEnroll => "totp_enroll",
            Self::Full => "full",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::PasswordChange, Self::TotpEnroll, Self::Full]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// SHA-256 of the cookie value; the value itself is never stored.
    pub hash: [u8; 32],
    pub user_id: UserId,
    pub stage: SessionStage,
    /// A TOTP secret offered during enrolment, sealed, until confirmed.
    pub pending_totp_sealed: Option<Vec<u8>>,
    pub created_at: i64,
    pub last_seen: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub id: String,
    pub hash: [u8; 32],
    pub name: String,
    pub tenant: Option<TenantId>,
    pub role: Role,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub id: RecordingId,
    pub tenant: TenantId,
    pub blob: BlobName,
    /// The age header: the file key wrapped to the tenant key `key_id`.
    pub header: Vec<u8>,
    pub key_id: i64,
    pub container: String,
    pub codec: String,
    pub channels: u16,
    pub sample_rate: u32,
    pub duration_ms: u64,
    /// Plaintext length of the stored media file in bytes.
    pub size: u64,
    pub started_at: i64,
    pub direction: Direction,
    /// Keyed hash of the caller's E.164 number (search key).
    pub caller_hash: Option<[u8; 32]>,
    /// The caller's number as an age file to the tenant recipient.
    pub caller_enc: Option<Vec<u8>>,
    pub agent_id: Option<String>,
    pub queue: Option<String>,
    pub external_call_id: Option<String>,
    pub created_at: i64,
    /// From the recording policy that admitted the call; selects retention rules.
    pub retention_class: Option<String>,
}

/// A party of a recorded call other than the caller (e.g. a SIPREC participant who joined by a
/// transfer), pseudonymised like the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Party {
    /// Keyed hash of the E.164 number, for search.
    pub number_hash: [u8; 32],
    /// The number, age-encrypted to the tenant.
    pub number_enc: Vec<u8>,
}

/// Search criteria; all given criteria must match. Results are newest first.
#[derive(Debug, Clone, Default)]
pub struct RecordingFilter {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub queue: Option<String>,
    pub agent_id: Option<String>,
    /// The caller's keyed hash; matches a recording whose caller, or any other party
    /// ([`Party`]), has this number.
    pub caller_hash: Option<[u8; 32]>,
    /// Keyset cursor: continue after this (started_at, id).
    pub after: Option<(i64, RecordingId)>,
    pub limit: u32,
}

/// A short-lived right for one user to play one recording, issued after a stated purpose.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub hash: [u8; 32],
    pub recording: RecordingId,
    pub tenant: TenantId,
    pub user_id: UserId,
    pub purpose: String,
    pub expires_at: i64,
}

/// Recordings that arrived on one UTC day (by ingest time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyRecordings {
    /// Days since 1970-01-01.
    pub day: i64,
    pub calls: u64,
    /// Plaintext bytes of the media files.
    pub bytes: u64,
}

/// How many audit entries of one action one actor caused on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyActions {
    /// Days since 1970-01-01.
    pub day: i64,
    pub actor: String,
    pub count: u64,
}

/// Filter for reading the audit record.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub after_seq: u64,
    pub tenant: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub limit: u32,
}

/// What a tenant records on one queue (or, with `queue` empty, on every queue without a policy
/// of its own). Ingest refuses a call no policy covers.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingPolicy {
    pub tenant: TenantId,
    /// The queue (line) this policy is for; `""` is the tenant's default.
    pub queue: String,
    pub record: bool,
    /// `both`, `caller` or `agent`: which legs a live recorder keeps.
    pub parties: String,
    /// The retention class given to recordings this policy admits.
    pub retention_class: String,
    pub updated_by: String,
    pub updated_at: i64,
}

/// Which recordings a retention rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleScope {
    /// Every recording of the tenant.
    Tenant,
    /// Recordings of one queue.
    Queue,
    /// Recordings of one retention class.
    Class,
}

impl RuleScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Queue => "queue",
            Self::Class => "class",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Tenant, Self::Queue, Self::Class]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// Keep matching recordings `days` days after they started. Where several rules match one
/// recording, the longest wins; a recording no rule matches is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionRule {
    pub tenant: TenantId,
    pub scope: RuleScope,
    /// The queue or class; `""` for `Tenant`.
    pub value: String,
    pub days: i64,
    pub updated_by: String,
    pub updated_at: i64,
}

/// What a legal hold covers.
#[derive(Debug, Clone, PartialEq)]
pub enum HoldScope {
    Recording(RecordingId),
    /// Every recording of one caller, by keyed hash (present and future).
    Caller([u8; 32]),
    /// Every recording matching all given criteria (present and future).
    Search {
        queue: Option<String>,
        agent_id: Option<String>,
        from: Option<i64>,
        to: Option<i64>,
    },
}

/// A legal hold: while active, no recording it covers is erased, by retention or by request.
#[derive(Debug, Clone, PartialEq)]
pub struct LegalHold {
    pub id: String,
    pub tenant: TenantId,
    pub scope: HoldScope,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
    /// Ends by itself at this time; `None` until lifted.
    pub until: Option<i64>,
    pub lifted_by: Option<String>,
    pub lifted_at: Option<i64>,
}

/// A request to erase every recording of one caller; runs only once a second privacy officer
/// approves it.
#[derive(Debug, Clone, PartialEq)]
pub struct ErasureRequest {
    pub id: String,
    pub tenant: TenantId,
    pub caller_hash: [u8; 32],
    pub reason: String,
    pub requested_by: String,
    pub requested_at: i64,
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
}

/// A recording the retention run may erase.
#[derive(Debug, Clone, PartialEq)]
pub struct Expired {
    pub id: RecordingId,
    pub blob: BlobName,
    pub started_at: i64,
}

/// Why a recording was erased (kept in its tombstone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErasureCause {
    Retention,
    Request,
}

impl ErasureCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retention => "retention",
            Self::Request => "request",
        }
    }
}

/// What one tenant stores, for the records of processing (GDPR art. 30).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TenantStats {
    /// Recordings per retention class (`None`: stored before classes existed).
    pub by_class: Vec<(Option<String>, u64)>,
    pub oldest_started_at: Option<i64>,
    pub active_holds: u64,
    pub erased_in_period: u64,
}

/// Where a live call is in its life. `Open` takes chunks; `Finished` (the recorder said so) and
/// `Incomplete` (idle too long, or the recorder gave up) wait to be assembled into a recording;
/// `Stored` means the recording exists and the journal rows are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveState {
    Open,
    Finished,
    Incomplete,
    Stored,
}

impl LiveState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Finished => "finished",
            Self::Incomplete => "incomplete",
            Self::Stored => "stored",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Open, Self::Finished, Self::Incomplete, Self::Stored]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// A call being recorded live; its id becomes the recording's id.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveCall {
    pub id: RecordingId,
    pub tenant: TenantId,
    /// Tenant key generation the journal keys are wrapped to.
    pub key_id: i64,
    /// `pcmu`, `pcma` or `pcm16`.
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    /// Every chunk but the last carries exactly this many bytes of audio.
    pub frame_bytes: u32,
    pub started_at: i64,
    pub direction: Direction,
    pub caller_hash: Option<[u8; 32]>,
    pub caller_enc: Option<Vec<u8>>,
    pub agent_id: Option<String>,
    pub queue: Option<String>,
    pub external_call_id: Option<String>,
    pub state: LiveState,
    /// How many chunks the recorder said it sent, when it finished.
    pub total_chunks: Option<u64>,
    /// How the call went, as JSON. At finish, what the protocol knows: `{"paused": [{"offset_ms",
    /// "length_ms", "by": "src"}, …]}` (SIPREC), else absent. When stored, that plus
    /// `"complete": bool, "chunks": n, "gaps": [[first, last], …]` (missing chunk ranges).
    pub gaps: Option<String>,
    /// Last chunk or state change (unix seconds); idle finalisation reads it.
    pub updated_at: i64,
    pub created_at: i64,
}

/// One node's journal key for a call, wrapped to the tenant as a small age file.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveKey {
    pub call: RecordingId,
    pub key_no: i64,
    pub wrapped: Vec<u8>,
}

/// One acknowledged chunk, sealed under the journal key `key_no`.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveChunk {
    pub call: RecordingId,
    pub seq: u64,
    pub key_no: i64,
    pub sealed: Vec<u8>,
}

/// What became of one chunk in `append_live_chunks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Stored now.
    Stored,
    /// A chunk with this sequence number was already stored; the first one stays.
    Duplicate,
    /// The call is not open (finished, finalised or unknown): nothing stored.
    Closed,
}
