// size: one test binary per feature. Every file here is its own binary that links the whole
// server (about a minute on CI's two cores), so a feature's black-box tests share one file.
//! Lifecycle and privacy, black-box: recording policy at ingest, retention (longest rule wins,
//! holds spare, idempotent), crypto-shredding that outlives a copy of the blob store, two-person
//! caller erasure, the signed subject access archive, and caller numbers never in clear.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use callvault_media::{Codec, testgen};
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn call(caller: &str, queue: Option<&str>, started_at: &str) -> Value {
    let mut m = meta(caller);
    m["queue"] = json!(queue);
    m["started_at"] = json!(started_at);
    m
}

async fn post(u: &User, s: &Server, path: &str, body: Value) -> reqwest::Response {
    u.client.post(s.url(path)).json(&body).send().await.unwrap()
}

async fn rule(po: &User, s: &Server, tenant: &str, body: Value) {
    ok_json(
        post(
            po,
            s,
            &format!("/api/v1/tenants/{tenant}/retention-rules"),
            body,
        )
        .await,
        200,
    )
    .await;
}

/// Every recording id a listener can find in their tenant.
async fn ids(u: &User, s: &Server, criteria: Value) -> BTreeSet<String> {
    let page = ok_json(post(u, s, "/api/v1/recordings/search", criteria).await, 200).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn retention_run(s: &Server, args: &[&str]) -> Value {
    let mut all = vec!["retention", "run"];
    all.extend_from_slice(args);
    let out = s.cli(&all);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn rage_decrypts(identity: &Path, file: &Path) -> Option<Vec<u8>> {
    let out = Command::new("rage")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(file)
        .output()
        .expect("rage is installed (cargo install rage)");
    out.status.success().then_some(out.stdout)
}

fn blob_path(root: &Path, blob: &str) -> std::path::PathBuf {
    root.join("objects").join(&blob[1..3]).join(blob)
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_erases_exactly_the_expired_spares_held_ones_and_shreds_for_good() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let po = s
        .user(&admin, "po1", "privacy_officer", Some("region-a"))
        .await;
    let nurse = s.user(&admin, "nurse", "listener", Some("region-a")).await;
    let rec = s.token(&admin, "recorder", Some("region-a")).await;
    s.policy(
        &po,
        "region-a",
        json!({ "queue": "triage", "record": true, "parties": "both", "retention_class": "short" }),
    )
    .await;
    s.policy(&po, "region-a", json!({ "queue": "complaints", "record": true, "parties": "both", "retention_class": "long" })).await;
    // Tenant 30 days; the triage queue 90; the `long` class ten years; `short` 10 days (the
    // tenant's 30 still wins for it: the longest matching rule wins).
    rule(
        &po,
        &s,
        "region-a",
        json!({ "scope": "tenant", "days": 30 }),
    )
    .await;
    rule(
        &po,
        &s,
        "region-a",
        json!({ "scope": "queue", "value": "triage", "days": 90 }),
    )
    .await;
    rule(
        &po,
        &s,
        "region-a",
        json!({ "scope": "class", "value": "long", "days": 3650 }),
    )
    .await;
    rule(
        &po,
        &s,
        "region-a",
        json!({ "scope": "class", "value": "short", "days": 10 }),
    )
    .await;

    let audio = |seed| testgen::wav(Codec::Mulaw, 1, 8000, 8000, seed);
    let old = "2026-01-01T10:00:00Z";
    let up = |caller: &'static str, queue: Option<&'static str>, at: &'static str, seed| {
        let (s, rec) = (&s, &rec);
        async move {
            s.upload_ok(rec, &audio(seed), call(caller, queue, at))
                .await
        }
    };
    let expired_plain = up("+46701000001", None, old, 1).await; // 30 d: expired
    let young_triage = up("+46701000002", Some("triage"), "2026-04-01T10:00:00Z", 2).await; // 90 d: kept
    let expired_triage = up("+46701000003", Some("triage"), old, 3).await; // 90 d: expired
    let long = up("+46701000004", Some("complaints"), old, 4).await; // 3650 d: kept
    let held_caller = up("+46701000005", None, old, 5).await; // expired, caller on hold
    let held_rec = up("+46701000006", None, old, 6).await; // expired, recording on hold
    let fresh = up("+46701000007", None, "2026-05-25T10:00:00Z", 7).await; // 7 d: kept
    ok_json(
        post(
            &po,
            &s,
            "/api/v1/holds",
            json!({ "caller_number": "+46701000005", "reason": "litigation case 2026-17" }),
        )
        .await,
        201,
    )
    .await;
    ok_json(
        post(
            &po,
            &s,
            "/api/v1/holds",
            json!({ "recording_id": held_rec, "reason": "complaint under review 88" }),
        )
        .await,
        201,
    )
    .await;

    // Before: a copy of the blob store, the headers of what will be erased, and the tenant
    // identity — everything a thief with a backup and the master key could have.
    let copy = tempfile::tempdir().unwrap();
    let out = Command::new("cp")
        .arg("-a")
        .arg(s.data().join("blobs"))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(out.success());
    let identity = cli(
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
    assert!(identity.status.success());
    let work = tempfile::tempdir().unwrap();
    let id_file = work.path().join("identity.txt");
    std::fs::write(&id_file, &identity.stdout).unwrap();
    let db = rusqlite::Connection::open(s.data().join("metadata.sqlite")).unwrap();
    let row = |id: &str| -> (Vec<u8>, String) {
        db.query_row(
            "SELECT header, blob FROM recordings WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let doomed: Vec<(String, Vec<u8>, String)> = [&expired_plain, &expired_triage]
        .into_iter()
        .map(|id| {
            let (h, b) = row(id);
            (id.clone(), h, b)
        })
        .collect();
    drop(db);
    // Control: with header and identity, the copied payload decrypts.
    let (_, h, b) = &doomed[0];
    let f = work.path().join("control.age");
    std::fs::write(
        &f,
        [
            h.clone(),
            std::fs::read(blob_path(&copy.path().join("blobs"), b)).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    assert_eq!(rage_decrypts(&id_file, &f), Some(audio(1)));

    let now = ["--now", "2026-06-01T00:00:00Z"];
    let dry = retention_run(&s, &[now[0], now[1], "--dry-run"]);
    assert_eq!(
        (dry["expired"].as_u64(), dry["dry_run"].as_bool()),
        (Some(2), Some(true))
    );
    let all: BTreeSet<String> = [
        &expired_plain,
        &young_triage,
        &expired_triage,
        &long,
        &held_caller,
        &held_rec,
        &fresh,
    ]
    .into_iter()
    .cloned()
    .collect();
    assert_eq!(
        ids(&nurse, &s, json!({})).await,
        all,
        "a dry run erases nothing"
    );

    let run = retention_run(&s, &now);
    assert_eq!(run["expired"].as_u64(), Some(2), "{run}");
    assert_eq!(
        run["blobs_deleted"].as_u64(),
        Some(0),
        "blobs went with their batch"
    );
    let kept: BTreeSet<String> = [&young_triage, &long, &held_caller, &held_rec, &fresh]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(ids(&nurse, &s, json!({})).await, kept);
    let again = retention_run(&s, &now);
    assert_eq!(again["expired"].as_u64(), Some(0), "idempotent: {again}");
    assert_eq!(ids(&nurse, &s, json!({})).await, kept);

    // Shredded: the payload blobs are gone, no header is left anywhere in the data directory,
    // and no header that is left opens a copied payload, even with the tenant identity.
    let data_files = files_under(&s.data());
    for (id, header, blob) in &doomed {
        assert!(
            !blob_path(&s.data().join("blobs"), blob).exists(),
            "{id}'s blob deleted"
        );
        for f in &data_files {
            let bytes = std::fs::read(f).unwrap_or_default();
            assert!(
                !contains(&bytes, &header[..120]),
                "{id}'s header survives in {}",
                f.display()
            );
        }
    }
    let db = rusqlite::Connection::open(s.data().join("metadata.sqlite")).unwrap();
    let mut st = db.prepare("SELECT header FROM recordings").unwrap();
    let headers: Vec<Vec<u8>> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(headers.len(), 5);
    for (id, _, blob) in &doomed {
        let payload = std::fs::read(blob_path(&copy.path().join("blobs"), blob)).unwrap();
        for (i, h) in headers.iter().enumerate() {
            let f = work.path().join(format!("try-{i}.age"));
            std::fs::write(&f, [h.clone(), payload.clone()].concat()).unwrap();
            assert_eq!(
                rage_decrypts(&id_file, &f),
                None,
                "{id} opened with header {i}"
            );
        }
    }

    // The runs are on the record with their counts.
    let auditor = s.token(&admin, "auditor", None).await;
    let entries: Value = s
        .client()
        .get(s.url("/api/v1/audit?action=retention.run&actor=operator:cli"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let counts: Vec<u64> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(e["details"].as_str().unwrap()).unwrap()["expired"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(counts, [2, 2, 0], "dry run, run, idempotent run");
    let erase: Value = s
        .client()
        .get(s.url("/api/v1/audit?action=recording.erase"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let details: Value = serde_json::from_str(erase[0]["details"].as_str().unwrap()).unwrap();
    let listed: BTreeSet<String> = details["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        listed,
        BTreeSet::from([expired_plain.clone(), expired_triage.clone()])
    );
    assert_eq!(details["blob_sha256"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_in_server_job_erases_on_its_own_and_counts_in_metrics() {
    let s = Server::start_in(
        tempfile::tempdir().unwrap(),
        &[("CALLVAULT_RETENTION__INTERVAL_SECS", "1")],
    );
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let po = s
        .user(&admin, "po1", "privacy_officer", Some("region-a"))
        .await;
    let nurse = s.user(&admin, "nurse", "listener", Some("region-a")).await;
    let rec = s.token(&admin, "recorder", Some("region-a")).await;
    let audio = testgen::wav(Codec::Mulaw, 1, 8000, 8000, 9);
    let ancient = s
        .upload_ok(
            &rec,
            &audio,
            call("+46702000001", None, "2020-01-01T00:00:00Z"),
        )
        .await;
    let recent = s
        .upload_ok(
            &rec,
            &audio,
            call("+46702000002", None, "2099-01-01T00:00:00Z"),
        )
        .await;
    // No rule yet: nothing is ever erased (and posture says so).
    let posture: Value = admin
        .client
        .get(s.url("/api/v1/posture"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        posture.to_string().contains("tenant_without_retention"),
        "{posture}"
    );
    rule(
        &po,
        &s,
        "region-a",
        json!({ "scope": "tenant", "days": 365 }),
    )
    .await;
    for _ in 0..500 {
        if !ids(&nurse, &s, json!({})).await.contains(&ancient) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ids(&nurse, &s, json!({})).await, BTreeSet::from([recent]));
    let metrics = body_text(admin.client.get(s.url("/metrics"))).await;
    assert!(
        metrics.contains("callvault_recordings_erased_total 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_no_policy_covers_is_refused_and_audited() {
    let s = Server::start();
    let admin = s.admin().await;
    s.bare_tenant(&admin, "region-a").await;
    let rec = s.token(&admin, "recorder", Some("region-a")).await;
    let audio = testgen::wav(Codec::Mulaw, 1, 8000, 8000, 3);
    let refused = |resp: reqwest::Response| async move {
        let v = ok_json(resp, 403).await;
        assert_eq!(v["error"], "not_recorded", "{v}");
        v["message"].as_str().unwrap().to_owned()
    };
    let msg = refused(
        s.upload(
            &rec,
            &audio,
            call("+46703000001", Some("triage"), "2026-11-20T08:00:00Z"),
        )
        .await,
    )
    .await;
    assert!(
        msg.contains("no recording policy") && msg.contains("recording-policies"),
        "{msg}"
    );
    // A policy for one queue covers that queue only; a policy may also say "do not record".
    s.policy(&admin, "region-a", json!({ "queue": "triage", "record": true, "parties": "caller", "retention_class": "short" })).await;
    s.policy(
        &admin,
        "region-a",
        json!({ "queue": "staff", "record": false, "parties": "both", "retention_class": "short" }),
    )
    .await;
    refused(
        s.upload(
            &rec,
            &audio,
            call("+46703000001", Some("other"), "2026-11-20T08:00:00Z"),
        )
        .await,
    )
    .await;
    refused(
        s.upload(
            &rec,
            &audio,
            call("+46703000001", None, "2026-11-20T08:00:00Z"),
        )
        .await,
    )
    .await;
    let msg = refused(
        s.upload(
            &rec,
            &audio,
            call("+46703000001", Some("staff"), "2026-11-20T08:00:00Z"),
        )
        .await,
    )
    .await;
    assert!(msg.contains("says not to record"), "{msg}");
    // Live ingest asks the same policy before it opens a call.
    let live_open = |queue: &'static str| {
        let mut body = common::live::open_body();
        body["queue"] = json!(queue);
        s.client()
            .post(s.url("/api/v1/live/calls"))
            .bearer_auth(&rec)
            .json(&body)
            .send()
    };
    refused(live_open("staff").await.unwrap()).await;
    ok_json(live_open("triage").await.unwrap(), 201).await;
    s.upload_ok(
        &rec,
        &audio,
        call("+46703000001", Some("triage"), "2026-11-20T08:00:00Z"),
    )
    .await;
    // Nothing of the refused calls was stored, and each refusal is on the record.
    let db = rusqlite::Connection::open(s.data().join("metadata.sqlite")).unwrap();
    let n: i64 = db
        .query_row("SELECT COUNT(*) FROM recordings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    let blobs = files_under(&s.data().join("blobs/objects"));
    assert_eq!(blobs.len(), 1);
    let auditor = s.token(&admin, "auditor", None).await;
    let entries: Value = s
        .client()
        .get(s.url("/api/v1/audit?action=ingest.refused"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 5, "{entries}");
    let changes: Value = s
        .client()
        .get(s.url("/api/v1/audit?action=policy.recording.set"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        changes.as_array().unwrap().len(),
        2,
        "policy changes are audited"
    );
    // A listener may not set policies; another tenant's privacy officer cannot see this one.
    s.tenant(&admin, "region-b").await;
    let nurse = s.user(&admin, "nurse", "listener", Some("region-a")).await;
    let other_po = s
        .user(&admin, "pob", "privacy_officer", Some("region-b"))
        .await;
    let body = json!({ "record": true, "parties": "both", "retention_class": "x" });
    assert_eq!(
        post(
            &nurse,
            &s,
            "/api/v1/tenants/region-a/recording-policies",
            body.clone()
        )
        .await
        .status(),
        403
    );
    assert_eq!(
        post(
            &other_po,
            &s,
            "/api/v1/tenants/region-a/recording-policies",
            body
        )
        .await
        .status(),
        404
    );

    // The operator's CLI sets policies too (audited as operator:cli).
    s.bare_tenant(&admin, "region-c").await;
    let rec_c = s.token(&admin, "recorder", Some("region-c")).await;
    let meta_c = call("+46703000009", None, "2026-11-20T08:00:00Z");
    refused(s.upload(&rec_c, &audio, meta_c.clone()).await).await;
    let out = s.cli(&[
        "policy",
        "recording",
        "--tenant",
        "region-c",
        "--class",
        "standard",
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = s.cli(&[
        "policy",
        "retention",
        "--tenant",
        "region-c",
        "--scope",
        "tenant",
        "--days",
        "400",
    ]);
    assert!(out.status.success(), "{out:?}");
    let bad = s.cli(&[
        "policy",
        "retention",
        "--tenant",
        "region-c",
        "--scope",
        "tenant",
        "--days",
        "0",
    ]);
    assert!(
        !bad.status.success()
            && String::from_utf8_lossy(&bad.stderr).contains("between 1 and 36500")
    );
    s.upload_ok(&rec_c, &audio, meta_c).await;
    let rules = ok_json(
        admin
            .client
            .get(s.url("/api/v1/tenants/region-c/retention-rules"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        (rules[0]["days"].as_i64(), rules[0]["updated_by"].as_str()),
        (Some(400), Some("operator:cli"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn erasing_a_callers_recordings_takes_two_officers_and_spares_holds() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let po1 = s
        .user(&admin, "po1", "privacy_officer", Some("region-a"))
        .await;
    let po2 = s
        .user(&admin, "po2", "privacy_officer", Some("region-a"))
        .await;
    let nurse = s.user(&admin, "nurse", "listener", Some("region-a")).await;
    let rec = s.token(&admin, "recorder", Some("region-a")).await;
    let audio = testgen::wav(Codec::Mulaw, 1, 8000, 8000, 4);
    let caller = "+46704000001";
    let mine: Vec<String> =
        futures_util::future::join_all((0..3).map(|_| s.upload_ok(&rec, &audio, meta(caller))))
            .await;
    let other = s.upload_ok(&rec, &audio, meta("+46704000002")).await;
    ok_json(
        post(
            &po1,
            &s,
            "/api/v1/holds",
            json!({ "recording_id": mine[2], "reason": "police request 2026-55" }),
        )
        .await,
        201,
    )
    .await;

    let req = ok_json(
        post(
            &po1,
            &s,
            "/api/v1/erasures",
            json!({ "caller_number": "0046 70-400 00 01", "reason": "art. 17 request ref 2026-9" }),
        )
        .await,
        202,
    )
    .await;
    assert_eq!(
        (req["recordings"].as_u64(), req["status"].as_str()),
        (Some(3), Some("awaiting_approval"))
    );
    let id = req["id"].as_str().unwrap();
    // The second officer finds it waiting, without the number.
    let pending = ok_json(
        po2.client
            .get(s.url("/api/v1/erasures"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(pending[0]["id"], id);
    assert!(pending[0]["approved_by"].is_null());
    assert!(!pending.to_string().contains("4000001"), "{pending}");
    assert_eq!(
        ids(&nurse, &s, json!({ "caller_number": caller }))
            .await
            .len(),
        3,
        "nothing erased yet"
    );
    // The officer who asked cannot approve; a second one can, once.
    let own = post(
        &po1,
        &s,
        &format!("/api/v1/erasures/{id}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(own.status(), 403);
    let done = ok_json(
        post(
            &po2,
            &s,
            &format!("/api/v1/erasures/{id}/approve"),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (done["erased"].as_u64(), done["held"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        post(
            &po2,
            &s,
            &format!("/api/v1/erasures/{id}/approve"),
            json!({})
        )
        .await
        .status(),
        409
    );
    assert_eq!(
        ids(&nurse, &s, json!({ "caller_number": caller })).await,
        BTreeSet::from([mine[2].clone()])
    );
    assert!(ids(&nurse, &s, json!({})).await.contains(&other));
    // One recording: refused while held, erased once the hold is lifted.
    let held = post(
        &po2,
        &s,
        &format!("/api/v1/recordings/{}/erase", mine[2]),
        json!({ "reason": "art. 17 request ref 2026-9" }),
    )
    .await;
    assert_eq!(held.status(), 409);
    let holds = ok_json(
        po2.client.get(s.url("/api/v1/holds")).send().await.unwrap(),
        200,
    )
    .await;
    let hold = holds[0]["id"].as_str().unwrap();
    assert_eq!(
        post(&po2, &s, &format!("/api/v1/holds/{hold}/lift"), json!({}))
            .await
            .status(),
        204
    );
    let one = ok_json(
        post(
            &po2,
            &s,
            &format!("/api/v1/recordings/{}/erase", mine[2]),
            json!({ "reason": "art. 17 request ref 2026-9" }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(one["erased"].as_u64(), Some(1));
    assert!(
        ids(&nurse, &s, json!({ "caller_number": caller }))
            .await
            .is_empty()
    );
    // The records of processing count it.
    let report = ok_json(
        po1.client
            .get(s.url("/api/v1/tenants/region-a/processing-report"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        (
            report["recordings"].as_u64(),
            report["erased_in_period"].as_u64()
        ),
        (Some(1), Some(3)),
        "{report}"
    );
    assert_eq!(
        report["by_retention_class"][0]["retention_class"],
        "standard"
    );
    // A listener can do none of this.
    assert_eq!(
        post(
            &nurse,
            &s,
            "/api/v1/erasures",
            json!({ "caller_number": caller, "reason": "no reason at all" })
        )
        .await
        .status(),
        403
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn subject_access_archive_holds_exactly_the_callers_calls_and_accesses_and_verifies() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let po = s
        .user(&admin, "po1", "privacy_officer", Some("region-a"))
        .await;
    let nurse = s.user(&admin, "nurse", "listener", Some("region-a")).await;
    let rec = s.token(&admin, "recorder", Some("region-a")).await;
    let caller = "+46705123456";
    let a1 = testgen::wav(Codec::Mulaw, 1, 8000, 8000, 11);
    let a2 = testgen::wav(Codec::Pcm16, 2, 8000, 9000, 12);
    let r1 = s.upload_ok(&rec, &a1, meta(caller)).await;
    let r2 = s.upload_ok(&rec, &a2, meta(caller)).await;
    let _other = s.upload_ok(&rec, &a1, meta("+46705000000")).await;
    let url = nurse.grant(&s, &r1).await;
    assert_eq!(nurse.play(&s.url(&url)).await, a1);
    // Holds and erasure requests by number keep only the keyed hash.
    ok_json(
        post(
            &po,
            &s,
            "/api/v1/holds",
            json!({ "caller_number": caller, "reason": "litigation case 2026-17" }),
        )
        .await,
        201,
    )
    .await;
    ok_json(
        post(
            &po,
            &s,
            "/api/v1/erasures",
            json!({ "caller_number": caller, "reason": "art. 17 request ref 2026-9" }),
        )
        .await,
        202,
    )
    .await;

    let resp = post(
        &po,
        &s,
        "/api/v1/subject-access",
        json!({ "caller_number": caller }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let archive = resp.bytes().await.unwrap().to_vec();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("subject-access.cvsa");
    std::fs::write(&file, &archive).unwrap();
    let body: Value =
        serde_json::from_slice(archive.splitn(3, |b| *b == b'\n').nth(2).unwrap()).unwrap();
    assert_eq!(body["caller_number"], caller);
    let recs = body["recordings"].as_array().unwrap();
    let got: BTreeSet<&str> = recs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(got, BTreeSet::from([r1.as_str(), r2.as_str()]));
    for r in recs {
        let audio = B64.decode(r["audio_base64"].as_str().unwrap()).unwrap();
        assert_eq!(
            audio,
            if r["id"] == r1.as_str() {
                a1.clone()
            } else {
                a2.clone()
            }
        );
    }
    let r1_json = recs.iter().find(|r| r["id"] == r1.as_str()).unwrap();
    let actions: Vec<(&str, &str)> = r1_json["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["actor"].as_str().unwrap(), a["action"].as_str().unwrap()))
        .collect();
    for want in [
        ("user:nurse", "recording.access"),
        ("user:nurse", "recording.play"),
        ("user:po1", "recording.export"),
    ] {
        assert!(actions.contains(&want), "{want:?} missing from {actions:?}");
    }
    let access = r1_json["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "recording.access")
        .unwrap();
    assert!(
        access["purpose"]
            .as_str()
            .unwrap()
            .starts_with("quality_review"),
        "{access}"
    );

    // The signature verifies with the published key, and any change is caught.
    let key = s.cli(&["export", "public-key"]);
    let key = String::from_utf8(key.stdout).unwrap().trim().to_owned();
    let ok = cli(
        s.root(),
        &[],
        &[
            "export",
            "verify",
            file.to_str().unwrap(),
            "--public-key",
            &key,
        ],
    );
    assert!(ok.status.success(), "{ok:?}");
    let mut bad = archive.clone();
    let at = bad.len() - 10;
    bad[at] ^= 0x01;
    std::fs::write(&file, &bad).unwrap();
    let no = cli(
        s.root(),
        &[],
        &[
            "export",
            "verify",
            file.to_str().unwrap(),
            "--public-key",
            &key,
        ],
    );
    assert_eq!(no.status.code(), Some(2), "{no:?}");
    assert!(String::from_utf8_lossy(&no.stdout).contains("altered"));

    // The caller number is nowhere in clear: not in the data directory (database, blobs), not
    // in the log — after upload, search, hold, erasure request and export.
    let _ = ids(&nurse, &s, json!({ "caller_number": caller })).await;
    let stored: Vec<_> = s
        .storage_dirs()
        .iter()
        .flat_map(|d| files_under(d))
        .collect();
    for f in stored.into_iter().chain([s.root().join("server.log")]) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !contains(&bytes, b"46705123456"),
            "caller number in {}",
            f.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn numbers_stored_by_an_ingest_node_become_findable_after_a_retention_run() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let po = s
        .user(&admin, "po1", "privacy_officer", Some("region-a"))
        .await;
    let rec = s.token(&admin, "recorder", Some("region-a")).await;
    // An ingest node holds no master key, so it cannot compute the keyed hash.
    let dir = s.stop();
    let key = dir.path().join("keys/master.key");
    let hidden = dir.path().join("master.key.elsewhere");
    std::fs::rename(&key, &hidden).unwrap();
    let ingest = Server::start_in(dir, &[("CALLVAULT_MODE", "ingest")]);
    let audio = testgen::wav(Codec::Mulaw, 1, 8000, 8000, 5);
    let id = ingest.upload_ok(&rec, &audio, meta("+46706000001")).await;
    let dir = ingest.stop();
    std::fs::rename(&hidden, &key).unwrap();
    let s = Server::start_in(dir, &[]);
    // The sessions live in the database, so the officer is still signed in.
    let by_number = json!({ "caller_number": "+46706000001" });
    assert!(
        ids(&po, &s, by_number.clone()).await.is_empty(),
        "not findable yet"
    );
    let run = retention_run(&s, &["--dry-run"]);
    assert_eq!(
        run["caller_hashes_added"].as_u64(),
        Some(0),
        "a dry run changes nothing"
    );
    let run = retention_run(&s, &[]);
    assert_eq!(run["caller_hashes_added"].as_u64(), Some(1), "{run}");
    assert_eq!(ids(&po, &s, by_number).await, BTreeSet::from([id]));
}
