//! The metadata conformance suites against the PostgreSQL adapter, plus what only a shared
//! database promises: data survives reopening, a newer schema is refused, and two nodes
//! appending at once still form one audit chain. Each test gets a fresh database on a
//! throwaway cluster (see `pg/mod.rs`).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;
use callvault_testkit::pg;

use callvault_audit::{Entry, GENESIS, chain_hash};
use callvault_core::TenantId;
use callvault_store::{MetadataConfig, MetadataStore, StoreError, Tenant, TenantKey};
use std::collections::BTreeSet;

fn cfg(db: &pg::Db) -> MetadataConfig {
    MetadataConfig::Postgres {
        url: db.url.clone(),
    }
}

async fn open(db: &pg::Db) -> MetadataStore {
    MetadataStore::open(&cfg(db)).await.unwrap()
}

fn entry(actor: &str, action: &str) -> Entry {
    Entry {
        time: time::OffsetDateTime::now_utc(),
        actor: actor.into(),
        tenant: None,
        action: action.into(),
        target: None,
        purpose: None,
        result: "ok".into(),
        client: None,
        details: None,
    }
}

/// A store on a fresh database, and the database that must outlive it.
async fn fresh_store() -> (MetadataStore, pg::Db) {
    let db = pg::fresh_db().await;
    let store = open(&db).await;
    assert_eq!(store.backend_name(), "postgres");
    (store, db)
}

conformance::metadata_conformance!(fresh_store;
    postgres_identity_conformance => identity,
    postgres_recordings_conformance => recordings,
    postgres_audit_conformance => audit,
    postgres_lifecycle_conformance => lifecycle,
    postgres_live_conformance => live,
    postgres_coordination_conformance => coordination,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reopen_keeps_data() {
    let db = pg::fresh_db().await;
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
        let s = open(&db).await;
        s.create_tenant(&tenant, &key).await.unwrap();
        s.put_setting_if_absent("audit.key", b"sealed")
            .await
            .unwrap();
        s.append_audit(vec![entry("system", "a"), entry("system", "b")])
            .await
            .unwrap()
    };
    let s = open(&db).await;
    assert_eq!(s.get_tenant(&id).await.unwrap(), tenant);
    assert_eq!(s.active_key(&id).await.unwrap(), key);
    assert_eq!(
        s.get_setting("audit.key").await.unwrap().as_deref(),
        Some(&b"sealed"[..])
    );
    assert_eq!(s.audit_range(0, 10).await.unwrap(), first);
    // The chain continues where it stopped.
    let more = s.append_audit(vec![entry("system", "c")]).await.unwrap();
    assert_eq!(more[0].seq, 3);
    assert_eq!(more[0].hash, chain_hash(&first[1].hash, 3, &more[0].entry));
    drop(s);
    // A third open (migrations already applied) still works and records each version once.
    let s = open(&db).await;
    assert_eq!(s.audit_head().await.unwrap().unwrap(), more[0]);
    let c = db.connect().await;
    let versions: Vec<i64> = schema_versions(&c).await;
    assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7]);
}

#[tokio::test]
async fn postgres_refuses_newer_schema() {
    let db = pg::fresh_db().await;
    drop(open(&db).await);
    let c = db.connect().await;
    c.execute(
        "INSERT INTO schema_version (version, applied_at) VALUES (1000, 0)",
        &[],
    )
    .await
    .unwrap();
    match MetadataStore::open(&cfg(&db)).await {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!(found, 1000);
            assert!((1..1000).contains(&supported), "supported = {supported}");
        }
        Err(e) => panic!("expected SchemaTooNew, got {e:?}"),
        Ok(_) => panic!("expected SchemaTooNew, got a store"),
    }
    // Refusing must not have touched the versions.
    let versions: Vec<i64> = schema_versions(&c).await;
    assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7, 1000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nodes_opening_together_migrate_once() {
    let db = pg::fresh_db().await;
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let cfg = cfg(&db);
            tokio::spawn(async move { MetadataStore::open(&cfg).await })
        })
        .collect();
    for o in opens {
        o.await.unwrap().unwrap();
    }
    let c = db.connect().await;
    let versions: Vec<i64> = schema_versions(&c).await;
    assert_eq!(
        versions,
        [1, 2, 3, 4, 5, 6, 7],
        "each migration applied exactly once"
    );
}

/// Two separate handles (two nodes, each with its own pool) append concurrently; the chain
/// must still be one: contiguous seqs from 1, each hash over its predecessor, verifiable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_nodes_append_one_chain() {
    const NODES: usize = 2;
    const TASKS: usize = 8;
    const PER_TASK: usize = 50;
    let db = pg::fresh_db().await;
    let nodes = [open(&db).await, open(&db).await];
    let mut handles = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for t in 0..TASKS {
            let s = node.clone();
            handles.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..PER_TASK {
                    // Mostly single entries, sometimes a batch of three.
                    let batch: Vec<Entry> = (0..if i % 10 == 0 { 3 } else { 1 })
                        .map(|_| entry(&format!("node-{n}-task-{t}"), "test.two-nodes"))
                        .collect();
                    let stored = s.append_audit(batch).await.unwrap();
                    assert!(
                        stored.windows(2).all(|w| w[1].seq == w[0].seq + 1),
                        "one batch is contiguous"
                    );
                    seqs.extend(stored.iter().map(|e| e.seq));
                }
                seqs
            }));
        }
    }
    let mut all = BTreeSet::new();
    for h in handles {
        let seqs = h.await.unwrap();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "a task's seqs grow");
        for q in seqs {
            assert!(all.insert(q), "seq {q} handed out twice");
        }
    }
    let total = (NODES * TASKS * (PER_TASK + PER_TASK / 10 * 2)) as u64;
    assert_eq!(all.len() as u64, total);
    assert_eq!(all.first(), Some(&1));
    assert_eq!(all.last(), Some(&total));

    // Either node reads the same chain, and it verifies from genesis.
    let chain = nodes[1].audit_range(0, u32::MAX).await.unwrap();
    assert_eq!(chain, nodes[0].audit_range(0, u32::MAX).await.unwrap());
    assert_eq!(chain.len() as u64, total);
    let mut prev = GENESIS;
    for (i, e) in chain.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "seq contiguous");
        assert_eq!(e.hash, chain_hash(&prev, e.seq, &e.entry), "link {}", e.seq);
        prev = e.hash;
    }
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let head = chain.last().unwrap();
    let cp = callvault_audit::Checkpoint::sign(
        &key,
        head.seq,
        head.hash,
        time::OffsetDateTime::now_utc(),
    );
    nodes[0].insert_checkpoint(&cp).await.unwrap();
    let cps = nodes[1].checkpoints().await.unwrap();
    let report = callvault_audit::verify(key.verifying_key(), cps, Vec::new(), chain).unwrap();
    assert_eq!(report.entries, total);
}

async fn refused(url: &str) -> String {
    match MetadataStore::open(&MetadataConfig::Postgres {
        url: url.to_owned(),
    })
    .await
    {
        Err(StoreError::Backend(msg)) => msg,
        Err(e) => panic!("{url}: expected a backend error, got {e:?}"),
        Ok(_) => panic!("{url}: expected a refusal, got a store"),
    }
}

/// Whether every connection the server has open to `db` is encrypted.
async fn all_tls(admin: &tokio_postgres::Client, db: &str) -> bool {
    admin
        .query_one(
            "SELECT COUNT(*) > 0 AND bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1 AND a.pid <> pg_backend_pid()",
            &[&db],
        )
        .await
        .unwrap()
        .get(0)
}

/// The TLS modes against a server that offers TLS with a certificate for `localhost` from its
/// own CA: verified when asked (the default), encrypted-only with `require`, plaintext only
/// with `disable`, and no way to fall back silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tls_modes() {
    let db = pg::fresh_db().await;
    let Some(tls) = db.tls.clone() else {
        eprintln!(
            "{} is set: the TLS modes are checked only on the hermetic cluster",
            pg::ENV_URL
        );
        return;
    };
    let at = |host: &str, query: &str| {
        format!(
            "postgres://postgres:{}@{host}:{}/{}?{query}",
            tls.password, tls.port, db.name
        )
    };
    let ca = tls.ca.display().to_string();
    let admin = db.connect().await;

    // verify-full against the right CA and name: connects, over TLS.
    let url = at(tls.host, &format!("sslmode=verify-full&sslrootcert={ca}"));
    let s = MetadataStore::open(&MetadataConfig::Postgres { url })
        .await
        .unwrap();
    s.put_setting_if_absent("tls", b"yes").await.unwrap();
    assert!(
        all_tls(&admin, &db.name).await,
        "verify-full connections are encrypted"
    );
    drop(s);

    // The default is verify-full with the system's CAs, which do not know this server.
    let msg = refused(&at(tls.host, "")).await;
    assert!(msg.contains("certificate"), "default mode: {msg}");
    // The right CA but not the certified name.
    refused(&at(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await;
    // A CA that did not issue the server's certificate.
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("other.pem");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(&other_ca, params.self_signed(&key).unwrap().pem()).unwrap();
    let msg = refused(&at(
        tls.host,
        &format!("sslmode=verify-full&sslrootcert={}", other_ca.display()),
    ))
    .await;
    assert!(msg.contains("certificate"), "other CA: {msg}");
    // Modes that could fall back to plaintext, or half-check, are not accepted at all.
    for mode in ["prefer", "allow", "verify-ca"] {
        let msg = refused(&at(tls.host, &format!("sslmode={mode}"))).await;
        assert!(msg.contains("not supported"), "{mode}: {msg}");
    }

    // require: encrypted, the certificate unchecked; with channel binding SCRAM ties the
    // password exchange to this TLS session.
    for query in ["sslmode=require", "sslmode=require&channel_binding=require"] {
        let url = at("127.0.0.1", query);
        let s = MetadataStore::open(&MetadataConfig::Postgres { url })
            .await
            .unwrap();
        assert_eq!(
            s.get_setting("tls").await.unwrap().as_deref(),
            Some(&b"yes"[..])
        );
        assert!(all_tls(&admin, &db.name).await, "{query}: encrypted");
        drop(s);
    }

    // disable: plaintext, because it was asked for by name.
    let s = open(&db).await;
    assert_eq!(
        s.get_setting("tls").await.unwrap().as_deref(),
        Some(&b"yes"[..])
    );
    assert!(
        !all_tls(&admin, &db.name).await,
        "sslmode=disable is plaintext"
    );
}

/// The migrations recorded as applied, in order.
async fn schema_versions(c: &tokio_postgres::Client) -> Vec<i64> {
    c.query("SELECT version FROM schema_version ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}
