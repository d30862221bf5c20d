//! The key hierarchy from outside: ingest nodes without the master key can write and never
//! read; the exported identity decrypts a recording with the standard `rage`; unsafe listeners
//! refuse to start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use callvault_media::{Codec, testgen};
use common::*;
use serde_json::json;
use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn ingest_only_node_accepts_uploads_and_reads_nothing() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let rec = s.token(&admin, "recorder", Some("region-a")).await;
    let dir = s.stop();
    // Take the master key away entirely.
    let key = dir.path().join("keys/master.key");
    let hidden = dir.path().join("master.key.elsewhere");
    std::fs::rename(&key, &hidden).unwrap();

    let ingest = Server::start_in(dir, &[("CALLVAULT_MODE", "ingest")]);
    let audio = testgen::wav(Codec::Mulaw, 2, 8000, 16_000, 21);
    let id = ingest.upload_ok(&rec, &audio, meta("+46703333333")).await;
    // A live call journals and finishes on the ingest node too; it cannot be assembled there.
    let live_rec = live::Recorder::new(&ingest, &rec);
    let live_id = live_rec.open().await;
    let mut sent = std::collections::BTreeMap::new();
    live_rec.send(&live_id, 8, 0..5, &mut sent).await;
    assert_eq!(live_rec.finish(&live_id, None).await["state"], "finished");
    let c = ingest.client();
    for (method, path) in [
        ("post", "/api/v1/recordings/search".to_string()),
        ("get", format!("/api/v1/recordings/{id}")),
        ("post", format!("/api/v1/recordings/{id}/access")),
        ("post", "/api/v1/auth/login".to_string()),
        ("get", "/api/v1/audit".to_string()),
        ("get", "/api/v1/users".to_string()),
    ] {
        let req = if method == "get" {
            c.get(ingest.url(&path))
        } else {
            c.post(ingest.url(&path)).json(&json!({}))
        };
        let status = req.bearer_auth(&rec).send().await.unwrap().status();
        assert_eq!(status, 404, "{method} {path} is mounted on an ingest node");
    }
    assert!(!key.exists());

    // Back on a full node, the recording plays.
    let dir = ingest.stop();
    std::fs::rename(&hidden, &key).unwrap();
    let full = Server::start_in(dir, &[]);
    let s2_admin_pw = full.admin_password.clone();
    assert!(
        s2_admin_pw.is_none(),
        "a restart must not create another admin"
    );
    let out = cli(
        full.root(),
        &[],
        &[
            "user", "create", "nurse", "--role", "listener", "--tenant", "region-a",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let otp = text
        .rsplit("one-time password: ")
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let nurse = full.first_sign_in("nurse", &otp).await;
    let url = full.url(&nurse.grant(&full, &id).await);
    let got = nurse
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), audio.as_slice());
    // The full node assembled the live call the ingest node journaled (at start, unasked).
    let probe = live::Recorder::new(&full, &rec);
    probe.wait_stored(&live_id).await;
    let (played, outcome) = live::played(&full, &nurse, &live_id).await;
    assert_eq!(outcome["complete"], true);
    assert!(played == live::expected(&sent, 5));
}

#[tokio::test(flavor = "multi_thread")]
async fn rage_decrypts_a_reassembled_recording_with_the_exported_identity() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let rec = s.token(&admin, "recorder", Some("region-a")).await;
    let audio = testgen::wav(Codec::Pcm16, 2, 8000, 50_000, 31);
    let id = s.upload_ok(&rec, &audio, meta("+46704444444")).await;

    let refused = cli(
        s.root(),
        &[],
        &["keys", "export-identity", "--tenant", "region-a"],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--confirm"));
    let out = cli(
        s.root(),
        &[],
        &[
            "keys",
            "export-identity",
            "--tenant",
            "region-a",
            "--confirm",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let identity = String::from_utf8(out.stdout).unwrap();
    assert!(identity.starts_with("AGE-SECRET-KEY-1"));

    // Reassemble header (metadata) || payload (blob) as docs/FORMAT.md says.
    let db = rusqlite::Connection::open(s.data().join("metadata.sqlite")).unwrap();
    let (header, blob): (Vec<u8>, String) = db
        .query_row(
            "SELECT header, blob FROM recordings WHERE id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let payload =
        std::fs::read(s.data().join("blobs/objects").join(&blob[1..3]).join(&blob)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("call.age");
    std::fs::write(&file, [header, payload].concat()).unwrap();
    let id_file = work.path().join("identity.txt");
    std::fs::write(&id_file, &identity).unwrap();
    let rage = Command::new("rage")
        .arg("-d")
        .arg("-i")
        .arg(&id_file)
        .arg(&file)
        .output()
        .expect("rage is installed (cargo install rage)");
    assert!(
        rage.status.success(),
        "rage failed: {}",
        String::from_utf8_lossy(&rage.stderr)
    );
    assert_eq!(rage.stdout, audio);

    // The export is on the record.
    let export = cli(s.root(), &[], &["audit", "export"]);
    let lines = String::from_utf8(export.stdout).unwrap();
    assert!(lines.contains("keys.export_identity"), "{lines}");
}

#[test]
fn plaintext_bind_beyond_loopback_refuses_to_start() {
    let root = tempfile::tempdir().unwrap();
    let out = cli(
        root.path(),
        &[
            ("CALLVAULT_SERVER__LISTEN", "0.0.0.0:0"),
            ("CALLVAULT_SERVER__INSECURE_PLAINTEXT", "true"),
        ],
        &["serve"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs TLS") && err.contains("tls.cert") && err.contains("tls.key"),
        "{err}"
    );
    assert!(
        !data_dir(root.path()).exists(),
        "nothing may be created before the config is valid"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_tenant_key_encrypts_new_recordings_and_old_ones_still_play() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let rec = s.token(&admin, "recorder", Some("region-a")).await;
    let nurse = s.user(&admin, "nurse", "listener", Some("region-a")).await;
    let old_audio = testgen::wav(Codec::Alaw, 1, 8000, 8000, 41);
    let old = s.upload_ok(&rec, &old_audio, meta("+46705555555")).await;
    let v = ok_json(
        admin
            .client
            .post(s.url("/api/v1/tenants/region-a/keys/rotate"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(v["key_id"], 2);
    let new_audio = testgen::wav(Codec::Alaw, 1, 8000, 8000, 42);
    let new = s.upload_ok(&rec, &new_audio, meta("+46705555555")).await;
    let db = rusqlite::Connection::open(s.data().join("metadata.sqlite")).unwrap();
    let key_of = |id: &str| -> i64 {
        db.query_row("SELECT key_id FROM recordings WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert_eq!((key_of(&old), key_of(&new)), (1, 2));
    for (id, audio) in [(old, old_audio), (new, new_audio)] {
        let url = s.url(&nurse.grant(&s, &id).await);
        assert_eq!(nurse.play(&url).await.as_slice(), audio.as_slice());
    }
    // The caller-number search key did not change with the key pair.
    let page = ok_json(
        nurse
            .client
            .post(s.url("/api/v1/recordings/search"))
            .json(&json!({ "caller_number": "+46705555555" }))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
}

#[test]
fn loose_master_key_permissions_are_refused_and_reported() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("keys")).unwrap();
    let init = cli(root.path(), &[], &["init"]);
    assert!(init.status.success(), "{init:?}");
    let doctor = cli(root.path(), &[], &["doctor", "--json"]);
    assert!(
        doctor.status.success(),
        "a fresh deployment has no critical finding: {doctor:?}"
    );
    let key = root.path().join("keys/master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let doctor = cli(root.path(), &[], &["doctor", "--json"]);
    assert_eq!(doctor.status.code(), Some(2));
    let findings: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    assert!(
        findings
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "master_key_permissions" && f["severity"] == "critical"),
        "{findings}"
    );
    let serve = cli(root.path(), &[], &["serve"]);
    assert!(!serve.status.success());
    assert!(
        String::from_utf8_lossy(&serve.stderr).contains("chmod 600"),
        "{serve:?}"
    );
}
