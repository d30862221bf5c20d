#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Live ingest over HTTPS and WebSocket, black-box: a call streamed, interrupted, resumed and
//! finished plays back sample-exact with its gap marked; duplicates and out-of-order chunks;
//! idle finalisation; following a call in progress; bad input; and the crash test (SIGKILL
//! mid-stream with 100 calls, restart, nothing acknowledged lost, nothing plaintext at rest).

mod common;

use common::live::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

/// A tenant with a recorder token and a listener; also the admin who made them.
async fn setup(s: &Server) -> (String, User, User) {
    let admin = s.admin().await;
    s.tenant(&admin, "region-skane").await;
    let token = s.token(&admin, "recorder", Some("region-skane")).await;
    let nurse = s
        .user(&admin, "nurse", "listener", Some("region-skane"))
        .await;
    (token, nurse, admin)
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_call_resumes_and_plays_back_sample_exact_with_the_gap_marked() {
    let s = Server::start();
    let (token, nurse, _) = setup(&s).await;
    let r = Recorder::new(&s, &token);
    let id = r.open().await;
    let mut sent = BTreeMap::new();
    r.send(&id, 1, 0..10, &mut sent).await;
    // The connection drops; a new one asks where to resume.
    let r = Recorder::new(&s, &token);
    let st = r.status(&id).await;
    assert_eq!(
        (st["state"].as_str(), st["acked_through"].as_u64()),
        (Some("open"), Some(10))
    );
    assert_eq!(st["missing"], json!([]));
    // Resume with 13 lost on the way, 15 before 14, a duplicate of 12 with other bytes, and
    // a short last chunk.
    r.send(&id, 1, [10, 11, 12, 15, 14, 16, 17, 18], &mut sent)
        .await;
    assert!(
        r.put_ok(&id, 12, chunk(99, 12, FRAME)).await,
        "a duplicate is acknowledged as such"
    );
    let last = chunk(1, 19, 400);
    r.put_ok(&id, 19, last.clone()).await;
    sent.insert(19, last);
    let st = r.status(&id).await;
    assert_eq!(st["acked_through"], 13);
    assert_eq!(st["missing"], json!([[13, 13]]));
    let done = r.finish_stored(&id, Some(20)).await;
    assert_eq!(done["missing"], json!([[13, 13]]));

    let (audio, live) = played(&s, &nurse, &id).await;
    assert_eq!(
        live,
        json!({ "complete": true, "gaps": [[13, 13]], "paused": [], "frame_bytes": FRAME })
    );
    assert_eq!(audio.len(), 19 * FRAME + 400);
    assert!(
        audio == expected(&sent, 20),
        "the recording is sample-exact"
    );
    // Finished means finished.
    let late = r.put(&id, 20, chunk(1, 20, FRAME)).await;
    assert_eq!(late.status(), 409);
    assert_eq!(late.json::<Value>().await.unwrap()["error"], "call_closed");
}

/// Connects a WebSocket to the live stream of `id` over TLS, trusting the server's certificate.
async fn websocket(
    s: &Server,
    token: &str,
    id: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls_pki_types::pem::PemObject;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let _ = s.client(); // installs the process's rustls provider
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            rustls_pki_types::CertificateDer::from_pem_file(s.data().join("tls/cert.pem")).unwrap(),
        )
        .unwrap();
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let addr = s.base.trim_start_matches("https://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap();
    let mut req = format!("wss://{addr}/api/v1/live/calls/{id}/stream")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::client_async(req, tls).await.unwrap();
    ws
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_stream_takes_duplicates_and_out_of_order_chunks() {
    use tokio_tungstenite::tungstenite::Message;
    let s = Server::start();
    let (token, nurse, admin) = setup(&s).await;
    let id = Recorder::new(&s, &token).open().await;
    let mut ws = websocket(&s, &token, &id).await;
    let mut sent = BTreeMap::new();
    let mut answers = Vec::new();
    for seq in [0u64, 2, 1, 1, 4, 3, 5, 100_000] {
        let c = chunk(2, seq, FRAME);
        let mut msg = seq.to_be_bytes().to_vec();
        msg.extend_from_slice(&c);
        ws.send(Message::Binary(msg.into())).await.unwrap();
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("no answer")
        };
        answers.push(serde_json::from_str::<Value>(t.as_str()).unwrap());
        sent.entry(seq).or_insert(c);
    }
    sent.remove(&100_000);
    assert_eq!(answers[3], json!({ "ack": 1, "duplicate": true }));
    assert_eq!(answers[6], json!({ "ack": 5, "duplicate": false }));
    assert_eq!(answers[7]["error"], "out_of_window", "{}", answers[7]);
    ws.send(Message::Text(r#"{"finish":{"chunks":6}}"#.into()))
        .await
        .unwrap();
    let Some(Ok(Message::Text(t))) = ws.next().await else {
        panic!("no answer to finish")
    };
    let done: Value = serde_json::from_str(t.as_str()).unwrap();
    assert_eq!(done["state"], "finished", "{done}");
    Recorder::new(&s, &token).wait_stored(&id).await;
    let (audio, live) = played(&s, &nurse, &id).await;
    assert_eq!(live["gaps"], json!([]));
    assert!(audio == expected(&sent, 6));
    // Every acknowledgement waited for a group commit, and each was timed.
    let metrics = body_text(admin.client.get(s.url("/metrics"))).await;
    let buckets: Vec<u64> = metrics
        .lines()
        .filter(|l| l.starts_with("callvault_live_group_commit_seconds_bucket"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    let count = metric(&metrics, "callvault_live_group_commit_seconds_count").unwrap();
    assert_eq!(buckets.len(), 11, "{metrics}");
    assert!(buckets.is_sorted(), "cumulative buckets: {metrics}");
    assert_eq!(*buckets.last().unwrap(), count);
    assert!(buckets[10] >= 6, "six chunks stored: {metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_recorder_is_finalised_as_incomplete() {
    let s = Server::start_in(
        tempfile::tempdir().unwrap(),
        &[("CALLVAULT_LIVE__IDLE_TIMEOUT_SECS", "1")],
    );
    let (token, nurse, _) = setup(&s).await;
    let r = Recorder::new(&s, &token);
    let id = r.open().await;
    let mut sent = BTreeMap::new();
    r.send(&id, 3, [0, 1, 3], &mut sent).await;
    // Finalised as incomplete once idle, then stored.
    Recorder::new(&s, &token).wait_stored(&id).await;
    let (audio, live) = played(&s, &nurse, &id).await;
    assert_eq!(
        live,
        json!({ "complete": false, "gaps": [[2, 2]], "paused": [], "frame_bytes": FRAME })
    );
    assert!(
        audio == expected(&sent, 4),
        "playable up to the last acknowledged chunk"
    );
    let late = r.put(&id, 4, chunk(3, 4, FRAME)).await;
    assert_eq!(late.status(), 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listener_follows_a_call_in_progress() {
    let s = Server::start();
    let (token, nurse, _) = setup(&s).await;
    let r = Recorder::new(&s, &token);
    let id = r.open().await;
    let mut sent = BTreeMap::new();
    r.send(&id, 4, 0..5, &mut sent).await;
    let url = nurse.grant(&s, &id).await;
    let resp = nurse.client.get(s.url(&url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut resp = resp;
    let mut got = Vec::new();
    while got.len() < WAV_HEADER + 5 * FRAME {
        got.extend_from_slice(&resp.chunk().await.unwrap().unwrap());
    }
    assert_eq!(&got[WAV_HEADER..], &expected(&sent, 5)[..]);
    // The call goes on; the listener hears it as it is acknowledged.
    r.send(&id, 4, 5..9, &mut sent).await;
    while got.len() < WAV_HEADER + 9 * FRAME {
        got.extend_from_slice(&resp.chunk().await.unwrap().unwrap());
    }
    let last = chunk(4, 9, 800);
    r.put_ok(&id, 9, last.clone()).await;
    sent.insert(9, last);
    r.finish(&id, None).await;
    while let Some(piece) = resp.chunk().await.unwrap() {
        got.extend_from_slice(&piece);
    }
    assert!(
        got[WAV_HEADER..] == expected(&sent, 10),
        "the follower heard the whole call"
    );
}

/// Calls ending together: every finish answers at once with `finished`, and the assembler,
/// on its own thread at a lower CPU priority than the threads that acknowledge chunks, stores
/// each one sample-exact.
#[tokio::test(flavor = "multi_thread")]
async fn calls_ending_together_are_stored_behind_their_finishes_at_lower_priority() {
    let s = Server::start();
    let (token, nurse, _) = setup(&s).await;
    let r = Recorder::new(&s, &token);
    let mut calls = Vec::new();
    for n in 0..24u64 {
        let id = r.open().await;
        let mut sent = BTreeMap::new();
        r.send(&id, 10 + n, 0..3, &mut sent).await;
        calls.push((id, sent));
    }
    let answers =
        futures_util::future::join_all(calls.iter().map(|(id, _)| r.finish(id, None))).await;
    for done in &answers {
        assert_eq!(done["state"], "finished", "{done}");
        assert_eq!(done["missing"], json!([]), "{done}");
    }
    for (id, sent) in &calls {
        r.wait_stored(id).await;
        let (audio, live) = played(&s, &nurse, id).await;
        assert_eq!(live["complete"], true);
        assert!(audio == expected(sent, 3), "{id} plays what was sent");
    }
    let nice = |stat: &str| -> i64 {
        // Field 19 of /proc/…/stat, counting the fields after the command name's `)` from 3.
        stat.rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .nth(16)
            .unwrap()
            .parse()
            .unwrap()
    };
    let pid = s.pid();
    let server_nice = nice(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap());
    let assembly_nice: Vec<i64> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|t| t.unwrap().path())
        .filter(|t| std::fs::read_to_string(t.join("comm")).unwrap().trim() == "live-assembly")
        .map(|t| nice(&std::fs::read_to_string(t.join("stat")).unwrap()))
        .collect();
    assert_eq!(
        assembly_nice,
        [(server_nice + 10).min(19)],
        "one assembly thread, nicer than the server"
    );
}

/// A call that cannot be stored (here: its journal key damaged in the database) stays
/// `finished` in the journal with everything acknowledged, is counted and logged, and holds up
/// no other call; once repaired, it is stored on a later attempt.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_cannot_be_stored_waits_in_the_journal_and_holds_up_no_other() {
    let s = Server::start();
    let (token, nurse, admin) = setup(&s).await;
    let r = Recorder::new(&s, &token);
    let bad = r.open().await;
    let mut sent = BTreeMap::new();
    r.send(&bad, 40, 0..3, &mut sent).await;
    let db = rusqlite::Connection::open(s.data().join("metadata.sqlite")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let wrapped: Vec<u8> = db
        .query_row(
            "SELECT wrapped FROM live_keys WHERE call = ?1",
            [&bad],
            |row| row.get(0),
        )
        .unwrap();
    let damage = |bytes: &[u8]| {
        let n = db
            .execute(
                "UPDATE live_keys SET wrapped = ?1 WHERE call = ?2",
                (bytes, &bad),
            )
            .unwrap();
        assert_eq!(n, 1);
    };
    damage(b"not an age file");
    assert_eq!(r.finish(&bad, None).await["state"], "finished");
    // Calls finished after it are stored (the assembler tried the damaged one first: it is
    // older).
    for n in 0..3u64 {
        let id = r.open().await;
        let mut sent = BTreeMap::new();
        r.send(&id, 41 + n, [0], &mut sent).await;
        r.finish_stored(&id, None).await;
        let (audio, _) = played(&s, &nurse, &id).await;
        assert!(audio == expected(&sent, 1));
    }
    let st = r.status(&bad).await;
    assert_eq!(st["state"], "finished", "{st}");
    assert_eq!(st["acked_through"], 3, "{st}");
    let metrics = body_text(admin.client.get(s.url("/metrics"))).await;
    let failures = metric(&metrics, "callvault_live_assembly_failures_total").unwrap();
    assert!(failures >= 1, "{metrics}");
    assert!(
        s.log()
            .lines()
            .any(|l| l.contains("storing a live call failed") && l.contains(&bad)),
        "{}",
        s.log()
    );
    // Repaired, it is stored on a later attempt, whole.
    damage(&wrapped);
    r.wait_stored(&bad).await;
    let (audio, live) = played(&s, &nurse, &bad).await;
    assert_eq!(live["complete"], true);
    assert!(audio == expected(&sent, 3));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_key_that_does_not_open_names_its_cause_in_the_log() {
    // Before the domain errors, assembly turned this into "journal: … details in the log" and
    // logged no detail at all.
    let s = Server::start();
    let (token, _, _) = setup(&s).await;
    let r = Recorder::new(&s, &token);
    let id = r.open().await;
    let mut sent = BTreeMap::new();
    r.send(&id, 40, 0..2, &mut sent).await;
    let db = rusqlite::Connection::open(s.data().join("metadata.sqlite")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let n = db
        .execute(
            "UPDATE tenant_keys SET identity_sealed = ?1",
            [b"not a sealed identity".as_slice()],
        )
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(r.finish(&id, None).await["state"], "finished");
    wait_until(
        || {
            s.log().lines().any(|l| {
                l.contains("storing a live call failed")
                    && l.contains(&id)
                    && l.contains("opening the identity of tenant `region-skane` (key 1)")
            })
        },
        "the assembly failure and its cause in the log",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_error_and_harms_no_other_call() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    s.tenant(&admin, "region-b").await;
    let token_a = s.token(&admin, "recorder", Some("region-a")).await;
    let token_b = s.token(&admin, "recorder", Some("region-b")).await;
    let a = Recorder::new(&s, &token_a);
    let b = Recorder::new(&s, &token_b);
    let id = a.open().await;
    let other = a.open().await;
    a.put_ok(&other, 0, chunk(5, 0, FRAME)).await;

    let mut wrong = open_body();
    wrong["codec"] = json!("opus");
    let resp = a
        .client
        .post(s.url("/api/v1/live/calls"))
        .bearer_auth(&token_a)
        .json(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let v: Value = resp.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("mulaw"), "{v}");
    let mut rate = open_body();
    rate["sample_rate"] = json!(44100);
    let resp = a
        .client
        .post(s.url("/api/v1/live/calls"))
        .bearer_auth(&token_a)
        .json(&rate)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);

    let check = async |resp: reqwest::Response, status: u16, code: &str| {
        assert_eq!(resp.status(), status);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"], code, "{v}");
        assert!(!v["message"].as_str().unwrap().is_empty());
    };
    check(
        a.put(&id, 0, vec![1; FRAME + 2]).await,
        413,
        "chunk_too_large",
    )
    .await;
    check(a.put(&id, 0, vec![1; 3]).await, 400, "bad_request").await;
    check(
        a.put(&id, 10_000, chunk(5, 1, FRAME)).await,
        409,
        "out_of_window",
    )
    .await;
    check(
        a.put(&id, 5_000_000, chunk(5, 1, FRAME)).await,
        409,
        "call_too_long",
    )
    .await;
    let unknown = "rec_00000000000000000000000000000000";
    check(
        a.put(unknown, 0, chunk(5, 1, FRAME)).await,
        404,
        "not_found",
    )
    .await;
    // Another tenant's recorder sees nothing of the call.
    check(b.put(&id, 0, chunk(5, 1, FRAME)).await, 404, "not_found").await;
    let resp = b
        .client
        .get(s.url(&format!("/api/v1/live/calls/{id}")))
        .bearer_auth(&token_b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // A recorder cannot read back, live or stored.
    for path in [
        format!("/api/v1/recordings/{id}"),
        format!("/api/v1/recordings/{other}"),
    ] {
        let resp = a
            .client
            .get(s.url(&path))
            .bearer_auth(&token_a)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{path}");
    }
    // After all that, both calls still work.
    a.put_ok(&id, 0, chunk(5, 0, FRAME)).await;
    a.put_ok(&other, 1, chunk(5, 1, FRAME)).await;
    a.finish(&id, None).await;
    check(a.put(&id, 1, chunk(5, 1, FRAME)).await, 409, "call_closed").await;
    a.finish_stored(&other, None).await;
}

/// The crash test: 100 calls stream concurrently; the server is killed with SIGKILL mid-stream
/// and restarted. Every acknowledged chunk is present and decrypts, what the server holds is
/// exactly what was sent, half the calls resume and finish complete, the rest are finalised as
/// incomplete, and no plaintext audio is anywhere at rest.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_stream_loses_no_acknowledged_chunk() {
    const CALLS: u64 = 100;
    const TOTAL: u64 = 30;
    let s = Server::start();
    let (token, nurse, _) = setup(&s).await;
    let r = Recorder::new(&s, &token);
    let mut ids = Vec::new();
    for _ in 0..CALLS {
        ids.push(r.open().await);
    }
    // Acknowledged chunks per call, as the recorder saw them.
    let acked: Arc<Mutex<Vec<HashSet<u64>>>> =
        Arc::new(Mutex::new(vec![HashSet::new(); CALLS as usize]));
    let mut tasks = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let (client, url, token, acked) =
            (s.client(), s.base.clone(), token.clone(), acked.clone());
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 0..TOTAL {
                let resp = client
                    .put(format!("{url}/api/v1/live/calls/{id}/chunks/{seq}"))
                    .bearer_auth(&token)
                    .body(chunk(n as u64, seq, FRAME))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 200 => {
                        acked.lock().unwrap()[n].insert(seq);
                    }
                    _ => return,
                }
                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            }
        }));
    }
    // Kill once every call has some acknowledged audio, well before any could finish.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while acked.lock().unwrap().iter().any(|a| a.len() < 3) {
        assert!(std::time::Instant::now() < deadline, "calls did not start");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let dir = s.stop(); // SIGKILL
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.iter().filter(|a| a.len() < TOTAL as usize).count() >= CALLS as usize / 2,
        "killed mid-stream"
    );

    // Long enough for the recorders of the even calls to come back; the odd ones never do.
    let s = Server::start_in(dir, &[("CALLVAULT_LIVE__IDLE_TIMEOUT_SECS", "20")]);
    let r = Recorder::new(&s, &token);
    let mut finished = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let st = r.status(id).await;
        assert_eq!(st["state"], "open", "call {n} after the restart");
        let newest = st["newest"].as_u64().unwrap();
        let missing: HashSet<u64> = st["missing"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|m| m[0].as_u64().unwrap()..=m[1].as_u64().unwrap())
            .collect();
        let present: HashSet<u64> = (0..=newest).filter(|s| !missing.contains(s)).collect();
        assert!(
            acked[n].is_subset(&present),
            "call {n}: an acknowledged chunk is missing after the crash"
        );
        finished.push((n, id.clone(), present, n % 2 == 0));
    }
    // The even calls' recorders come back together: each sends what the server does not
    // have, then finishes.
    let resumes = finished.iter().filter(|f| f.3).map(|(n, id, present, _)| {
        let r = &r;
        async move {
            for seq in (0..TOTAL).filter(|s| !present.contains(s)) {
                r.put_ok(id, seq, chunk(*n as u64, seq, FRAME)).await;
            }
            r.finish_stored(id, Some(TOTAL)).await;
        }
    });
    futures_util::future::join_all(resumes).await;
    // The rest are finalised as incomplete once idle.
    for (_, id, _, _) in finished.iter().filter(|f| !f.3) {
        r.wait_stored(id).await;
    }
    let mut all_sent = Vec::new();
    for (n, id, present, resumed) in &finished {
        let n = *n as u64;
        let (audio, live) = played(&s, &nurse, id).await;
        let held: BTreeMap<u64, Vec<u8>> = if *resumed {
            (0..TOTAL).map(|q| (q, chunk(n, q, FRAME))).collect()
        } else {
            present.iter().map(|&q| (q, chunk(n, q, FRAME))).collect()
        };
        let total = if *resumed {
            TOTAL
        } else {
            held.keys().max().unwrap() + 1
        };
        assert_eq!(live["complete"], *resumed, "call {n}: {live}");
        assert!(
            audio == expected(&held, total),
            "call {n}: not what was sent"
        );
        all_sent.extend(held.into_values());
    }
    // Nothing readable at rest: no 32-byte window of any sent chunk in any file.
    let mut windows = HashSet::new();
    for c in &all_sent {
        for w in c.windows(32).step_by(8) {
            windows.insert(w.to_vec());
        }
    }
    for dir in s.storage_dirs() {
        for f in files_under(&dir) {
            let Ok(bytes) = std::fs::read(&f) else {
                continue;
            };
            assert!(
                !bytes.windows(32).any(|w| windows.contains(w)),
                "{} holds plaintext audio",
                f.display()
            );
        }
    }
}
