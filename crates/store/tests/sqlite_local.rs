//! The conformance suites against the embedded adapters (SQLite metadata, local-directory blobs),
//! plus what only these adapters promise: on-disk persistence, schema-version refusal, file
//! modes and cleanup of interrupted writes.
#![cfg(all(feature = "sqlite", feature = "local"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;

use callvault_audit::Entry;
use callvault_core::{BlobName, TenantId};
use callvault_store::{
    BlobConfig, BlobStore, MetadataConfig, MetadataStore, StoreError, Tenant, TenantKey,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn meta_cfg(dir: &TempDir) -> MetadataConfig {
    MetadataConfig::Sqlite {
        path: dir.path().join("meta.sqlite"),
    }
}

fn blob_root(dir: &TempDir) -> PathBuf {
    dir.path().join("blobs")
}

async fn open_meta(dir: &TempDir) -> MetadataStore {
    MetadataStore::open(&meta_cfg(dir)).await.unwrap()
}

async fn open_blobs(dir: &TempDir) -> BlobStore {
    BlobStore::open(&BlobConfig::Local {
        path: blob_root(dir),
    })
    .await
    .unwrap()
}

/// A fresh SQLite store, and the directory that must outlive it.
async fn fresh_meta() -> (MetadataStore, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_meta(&dir).await;
    assert_eq!(store.backend_name(), "sqlite");
    (store, dir)
}

conformance::metadata_conformance!(fresh_meta;
    sqlite_identity_conformance => identity,
    sqlite_recordings_conformance => recordings,
    sqlite_audit_conformance => audit,
    sqlite_lifecycle_conformance => lifecycle,
    sqlite_live_conformance => live,
    sqlite_coordination_conformance => coordination,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_blob_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_blobs(&dir).await;
    assert_eq!(store.backend_name(), "local");
    conformance::blob::suite(store).await;
}

fn entry(action: &str) -> Entry {
    Entry {
        time: time::OffsetDateTime::now_utc(),
        actor: "system".into(),
        tenant: None,
        action: action.into(),
        target: None,
        purpose: None,
        result: "ok".into(),
        client: None,
        details: None,
    }
}

#[tokio::test]
async fn sqlite_reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let id = TenantId::parse("reopen").unwrap();
    let tenant = Tenant {
        id: id.clone(),
        name: "Reopen".into(),
        caller_hash_key_sealed: vec![1; 32],
        created_at: 1_700_000_000,
    };
    let key = TenantKey {
        tenant: id.clone(),
        key_id: 1,
        recipient: "age1reopen".into(),
        identity_sealed: vec![2; 48],
        active: true,
        created_at: 1_700_000_000,
    };
    let first = {
        let s = open_meta(&dir).await;
        s.create_tenant(&tenant, &key).await.unwrap();
        s.put_setting_if_absent("audit.key", b"sealed")
            .await
            .unwrap();
        s.append_audit(vec![entry("a"), entry("b")]).await.unwrap()
    };
    let s = open_meta(&dir).await;
    assert_eq!(s.get_tenant(&id).await.unwrap(), tenant);
    assert_eq!(s.active_key(&id).await.unwrap(), key);
    assert_eq!(
        s.get_setting("audit.key").await.unwrap().as_deref(),
        Some(&b"sealed"[..])
    );
    assert_eq!(s.audit_range(0, 10).await.unwrap(), first);
    // The chain continues where it stopped.
    let more = s.append_audit(vec![entry("c")]).await.unwrap();
    assert_eq!(more[0].seq, 3);
    assert_eq!(
        more[0].hash,
        callvault_audit::chain_hash(&first[1].hash, 3, &more[0].entry)
    );
    drop(s);
    // And a third open (migrations already applied) still works.
    let s = open_meta(&dir).await;
    assert_eq!(s.audit_head().await.unwrap().unwrap(), more[0]);
}

#[tokio::test]
async fn sqlite_refuses_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    drop(open_meta(&dir).await);
    let path = dir.path().join("meta.sqlite");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 1000_i64).unwrap();
    }
    match MetadataStore::open(&meta_cfg(&dir)).await {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!(found, 1000);
            assert!((1..1000).contains(&supported), "supported = {supported}");
        }
        Err(e) => panic!("expected SchemaTooNew, got {e:?}"),
        Ok(_) => panic!("expected SchemaTooNew, got a store"),
    }
    // Refusing must not have touched the version.
    let c = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 1000);
}

#[tokio::test]
async fn sqlite_refuses_newer_schema_in_foreign_file() {
    // A database made by a newer callvault that this one has never seen.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.sqlite");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE future (x INTEGER); PRAGMA user_version = 999;")
            .unwrap();
    }
    assert!(matches!(
        MetadataStore::open(&meta_cfg(&dir)).await,
        Err(StoreError::SchemaTooNew { found: 999, .. })
    ));
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every directory and file under `root`, recursively.
fn walk(root: &Path, dirs: &mut Vec<PathBuf>, files: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            dirs.push(p.clone());
            walk(&p, dirs, files);
        } else {
            files.push(p);
        }
    }
}

#[tokio::test]
async fn local_blob_modes_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_blobs(&dir).await;
    for _ in 0..5 {
        s.put(&BlobName::random(), vec![1, 2, 3]).await.unwrap();
    }
    s.put(&BlobName::random(), Vec::new()).await.unwrap();
    let root = blob_root(&dir);
    let (mut dirs, mut files) = (vec![root.clone()], Vec::new());
    walk(&root, &mut dirs, &mut files);
    assert!(
        dirs.len() >= 4,
        "root, objects, tmp and at least one shard: {dirs:?}"
    );
    assert_eq!(files.len(), 6, "{files:?}");
    for d in &dirs {
        assert_eq!(mode(d), 0o700, "directory {}", d.display());
    }
    for f in &files {
        assert_eq!(mode(f), 0o600, "file {}", f.display());
    }
}

#[tokio::test]
async fn local_blob_tmp_leftovers_cleaned_and_never_listed() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_blobs(&dir).await;
    let kept = BlobName::random();
    s.put(&kept, vec![9; 100]).await.unwrap();
    // An interrupted write: a blob-named file and a stray one left in tmp/.
    let tmp = blob_root(&dir).join("tmp");
    let half = BlobName::random();
    std::fs::write(tmp.join(half.to_string()), b"half written").unwrap();
    std::fs::write(tmp.join("junk"), b"x").unwrap();
    abandon(&tmp.join(half.to_string()));
    abandon(&tmp.join("junk"));
    assert_eq!(s.list().await.unwrap(), vec![kept], "tmp/ is never listed");
    assert!(matches!(s.open(&half).await, Err(StoreError::NotFound)));
    drop(s);

    let s = open_blobs(&dir).await;
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "tmp/ emptied on open"
    );
    assert_eq!(s.list().await.unwrap(), vec![kept]);
    assert!(matches!(s.open(&half).await, Err(StoreError::NotFound)));
    // The name of the abandoned write is free to use.
    s.put(&half, b"whole".to_vec()).await.unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut s.open(&half).await.unwrap(), &mut out).unwrap();
    assert_eq!(out, b"whole");
}

#[tokio::test]
async fn local_blob_reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let n = BlobName::random();
    {
        let s = open_blobs(&dir).await;
        s.put(&n, b"persisted".to_vec()).await.unwrap();
    }
    let s = open_blobs(&dir).await;
    assert_eq!(s.list().await.unwrap(), vec![n]);
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut s.open(&n).await.unwrap(), &mut out).unwrap();
    assert_eq!(out, b"persisted");
}

/// Opening the store sweeps abandoned writes from `tmp/` but leaves fresh ones, which another
/// process on the same directory (the running server, while a CLI verb opens it) may be writing.
#[tokio::test]
async fn opening_the_local_store_spares_writes_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = blob_root(&dir).join("tmp");
    drop(open_blobs(&dir).await);
    let (fresh, old) = (tmp.join("fresh"), tmp.join("abandoned"));
    std::fs::write(&fresh, b"in flight").unwrap();
    std::fs::write(&old, b"left behind").unwrap();
    abandon(&old);
    drop(open_blobs(&dir).await);
    assert!(fresh.exists(), "a write in flight was deleted");
    assert!(!old.exists(), "an abandoned write was kept");
}

/// Makes a file in `tmp/` look like a write abandoned two hours ago.
fn abandon(path: &Path) {
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
}
