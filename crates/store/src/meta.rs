//! The metadata store: one handle, one backend trait made of one sealed trait per concern, one
//! adapter per database.

use crate::StoreError;
use crate::model::*;
use callvault_audit::{Checkpoint, Entry, StoredEntry};
use callvault_core::{BlobName, RecordingId, TenantId, UserId, Username};
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;
#[cfg(feature = "sqlite")]
mod segment_journal;
#[cfg(feature = "sqlite")]
mod sqlite;

/// Which database holds the metadata; chosen from config at startup. `Debug` hides the
/// password of a PostgreSQL URL.
#[derive(Clone)]
pub enum MetadataConfig {
    Sqlite {
        path: PathBuf,
    },
    /// A `postgres://` URL. TLS is on and verified unless the URL says otherwise: see
    /// the `postgres` adapter's `sslmode` and `sslrootcert` parameters.
    Postgres {
        url: String,
    },
}

impl std::fmt::Debug for MetadataConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite { path } => f.debug_struct("Sqlite").field("path", path).finish(),
            Self::Postgres { url } => f
                .debug_struct("Postgres")
                .field("url", &redact_password(url))
                .finish(),
        }
    }
}

/// `url` with the password of its user info and any `password=` parameter replaced.
fn redact_password(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((user_info, host)) => match user_info.split_once(':') {
                    Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
                    None => head.to_owned(),
                },
                None => head.to_owned(),
            }
        }
        None => head.to_owned(),
    };
    if let Some(q) = query {
        let params: Vec<&str> = q
            .split('&')
            .map(|p| {
                if p.starts_with("password=") {
                    "password=***"
                } else {
                    p
                }
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_postgres_passwords() {
        let cfg = MetadataConfig::Postgres {
            url: "postgres://cv:s3cr%40t@db:5432/cv?password=other&sslmode=verify-full".into(),
        };
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("s3cr") && !shown.contains("other"),
            "{shown}"
        );
        assert!(shown.contains("postgres://cv:***@db:5432/cv?password=***&sslmode=verify-full"));
        assert_eq!(redact_password("postgres://cv@db/x"), "postgres://cv@db/x");
        assert_eq!(redact_password("postgres://db/x"), "postgres://db/x");
    }
}

/// Handle to the metadata store. Cheap to clone. Call backend methods directly on it.
#[derive(Clone)]
pub struct MetadataStore(Arc<dyn MetaBackend>);

impl MetadataStore {
    /// Opens the store and applies migrations; refuses a schema newer than this binary knows.
    pub async fn open(cfg: &MetadataConfig) -> Result<Self, StoreError> {
        match cfg {
            #[cfg(feature = "sqlite")]
            MetadataConfig::Sqlite { path } => {
                Ok(Self(Arc::new(sqlite::Sqlite::open(path.clone()).await?)))
            }
            #[cfg(not(feature = "sqlite"))]
            MetadataConfig::Sqlite { .. } => Err(StoreError::NotCompiled { backend: "sqlite" }),
            #[cfg(feature = "postgres")]
            MetadataConfig::Postgres { url } => {
                Ok(Self(Arc::new(postgres::Postgres::open(url).await?)))
            }
            #[cfg(not(feature = "postgres"))]
            MetadataConfig::Postgres { .. } => Err(StoreError::NotCompiled {
                backend: "postgres",
            }),
        }
    }
}

impl Deref for MetadataStore {
    type Target = dyn MetaBackend;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// Everything callvault asks of a metadata database: one sealed trait per concern, and this
/// their union, which [`MetadataStore`] derefs to. Implemented only inside this crate; every
/// implementation passes `tests/conformance`, one suite per concern.
///
/// Callers need none of these traits in scope: a method of a trait object's supertrait
/// resolves like one of its own, so `store.get_user(..)` works on a `MetadataStore` as is.
pub trait MetaBackend:
    IdentityStore
    + RecordingStore
    + AuditStore
    + LifecycleStore
    + LiveStore
    + CoordinationStore
    + Sealed
{
    /// Which backend this is, for logs and `doctor`.
    fn backend_name(&self) -> &'static str;
}

/// Who may sign in and what they hold: tenants and their keys, users (with their console
/// language), sessions and API tokens.
#[async_trait::async_trait]
pub trait IdentityStore: Sealed + Send + Sync {
    // --- tenants and their keys ---
    /// Creates a tenant with its first (active) key in one transaction.
    async fn create_tenant(&self, tenant: &Tenant, first_key: &TenantKey)
    -> Result<(), StoreError>;
    async fn get_tenant(&self, id: &TenantId) -> Result<Tenant, StoreError>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    async fn active_key(&self, tenant: &TenantId) -> Result<TenantKey, StoreError>;
    async fn get_key(&self, tenant: &TenantId, key_id: i64) -> Result<TenantKey, StoreError>;
    /// Makes `new_key` the only active key of its tenant (old keys stay for old recordings).
    async fn rotate_key(&self, new_key: &TenantKey) -> Result<(), StoreError>;
    async fn next_key_id(&self, tenant: &TenantId) -> Result<i64, StoreError>;

    // --- users ---
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    async fn get_user(&self, id: &UserId) -> Result<User, StoreError>;
    async fn get_user_by_name(&self, name: &Username) -> Result<User, StoreError>;
    async fn list_users(&self, tenant: Option<&TenantId>) -> Result<Vec<User>, StoreError>;
    /// Replaces every mutable field of the user row.
    async fn update_user(&self, user: &User) -> Result<(), StoreError>;
    /// The person's chosen console language (`None` until they choose).
    async fn user_language(&self, user: &UserId) -> Result<Option<String>, StoreError>;
    /// `NotFound` for an unknown user.
    async fn set_user_language(&self, user: &UserId, language: &str) -> Result<(), StoreError>;

    // --- sessions ---
    async fn create_session(&self, s: &Session) -> Result<(), StoreError>;
    async fn get_session(&self, hash: &[u8; 32]) -> Result<Session, StoreError>;
    async fn update_session(&self, s: &Session) -> Result<(), StoreError>;
    async fn delete_session(&self, hash: &[u8; 32]) -> Result<(), StoreError>;
    async fn delete_user_sessions(&self, user: &UserId) -> Result<(), StoreError>;

    // --- API tokens ---
    async fn create_token(&self, t: &ApiToken) -> Result<(), StoreError>;
    async fn get_token_by_hash(&self, hash: &[u8; 32]) -> Result<ApiToken, StoreError>;
    async fn list_tokens(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiToken>, StoreError>;
    async fn revoke_token(&self, id: &str, at: i64) -> Result<(), StoreError>;
}

/// Stored recordings: their rows (age header included), the other parties of a call, search,
/// waveform peaks, per-day counts, and the playback grants that open one recording.
#[async_trait::async_trait]
pub trait RecordingStore: Sealed + Send + Sync {
    /// Inserts one recording; `Conflict` if its id or blob is taken.
    async fn insert_recording(&self, r: &Recording) -> Result<(), StoreError> {
        self.insert_recordings(std::slice::from_ref(r)).await
    }
    /// Inserts `rows` in one transaction, all or nothing: if any row is refused (`Conflict`
    /// for a taken id or blob, including one taken earlier in the same batch), none is stored.
    async fn insert_recordings(&self, rows: &[Recording]) -> Result<(), StoreError>;
    async fn get_recording(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
    ) -> Result<Recording, StoreError>;
    async fn search_recordings(
        &self,
        tenant: &TenantId,
        f: &RecordingFilter,
    ) -> Result<Vec<Recording>, StoreError>;
    async fn count_recordings(&self) -> Result<u64, StoreError>;
    /// Adds parties other than the caller to the call or recording `recording` of `tenant`
    /// (it may still be live: its id is the recording's); a number already there stays as it
    /// is. `search_recordings` finds the recording by any of them (`caller_hash`); erasure
    /// removes them with it.
    async fn add_parties(
        &self,
        tenant: &TenantId,
        recording: &RecordingId,
        parties: &[Party],
    ) -> Result<(), StoreError>;
    /// The parties other than the caller, ordered by hash.
    async fn parties(
        &self,
        tenant: &TenantId,
        recording: &RecordingId,
    ) -> Result<Vec<Party>, StoreError>;
    /// Stores a recording's waveform peaks, age-encrypted to its tenant (docs/FORMAT.md);
    /// replaces any earlier ones. Removed with the recording.
    async fn put_peaks(&self, recording: &RecordingId, peaks_enc: &[u8]) -> Result<(), StoreError>;
    /// `NotFound` when the recording has no peaks (a compressed format) or is another tenant's.
    async fn get_peaks(
        &self,
        tenant: &TenantId,
        recording: &RecordingId,
    ) -> Result<Vec<u8>, StoreError>;
    /// Recordings per UTC ingest day since `since` (unix seconds), oldest first; one tenant's
    /// or (with `None`) all.
    async fn recordings_per_day(
        &self,
        tenant: Option<&TenantId>,
        since: i64,
    ) -> Result<Vec<DailyRecordings>, StoreError>;
    async fn create_grant(&self, g: &Grant) -> Result<(), StoreError>;
    async fn get_grant(&self, hash: &[u8; 32]) -> Result<Grant, StoreError>;
}

/// The hash-chained audit record, its signed checkpoints, and the per-day counts read from it.
#[async_trait::async_trait]
pub trait AuditStore: Sealed + Send + Sync {
    /// Appends entries to the chain in one durable transaction, computing each hash from the
    /// stored head under the database's write lock, so concurrent writers still form one chain.
    async fn append_audit(&self, entries: Vec<Entry>) -> Result<Vec<StoredEntry>, StoreError>;
    async fn audit_head(&self) -> Result<Option<StoredEntry>, StoreError>;
    /// Entries with `seq > after_seq` in order, at most `limit`.
    async fn audit_range(&self, after_seq: u64, limit: u32)
    -> Result<Vec<StoredEntry>, StoreError>;
    async fn audit_query(&self, f: &AuditFilter) -> Result<Vec<StoredEntry>, StoreError>;
    async fn insert_checkpoint(&self, cp: &Checkpoint) -> Result<(), StoreError>;
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;
    /// Audit entries of `action` per UTC day and actor since `since` (unix seconds), oldest
    /// day first; one tenant's or (with `None`) all.
    async fn actions_per_day(
        &self,
        action: &str,
        tenant: Option<&TenantId>,
        since: i64,
    ) -> Result<Vec<DailyActions>, StoreError>;
}

/// What happens to recordings over time: recording policies, retention rules, legal holds,
/// crypto-shredding erasure and its two-person requests, the caller-hash backfill, tenant
/// statistics.
#[async_trait::async_trait]
pub trait LifecycleStore: Sealed + Send + Sync {
    /// Creates or replaces the policy of `(p.tenant, p.queue)`.
    async fn put_recording_policy(&self, p: &RecordingPolicy) -> Result<(), StoreError>;
    /// The tenant's policies, default (`queue = ""`) first, then by queue.
    async fn recording_policies(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<RecordingPolicy>, StoreError>;
    /// Creates or replaces the rule of `(r.tenant, r.scope, r.value)`.
    async fn put_retention_rule(&self, r: &RetentionRule) -> Result<(), StoreError>;
    /// The tenant's rules, by scope then value.
    async fn retention_rules(&self, tenant: &TenantId) -> Result<Vec<RetentionRule>, StoreError>;
    async fn create_hold(&self, h: &LegalHold) -> Result<(), StoreError>;
    /// Every hold of the tenant, lifted ones included, oldest first.
    async fn holds(&self, tenant: &TenantId) -> Result<Vec<LegalHold>, StoreError>;
    /// Lifts an active hold; `NotFound` if the tenant has no such hold still active.
    async fn lift_hold(
        &self,
        tenant: &TenantId,
        id: &str,
        by: &str,
        at: i64,
    ) -> Result<(), StoreError>;
    /// Is the recording under an active hold at `now`?
    async fn is_held(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// One page of the tenant's recordings whose retention ended by `now` and that no hold
    /// covers: oldest first, after the cursor `(started_at, id)` of the previous page.
    async fn expired_recordings(
        &self,
        tenant: &TenantId,
        now: i64,
        after: Option<(i64, RecordingId)>,
        limit: u32,
    ) -> Result<Vec<Expired>, StoreError>;
    /// Crypto-shreds recordings in one transaction: for each of `ids` that exists in the tenant
    /// and no hold covers at `now`, deletes the row (and with it the age header, the only
    /// wrapped copy of the file key) and its grants, leaves a tombstone, and queues the payload
    /// blob for deletion. Returns what was erased; the caller then deletes the blobs and calls
    /// `blob_deletions_done`.
    async fn erase_recordings(
        &self,
        tenant: &TenantId,
        ids: &[RecordingId],
        now: i64,
        cause: ErasureCause,
    ) -> Result<Vec<Expired>, StoreError>;
    /// Blobs queued for deletion by an erasure and not yet confirmed deleted.
    async fn pending_blob_deletions(&self, limit: u32) -> Result<Vec<BlobName>, StoreError>;
    async fn blob_deletions_done(&self, blobs: &[BlobName]) -> Result<(), StoreError>;
    async fn create_erasure_request(&self, r: &ErasureRequest) -> Result<(), StoreError>;
    async fn get_erasure_request(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<ErasureRequest, StoreError>;
    /// The tenant's erasure requests, oldest first.
    async fn erasure_requests(&self, tenant: &TenantId) -> Result<Vec<ErasureRequest>, StoreError>;
    /// Records the approval; `Conflict` if the request is already approved or `by` is the
    /// officer who asked (two different people must agree), `NotFound` if there is none.
    async fn approve_erasure_request(
        &self,
        tenant: &TenantId,
        id: &str,
        by: &str,
        at: i64,
    ) -> Result<(), StoreError>;
    /// Up to `limit` recordings of the tenant that carry an encrypted caller number but no
    /// keyed hash (stored by an ingest node, which has no hash key).
    async fn recordings_without_caller_hash(
        &self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<Recording>, StoreError>;
    /// Sets the keyed hash of a recording that has none (never overwrites one).
    async fn set_caller_hash(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
        hash: &[u8; 32],
    ) -> Result<(), StoreError>;
    /// What the tenant stores now, and how many recordings it erased in `[since, now]`.
    async fn tenant_stats(
        &self,
        tenant: &TenantId,
        since: i64,
        now: i64,
    ) -> Result<TenantStats, StoreError>;
}

/// Calls in progress: the call rows, their journal keys and the encrypted chunk journal, until a
/// call is stored as a recording.
#[async_trait::async_trait]
pub trait LiveStore: Sealed + Send + Sync {
    /// Creates a live call (state `Open`) with its first journal key, in one transaction.
    async fn create_live_call(&self, call: &LiveCall, key: &LiveKey) -> Result<(), StoreError>;
    /// The call if it exists and belongs to `tenant`, else `NotFound`.
    async fn get_live_call(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
    ) -> Result<LiveCall, StoreError>;
    /// Adds another node's journal key; `Conflict` if `key_no` is taken for the call.
    async fn add_live_key(&self, key: &LiveKey) -> Result<(), StoreError>;
    async fn live_keys(&self, call: &RecordingId) -> Result<Vec<LiveKey>, StoreError>;
    /// Stores chunks of any number of calls in one durable transaction (the group commit behind
    /// every acknowledgement), each only while its call is `Open`; the first chunk stored under
    /// a sequence number stays. Refreshes `updated_at` of every call that got a chunk. One
    /// outcome per chunk, in order.
    async fn append_live_chunks(
        &self,
        chunks: &[LiveChunk],
        now: i64,
    ) -> Result<Vec<ChunkOutcome>, StoreError>;
    /// Sequence numbers of the call's stored chunks, ascending.
    async fn live_chunk_seqs(&self, call: &RecordingId) -> Result<Vec<u64>, StoreError>;
    /// Stored chunks with `seq >= from`, ascending, at most `limit`.
    async fn live_chunks(
        &self,
        call: &RecordingId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<LiveChunk>, StoreError>;
    /// Moves the call from `from` to `to` if it is in `from` (true), else changes nothing
    /// (false). `total_chunks` and `outcome` (the JSON of [`LiveCall::gaps`]: what the
    /// protocol knows of how the call went, e.g. a SIPREC client's pauses), when given, are
    /// recorded too.
    async fn set_live_state(
        &self,
        id: &RecordingId,
        from: LiveState,
        to: LiveState,
        total_chunks: Option<u64>,
        outcome: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Calls of every tenant in `state` last updated before `before`, oldest first: the work
    /// list of idle finalisation and assembly.
    async fn live_calls_in_state(
        &self,
        state: LiveState,
        before: i64,
        limit: u32,
    ) -> Result<Vec<LiveCall>, StoreError>;
    /// In one transaction: inserts the recording assembled from a `Finished` or `Incomplete`
    /// call, marks the call `Stored` with its `gaps`, and deletes its chunks and keys.
    /// `Conflict` if the call is not waiting to be stored (another node stored it first).
    async fn store_live_call(&self, rec: &Recording, gaps: &str) -> Result<(), StoreError>;
}

/// What the nodes of a deployment share besides data: small named settings (the sealed audit
/// signing key, when the chain was last verified) and leases on deployment-wide jobs.
#[async_trait::async_trait]
pub trait CoordinationStore: Sealed + Send + Sync {
    async fn get_setting(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores `value` unless the key already exists; returns the value now stored, so that
    /// concurrent initialisers agree on one.
    async fn put_setting_if_absent(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError>;
    /// Stores `value`, replacing what was there (for values that record the latest state, such
    /// as when the audit chain was last verified).
    async fn put_setting(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Takes or renews the lease `name` for `holder` until `now + ttl_secs`. True if `holder`
    /// now holds it; false while another holder's lease is unexpired. Deployment-wide jobs run
    /// only on the node holding their lease, and move when the holder stops renewing.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<bool, StoreError>;
}
