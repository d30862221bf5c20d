//! Several stateless nodes on one PostgreSQL database and one S3 bucket (a 3-node Garage
//! cluster) behave as one system: sessions and grants from one node are honoured by another,
//! concurrent work on both leaves one verifiable audit chain with exactly one entry per action,
//! and losing one Garage node loses no service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use callvault_media::{Codec, testgen};
use callvault_testkit::{garage::Garage, pg};
use common::*;
use futures_util::future::join_all;
use serde_json::json;
use std::path::Path;

/// Environment shared by every node of one deployment.
fn shared_env(shared: &Path, db: &pg::Db, s3: &Garage) -> Vec<(String, String)> {
    vec![
        ("CALLVAULT_METADATA__BACKEND".into(), "postgres".into()),
        ("CALLVAULT_METADATA__URL".into(), db.node_url()),
        ("CALLVAULT_BLOBS__BACKEND".into(), "s3".into()),
        ("CALLVAULT_BLOBS__REGION".into(), s3.region.clone()),
        ("CALLVAULT_BLOBS__BUCKET".into(), s3.bucket.clone()),
        (
            "CALLVAULT_BLOBS__ACCESS_KEY_ID".into(),
            s3.access_key_id.clone(),
        ),
        (
            "CALLVAULT_BLOBS__SECRET_ACCESS_KEY".into(),
            s3.secret_access_key.clone(),
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

/// Starts a node talking to Garage node `via` (each callvault node may use a different one).
fn start_node(env: &[(String, String)], s3: &Garage, via: usize) -> Server {
    let mut env = env.to_vec();
    env.push((
        "CALLVAULT_BLOBS__ENDPOINT".into(),
        s3.endpoints[via].clone(),
    ));
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start_in(tempfile::tempdir().unwrap(), &extra)
}

async fn audit_count(s: &Server, auditor: &str) -> usize {
    let mut after = 0u64;
    let mut n = 0;
    loop {
        let page = s
            .audit(auditor, &format!("after_seq={after}&limit=1000"))
            .await;
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
    let mut s3 = Garage::start();
    let shared = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(shared.path().join("tls")).unwrap();
    let env = shared_env(shared.path(), &db, &s3);
    let env_no_tls: Vec<_> = env
        .iter()
        .filter(|(k, _)| !k.starts_with("CALLVAULT_TLS__"))
        .cloned()
        .collect();
    // Node A initialises the deployment (master key, first admin, a self-signed certificate);
    // node B shares that certificate, as nodes behind one load balancer would.
    let a = start_node(&env_no_tls, &s3, 0);
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
    let b = start_node(&env, &s3, 1);
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
        nurse.play(&a.url(&grant)).await.as_slice(),
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
    let mut cli_env = env.clone();
    cli_env.push(("CALLVAULT_BLOBS__ENDPOINT".into(), s3.endpoints[0].clone()));
    let extra: Vec<(&str, &str)> = cli_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let out = cli(a.root(), &extra, &["audit", "verify"]);
    assert!(out.status.success(), "{out:?}");
    // One of three Garage nodes fails: uploads and playback go on.
    s3.stop_node(2);
    let audio = testgen::wav(Codec::Mulaw, 1, 8000, 16_000, 77);
    let id = b.upload_ok(&rec, &audio, meta("+46709999999")).await;
    let url = nurse.grant(&a, &id).await;
    assert_eq!(nurse.play(&a.url(&url)).await.as_slice(), audio.as_slice());
    let old = nurse.grant(&b, &ids[0]).await;
    assert_eq!(
        nurse.client.get(b.url(&old)).send().await.unwrap().status(),
        200
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

/// An acknowledged chunk survives the loss of the node that acknowledged it: node A takes the
/// first half of a live call and is killed with SIGKILL; the recorder asks node B where to
/// resume, sends the rest there and finishes; the recording plays back sample-exact. The
/// journal lives in the shared database, and B adds its own journal key to the call.
#[tokio::test(flavor = "multi_thread")]
async fn a_live_call_resumes_on_another_node_after_the_first_dies() {
    use common::live::*;
    use std::collections::BTreeMap;
    let db = pg::fresh_db().await;
    let s3 = Garage::start();
    let shared = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(shared.path().join("tls")).unwrap();
    let env = shared_env(shared.path(), &db, &s3);
    let env_no_tls: Vec<_> = env
        .iter()
        .filter(|(k, _)| !k.starts_with("CALLVAULT_TLS__"))
        .cloned()
        .collect();
    let a = start_node(&env_no_tls, &s3, 0);
    for f in ["cert.pem", "key.pem"] {
        std::fs::copy(
            a.data().join("tls").join(f),
            shared.path().join("tls").join(f),
        )
        .unwrap();
    }
    let b = start_node(&env, &s3, 1);
    let admin = a.admin().await;
    a.tenant(&admin, "region-skane").await;
    let token = a.token(&admin, "recorder", Some("region-skane")).await;
    let nurse = a
        .user(&admin, "nurse", "listener", Some("region-skane"))
        .await;

    let on_a = Recorder::new(&a, &token);
    let id = on_a.open().await;
    let mut sent = BTreeMap::new();
    on_a.send(&id, 7, 0..12, &mut sent).await;
    drop(a.stop()); // SIGKILL: node A is gone

    let on_b = Recorder::new(&b, &token);
    let st = on_b.status(&id).await;
    assert_eq!(
        st["acked_through"], 12,
        "B sees everything A acknowledged: {st}"
    );
    on_b.send(&id, 7, 12..25, &mut sent).await;
    on_b.finish_stored(&id, None).await;
    let (audio, live) = played(&b, &nurse, &id).await;
    assert_eq!(live["complete"], true);
    assert_eq!(live["gaps"], json!([]));
    assert!(
        audio == expected(&sent, 25),
        "the recording is intact across both nodes"
    );
}
