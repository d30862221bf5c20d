//! The conformance suites every adapter must pass unchanged: one metadata suite per concern of
//! `MetaBackend` (a module each, run against SQLite and PostgreSQL as one test per concern and
//! adapter, declared by [`metadata_conformance`]) and [`blob::suite`] for `BlobBackend` adapters
//! (local directory, S3).
//!
//! Each suite runs many small named checks in order; a failing check is reported by name. Every
//! suite expects a fresh, empty store. Checks create their own tenants, users and blobs under
//! random names, so they never see each other's rows, except where a check says otherwise (the
//! audit chain and the blob listing are global and are checked in a fixed order).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use callvault_core::{BlobName, Direction, RecordingId, Role, TenantId, UserId, Username};
use callvault_store::{MetadataStore, Recording, StoreError, Tenant, TenantKey, User};
use std::fmt::Debug;
use std::future::Future;

// ---- running named checks ------------------------------------------------------------------

/// Runs one check on its own task so that a panic inside it is reported with the check's name.
async fn run<F: Future<Output = ()> + Send + 'static>(name: &str, check: F) {
    if let Err(e) = tokio::spawn(check).await {
        let msg = if e.is_panic() {
            let p = e.into_panic();
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "(non-string panic)".to_owned())
        } else {
            e.to_string()
        };
        panic!("conformance check `{name}` failed: {msg}");
    }
}

macro_rules! check {
    ($store:expr, $f:ident) => {
        run(stringify!($f), $f($store.clone())).await
    };
}

/// Declares one test per metadata concern, each running that concern's suite on a fresh store
/// from `$open` (an async fn returning the store and what must outlive it), so that a failure
/// names the adapter and the concern. (`s3_garage` runs only the blob suite, hence the allows.)
#[allow(unused_macros)]
macro_rules! metadata_conformance {
    ($open:ident; $($test:ident => $concern:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                let (store, _keep) = $open().await;
                $crate::conformance::$concern::suite(store).await;
            }
        )+
    };
}
#[allow(unused_imports)]
pub(crate) use metadata_conformance;

// After `check!`, which they use.
pub mod audit;
pub mod blob;
pub mod coordination;
pub mod identity;
pub mod lifecycle;
pub mod live;
pub mod recordings;

// ---- helpers -------------------------------------------------------------------------------

/// 12 random lowercase hex digits.
fn rand_hex() -> String {
    BlobName::random().to_string()[1..13].to_owned()
}

fn uniq(prefix: &str) -> String {
    format!("{prefix}-{}", rand_hex())
}

fn h32() -> [u8; 32] {
    rand::random()
}

fn expect_not_found<T: Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::NotFound) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

fn expect_conflict<T: Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

fn tenant(id: &TenantId) -> Tenant {
    Tenant {
        id: id.clone(),
        name: format!("Tenant {id}"),
        caller_hash_key_sealed: h32().to_vec(),
        created_at: 1_700_000_000,
    }
}

fn key(t: &TenantId, key_id: i64) -> TenantKey {
    TenantKey {
        tenant: t.clone(),
        key_id,
        recipient: format!("age1{}{key_id}", rand_hex()),
        identity_sealed: h32().to_vec(),
        active: true,
        created_at: 1_700_000_000 + key_id,
    }
}

/// Creates a fresh tenant with key 1 and returns its id.
async fn new_tenant(s: &MetadataStore, prefix: &str) -> TenantId {
    let id = TenantId::parse(&uniq(prefix)).unwrap();
    s.create_tenant(&tenant(&id), &key(&id, 1)).await.unwrap();
    id
}

fn user(tenant: Option<&TenantId>, prefix: &str) -> User {
    User {
        id: UserId::random(),
        username: Username::parse(&uniq(prefix)).unwrap(),
        tenant: tenant.cloned(),
        role: Role::Listener,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        must_change_password: true,
        totp_sealed: None,
        totp_last_step: None,
        failed_logins: 0,
        locked_until: None,
        disabled: false,
        created_at: 1_700_000_100,
    }
}

async fn new_user(s: &MetadataStore, tenant: Option<&TenantId>, prefix: &str) -> User {
    let u = user(tenant, prefix);
    s.create_user(&u).await.unwrap();
    u
}

fn recording(tenant: &TenantId, started_at: i64) -> Recording {
    Recording {
        id: RecordingId::random(),
        tenant: tenant.clone(),
        blob: BlobName::random(),
        header: h32().to_vec(),
        key_id: 1,
        container: "ogg".into(),
        codec: "opus".into(),
        channels: 2,
        sample_rate: 48_000,
        duration_ms: 61_250,
        size: 123_456,
        started_at,
        direction: Direction::Inbound,
        caller_hash: None,
        caller_enc: None,
        agent_id: None,
        queue: None,
        external_call_id: None,
        created_at: started_at + 70,
        retention_class: None,
    }
}

/// Base time of the fixtures.
const T0: i64 = 1_700_000_000;
