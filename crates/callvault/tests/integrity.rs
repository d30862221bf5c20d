//! Tampering is detected, never served: a flipped byte in a blob fails playback (and is
//! audited); an edited, deleted or reordered audit row fails `audit verify`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use callvault_media::{Codec, testgen};
use common::*;
use serde_json::Value;
use std::path::Path;

fn blob_files(s: &Server) -> Vec<std::path::PathBuf> {
    files_under(&s.data().join("blobs/objects"))
}

#[tokio::test(flavor = "multi_thread")]
async fn flipped_blob_byte_fails_playback_and_is_audited() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let rec = s.token(&admin, "recorder", Some("region-a")).await;
    let nurse = s.user(&admin, "nurse", "listener", Some("region-a")).await;
    let auditor = s.token(&admin, "auditor", None).await;

    // 200 KB: four STREAM chunks. Flip one byte inside the third.
    let audio = testgen::wav(Codec::Pcm16, 1, 8000, 100_000, 11);
    let id = s.upload_ok(&rec, &audio, meta("+46702222222")).await;
    let blobs = blob_files(&s);
    assert_eq!(blobs.len(), 1);
    let mut bytes = std::fs::read(&blobs[0]).unwrap();
    bytes[16 + 2 * (65_536 + 16) + 100] ^= 0x20;
    std::fs::write(&blobs[0], &bytes).unwrap();

    let url = s.url(&nurse.grant(&s, &id).await);
    // Intact chunks still play…
    let ok = nurse
        .client
        .get(&url)
        .header("range", "bytes=0-999")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 206);
    assert_eq!(ok.bytes().await.unwrap().as_ref(), &audio[..1000]);
    // …the altered one never does: not as a range…
    let bad = nurse
        .client
        .get(&url)
        .header("range", format!("bytes={}-{}", 2 * 65_536, 2 * 65_536 + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 500);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "integrity_error");
    // …nor inside a whole-file stream, which stops before the altered chunk.
    let whole = nurse.client.get(&url).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    let got = whole.bytes().await;
    assert!(got.is_err(), "the stream must break, not deliver garbage");

    let entries = s
        .audit(&auditor, &format!("action=recording.play&target={id}"))
        .await;
    let failures = entries
        .iter()
        .filter(|e| e["result"] == "integrity_error")
        .count();
    assert!(
        failures >= 2,
        "integrity failures must be audited: {entries:?}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn verify(root: &Path) -> (i32, String) {
    let out = cli(root, &[], &["audit", "verify"]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_detects_edit_delete_reorder() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    s.user(&admin, "nurse", "listener", Some("region-a")).await;
    let dir = s.stop();
    let root = dir.path();
    let cp = cli(root, &[], &["audit", "checkpoint"]);
    assert!(cp.status.success(), "{cp:?}");
    let (code, text) = verify(root);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("intact"), "{text}");
    let n: i64 = rusqlite::Connection::open(data_dir(root).join("metadata.sqlite"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))
        .unwrap();
    assert!(n >= 8, "expected a few entries, got {n}");

    let tampers: &[(&str, &str, &str)] = &[
        (
            "edit",
            "UPDATE audit SET actor = 'user:mallory' WHERE seq = 3",
            "3",
        ),
        (
            "edit purpose",
            "UPDATE audit SET purpose = 'quality_review: curiosity' WHERE seq = 2",
            "2",
        ),
        ("delete", "DELETE FROM audit WHERE seq = 4", "4"),
        (
            "reorder",
            "UPDATE audit SET seq = -1 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = -1;",
            "2",
        ),
        ("truncate tail", "DELETE FROM audit WHERE seq >= 6", ""),
        (
            "drop checkpoints and tail",
            "DELETE FROM audit_checkpoints; DELETE FROM audit WHERE seq >= 6",
            "",
        ),
    ];
    for (what, sql, seq) in tampers {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(root, copy.path());
        rusqlite::Connection::open(data_dir(copy.path()).join("metadata.sqlite"))
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        let (code, text) = verify(copy.path());
        assert_eq!(code, 2, "{what} went unnoticed: {text}");
        assert!(
            text.contains("BROKEN") && text.contains(seq),
            "{what}: {text}"
        );
    }

    // Posture remembers the last verification: intact is quiet, broken is a high finding.
    let audit_findings = |root: &Path| -> Vec<(String, String)> {
        let out = cli(root, &[], &["doctor", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter(|f| f["id"].as_str().unwrap().starts_with("audit_"))
            .map(|f| {
                (
                    f["id"].as_str().unwrap().into(),
                    f["severity"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    assert_eq!(audit_findings(root), vec![]);
    rusqlite::Connection::open(data_dir(root).join("metadata.sqlite"))
        .unwrap()
        .execute_batch(tampers[0].1)
        .unwrap();
    assert_eq!(verify(root).0, 2);
    assert_eq!(
        audit_findings(root),
        vec![("audit_chain_broken".to_string(), "high".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_are_signed_and_reach_the_external_sink() {
    let s = Server::start_in(
        tempfile::tempdir().unwrap(),
        &[("CALLVAULT_AUDIT__CHECKPOINT_EVERY", "3")],
    );
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let sink = s.root().join("sink/audit.jsonl");
    wait_until(
        || std::fs::read_to_string(&sink).is_ok_and(|t| t.lines().count() >= 1),
        "a checkpoint in the sink",
    );
    let line = std::fs::read_to_string(&sink).unwrap();
    let cp: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert!(cp["seq"].as_u64().unwrap() >= 3, "{cp}");
    assert_eq!(cp["signature"].as_str().unwrap().len(), 128);
    // The auditor's verification covers the sink too.
    let auditor = s.token(&admin, "auditor", None).await;
    let report = ok_json(
        s.client()
            .post(s.url("/api/v1/audit/verify"))
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(report["intact"], true, "{report}");
    assert!(
        report["sink_checkpoints"].as_u64().unwrap() >= 1,
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_audit_no_access() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let rec = s.token(&admin, "recorder", Some("region-a")).await;
    let nurse = s.user(&admin, "nurse", "listener", Some("region-a")).await;
    let audio = testgen::wav(Codec::Mulaw, 1, 8000, 8000, 51);
    let id = s.upload_ok(&rec, &audio, meta("+46706666666")).await;
    let url = s.url(&nurse.grant(&s, &id).await);

    // Make every audit append fail, as a full disk or a broken database would.
    let db = rusqlite::Connection::open(s.data().join("metadata.sqlite")).unwrap();
    db.execute_batch("CREATE TRIGGER audit_down BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit down'); END;")
        .unwrap();
    let grants_before: i64 = db
        .query_row("SELECT COUNT(*) FROM grants", [], |r| r.get(0))
        .unwrap();

    let r = nurse
        .client
        .post(s.url(&format!("/api/v1/recordings/{id}/access")))
        .json(&serde_json::json!({ "purpose_code": "complaint", "purpose_text": "complaint ticket 77 about this call" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let grants_after: i64 = db
        .query_row("SELECT COUNT(*) FROM grants", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        grants_before, grants_after,
        "no grant without its audit entry"
    );
    let play = nurse.client.get(&url).send().await.unwrap();
    assert_eq!(play.status(), 503, "no audio without its audit entry");
    let up = s.upload(&rec, &audio, meta("+46706666666")).await;
    assert_eq!(up.status(), 503, "no upload without its audit entry");
    let count: i64 = db
        .query_row("SELECT COUNT(*) FROM recordings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1);

    db.execute_batch("DROP TRIGGER audit_down;").unwrap();
    assert_eq!(nurse.client.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_says_why_the_audit_record_refused_a_change() {
    // Before the domain errors, the CLI printed "the audit record could not be written, so
    // nothing was done; try again later" and the cause was lost: the CLI has no other log.
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let db = rusqlite::Connection::open(s.data().join("metadata.sqlite")).unwrap();
    db.execute_batch("CREATE TRIGGER audit_down BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit down'); END;")
        .unwrap();
    let out = s.cli(&[
        "policy",
        "retention",
        "--tenant",
        "region-a",
        "--scope",
        "tenant",
        "--days",
        "30",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the audit record could not be written") && stderr.contains("audit down"),
        "{stderr}"
    );
    let rules: i64 = db
        .query_row("SELECT COUNT(*) FROM retention_rules", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rules, 0, "nothing changed without its audit entry");
}
