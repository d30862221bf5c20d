//! Several stateless nodes on one PostgreSQL database and one blob store behave as one system:
//! sessions and grants from one node are honoured by another, and concurrent work on both
//! leaves one verifiable audit chain with exactly one entry per action.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use callvault_media::{Codec, testgen};
use callvault_testkit::pg;
use common::*;
use futures_util::future::join_all;
use serde_json::json;
use std::path::Path;

/// Environment shared by every node of one deployment.
fn shared_env(shared: &Path, db: &pg::Db) -> Vec<(String, String)> {
    vec![
        ("CALLVAULT_METADATA__BACKEND".into(), "postgres".into()),
        ("CALLVAULT_METADATA__URL".into(), db.node_url()),
        (
            "CALLVAULT_BLOBS__PATH".into(),
            shared.join("blobs").display().to_string(),
        ),
        (
            "CALLVAULT_KEYS__MASTER_KEY_FILE".into(),
            shared.join("master.key").display().to_string(),
        ),
        (
            "CALLVAULT_AUDIT__SINK_FILE".into(),
            shared.join("sink.jsonl").display().to_string(),
        ),
        (
            "CALLVAULT_TLS__CERT".into(),
            shared.join("tls/cert.pem").display().to_string(),
        ),
        (
            "CALLVAULT_TLS__KEY".into(),
            shared.join("tls/key.pem").display().to_string(),
        ),
        (
            "CALLVAULT_AUDIT__CHECKPOINT_INTERVAL_SECS".into(),
            "1".into(),
        ),
    ]
}

fn start_node(env: &[(String, String)]) -> Server {
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start_in(tempfile::tempdir().unwrap(), &extra)
}

async fn audit_count(s: &Server, auditor: &str) -> usize {
    let mut after = 0u64;
    let mut n = 0;
    loop {
        let page: Vec<serde_json::Value> = s
            .client()
            .get(s.url(&format!("/api/v1/audit?after_seq={after}&limit=1000")))
            .bearer_auth(auditor)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // Each query is itself audited, so stop at the first short page rather than at an
        // empty one (which would never come).
        n += page.len();
        match page.last() {
            Some(last) if page.len() == 1000 => after = last["seq"].as_u64().unwrap(),
            _ => return n,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_on_one_database_are_one_system() {
    let db = pg::fresh_db().await;
    let shared = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(shared.path().join("tls")).unwrap();
    let env = shared_env(shared.path(), &db);
    let env_no_tls: Vec<_> = env
        .iter()
        .filter(|(k, _)| !k.starts_with("CALLVAULT_TLS__"))
        .cloned()
        .collect();
    // Node A initialises the deployment (master key, first admin, a self-signed certificate);
    // node B shares that certificate, as nodes behind one load balancer would.
    let a = start_node(&env_no_tls);
    std::fs::copy(
        a.data().join("tls/cert.pem"),
        shared.path().join("tls/cert.pem"),
    )
    .unwrap();
    std::fs::copy(
        a.data().join("tls/key.pem"),
        shared.path().join("tls/key.pem"),
    )
    .unwrap();
    let b = start_node(&env);
    assert!(
        b.admin_password.is_none(),
        "the second node must not create another admin"
    );

    let admin = a.admin().await;
    a.tenant(&admin, "region-a").await;
    let rec = a.token(&admin, "recorder", Some("region-a")).await;
    let auditor = a.token(&admin, "auditor", None).await;
    let nurse = a.user(&admin, "nurse", "listener", Some("region-a")).await;

    // Upload through A; search, grant and play through B with the session A issued.
    let audio = testgen::wav(Codec::Mulaw, 2, 8000, 24_000, 61);
    let id = a.upload_ok(&rec, &audio, meta("+46707777777")).await;
    let page = ok_json(
        nurse
            .client
            .post(b.url("/api/v1/recordings/search"))
            .json(&json!({ "caller_number": "+46707777777" }))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(page["items"][0]["id"], id.as_str());
    let grant = nurse.grant(&b, &id).await;
    assert_eq!(
        nurse
            .client
            .get(a.url(&grant))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        audio.as_slice()
    );

    // Concurrent uploads and accesses on both nodes.
    let before = audit_count(&b, &auditor).await;
    let nodes = [&a, &b];
    let audios: Vec<Vec<u8>> = (0..12)
        .map(|i| testgen::wav(Codec::Alaw, 1, 8000, 4000, 100 + i))
        .collect();
    let uploads: Vec<_> = audios
        .iter()
        .enumerate()
        .map(|(i, audio)| nodes[i % 2].upload(&rec, audio, meta("+46708888888")))
        .collect();
    let results = join_all(uploads).await;
    let ids: Vec<String> = {
        let mut v = Vec::new();
        for r in results {
            v.push(ok_json(r, 201).await["id"].as_str().unwrap().to_owned());
        }
        v
    };
    let mut plays = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let node = nodes[(i + 1) % 2];
        plays.push(async {
            let url = nurse.grant(node, id).await;
            nurse
                .client
                .get(node.url(&url))
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    for status in join_all(plays).await {
        assert_eq!(status, 200);
    }
    // 12 uploads + 12 accesses + 12 plays, plus the one audit.query entry of the count before
    // (the count after sees the entries of its own earlier pages only).
    let after = audit_count(&a, &auditor).await;
    let pages_before = before / 1000 + 1;
    let pages_after = after / 1000;
    assert_eq!(
        after - before,
        36 + pages_before + pages_after,
        "one entry per action"
    );

    // One chain, signed by one node at a time, verified across both.
    wait_until(
        || std::fs::read_to_string(shared.path().join("sink.jsonl")).is_ok_and(|t| !t.is_empty()),
        "a checkpoint in the shared sink",
    );
    let report = ok_json(
        b.client()
            .post(b.url("/api/v1/audit/verify"))
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(report["intact"], true, "{report}");
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = cli(a.root(), &extra, &["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Even at debug level, no node logs a caller's number (database drivers stay at warn).
    for node in [&a, &b] {
        let log = node.log();
        assert!(log.contains("callvault serving"));
        assert!(
            !log.contains("707777777") && !log.contains("708888888"),
            "a number reached the log"
        );
    }
}
