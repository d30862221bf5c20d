//! The web console in real headless Chromium, against the real server: sign in with TOTP,
//! search, state a purpose, play and seek (the audio element's clock advances and ranged
//! requests reach the server), follow a call still in progress, the auditor sees the access
//! and has no way to play, a listener cannot reach admin pages, an admin sets a retention rule
//! after confirming, and the CSP refuses inline script while the console works.
//!
//! The browser is driven by `tests/e2e/*.mjs` (Node + playwright-core, pointed at Debian's
//! /usr/bin/chromium); this file prepares the deployment and checks the audit record
//! afterwards. Screenshots land in `$CARGO_TARGET_TMPDIR/console-screenshots`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use callvault_media::{Codec, testgen};
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Read at run time: a compiled-in path goes stale when a shared target directory is reused by
/// a checkout elsewhere.
fn e2e_dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo test or nextest"))
        .join("tests/e2e")
}

/// `user:password:base32-secret`, as the scripts take an account.
fn account(u: &User) -> String {
    format!(
        "{}:{}:{}",
        u.username,
        u.password,
        data_encoding::BASE32_NOPAD.encode(&u.totp)
    )
}

/// Runs one browser script against `s`; panics with its output and the server's log if a
/// check failed.
fn browser(s: &Server, script: &str, env: &[(&str, String)]) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: `apt-get install chromium` (see .ci/run)"
    );
    assert!(
        e2e_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: `npm ci --prefix crates/callvault/tests/e2e` (see .ci/run)"
    );
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(e2e_dir().join(script))
        .env("CV_BASE", &s.base)
        .env("CV_CHROMIUM", CHROMIUM)
        .env("CV_SHOTS", &shots)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = s.log();
    let tail: Vec<&str> = log
        .lines()
        .filter(|l| !l.contains(r#""level":"DEBUG""#))
        .rev()
        .take(40)
        .collect();
    assert!(
        out.status.success(),
        "{script} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server log (newest first)\n{}",
        tail.join("\n")
    );
    println!("{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn console_in_headless_chromium() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let nurse = s.user(&admin, "nurse", "listener", Some("region-a")).await;
    let auditor = s.user(&admin, "aud", "auditor", None).await;
    let privacy = s
        .user(&admin, "privacy", "privacy_officer", Some("region-a"))
        .await;
    let recorder = s.token(&admin, "recorder", Some("region-a")).await;
    // 120 s of two-channel 16-bit PCM (3.8 MB): more than Chromium buffers ahead (about 2 MB
    // at this bit rate), so seeking near the end must fetch a new range.
    let audio = testgen::wav(Codec::Pcm16, 2, 8000, 8000 * 120, 3);
    let id = s.upload_ok(&recorder, &audio, meta("+46701234567")).await;
    // Other callers' calls in the same queue: 27 in all, two pages of 25.
    let short = testgen::wav(Codec::Mulaw, 1, 8000, 800, 9);
    for _ in 0..26 {
        s.upload_ok(&recorder, &short, meta("+46709999999")).await;
    }

    let live = LiveFeed::start(&s, &recorder).await;

    browser(
        &s,
        "console.mjs",
        &[
            ("CV_RECORDING", id.clone()),
            ("CV_LIVE", live.id.clone()),
            ("CV_NURSE", account(&nurse)),
            ("CV_AUDITOR", account(&auditor)),
            ("CV_ADMIN", account(&admin)),
            ("CV_PRIVACY", account(&privacy)),
        ],
    );
    let live_id = live.id.clone();
    live.finish(&s, &recorder).await;

    // The retention rule the admin set in the console is the API's rule now.
    let rules = ok_json(
        admin
            .client
            .get(s.url("/api/v1/tenants/region-a/retention-rules"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        rules,
        json!([{ "scope": "tenant", "value": null, "days": 400,
                 "updated_by": "user:admin", "updated_at": rules[0]["updated_at"] }]),
        "{rules:#}"
    );

    // The server's own record agrees with what the browser saw: the nurse stated a purpose and
    // audio was served, including a range that starts past the beginning (after the seek;
    // where Chromium resumes depends on what it had buffered).
    let token = s.token(&admin, "auditor", None).await;
    let entries = s.audit(&token, &format!("target={id}&limit=1000")).await;
    let by = |action: &str| {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["actor"] == "user:nurse")
            .collect::<Vec<_>>()
    };
    let access = by("recording.access");
    assert_eq!(access.len(), 1, "{entries:#?}");
    assert!(
        access[0]["purpose"]
            .as_str()
            .unwrap()
            .starts_with("quality_review"),
        "{access:?}"
    );
    let plays = by("recording.play");
    let starts: Vec<u64> = plays
        .iter()
        .map(|e| {
            let d: Value = serde_json::from_str(e["details"].as_str().unwrap()).unwrap();
            d["range"][0].as_u64().unwrap()
        })
        .collect();
    assert!(
        starts.iter().any(|&s| s > 0),
        "no ranged request after the start reached the server: {starts:?}"
    );
    // The caller report was recorded, and no entry anywhere holds the caller's number.
    assert_eq!(s.audit(&token, "action=audit.caller_report").await.len(), 1);
    let everything = serde_json::to_string(&s.audit(&token, "limit=1000").await).unwrap();
    assert!(
        !everything.contains("701234567"),
        "a caller number reached the audit record"
    );
    // Nobody else heard it: the auditor and the admin never appear as listeners.
    assert!(
        entries
            .iter()
            .filter(|e| e["action"] == "recording.play")
            .all(|e| e["actor"] == "user:nurse")
    );
    // The live call was followed after a purpose, and the change was audited.
    let live_entries = s
        .audit(&token, &format!("target={live_id}&limit=100"))
        .await;
    let followed: Vec<_> = live_entries
        .iter()
        .filter(|e| e["action"] == "recording.play" && e["actor"] == "user:nurse")
        .collect();
    assert!(!followed.is_empty(), "{live_entries:#?}");
    assert!(
        followed.iter().all(|e| e["purpose"]
            .as_str()
            .unwrap()
            .starts_with("clinical_followup")
            && e["details"].as_str().unwrap().contains(r#""live":true"#)),
        "{followed:#?}"
    );
    let set = s.audit(&token, "action=policy.retention.set").await;
    assert_eq!(set.len(), 1, "{set:#?}");
    assert_eq!(set[0]["actor"], "user:admin");
    // The privacy officer's hold on the call, placed and lifted, is in the record too.
    for action in ["hold.create", "hold.lift"] {
        let held = s.audit(&token, &format!("action={action}")).await;
        assert_eq!(held.len(), 1, "{action}: {held:#?}");
        assert_eq!(held[0]["actor"], "user:privacy");
    }
}

/// A recorder keeping a call in progress: 3 s of audio before anyone listens, then one 100 ms
/// chunk every 100 ms (real time) until the browser is done.
struct LiveFeed {
    id: String,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl LiveFeed {
    async fn start(s: &Server, recorder: &str) -> Self {
        let client = s.client();
        let mut open = live::open_body();
        // Another caller and queue than the stored calls, so the search pages stay as they are.
        open["caller_number"] = json!("+46705550123");
        open["queue"] = json!("night-line");
        let call = ok_json(
            client
                .post(s.url("/api/v1/live/calls"))
                .bearer_auth(recorder)
                .json(&open)
                .send()
                .await
                .unwrap(),
            201,
        )
        .await;
        let id = call["id"].as_str().unwrap().to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let (url, token, halt) = (
            s.url(&format!("/api/v1/live/calls/{id}/chunks")),
            recorder.to_owned(),
            stop.clone(),
        );
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut seq = 0;
            // At most ten minutes, should the browser never return.
            while !halt.load(Ordering::Relaxed) && seq < 6000 {
                if seq >= 30 {
                    tick.tick().await;
                }
                let resp = client
                    .put(format!("{url}/{seq}"))
                    .bearer_auth(&token)
                    .body(live::chunk(7, seq, live::FRAME))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200, "chunk {seq}");
                seq += 1;
            }
            seq
        });
        Self { id, stop, task }
    }

    async fn finish(self, s: &Server, recorder: &str) {
        self.stop.store(true, Ordering::Relaxed);
        let chunks = self.task.await.unwrap();
        ok_json(
            s.client()
                .post(s.url(&format!("/api/v1/live/calls/{}/finish", self.id)))
                .bearer_auth(recorder)
                .json(&json!({ "chunks": chunks }))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
    }
}

/// A session that ends while the page is open sends the user to sign-in with a note saying
/// so. The server runs with an idle timeout of a few seconds; the script polls until it bites.
#[tokio::test(flavor = "multi_thread")]
async fn console_says_when_a_session_has_expired() {
    let s = Server::start_in(
        tempfile::tempdir().unwrap(),
        &[("CALLVAULT_SESSION__IDLE_TIMEOUT_SECS", "8")],
    );
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let nurse = s.user(&admin, "nurse", "listener", Some("region-a")).await;
    browser(&s, "expiry.mjs", &[("CV_NURSE", account(&nurse))]);
}
