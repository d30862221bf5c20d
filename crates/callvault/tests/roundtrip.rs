//! Upload → search → access with purpose → playback returns exactly what was uploaded, for every
//! accepted format, whole and by range; nothing readable at rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use callvault_media::{Codec, testgen};
use common::*;
use serde_json::json;
use std::collections::HashSet;

fn formats() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "wav_pcm16_mono",
            testgen::wav(Codec::Pcm16, 1, 8000, 40_000, 1),
        ),
        (
            "wav_pcm16_stereo",
            testgen::wav(Codec::Pcm16, 2, 16_000, 40_000, 2),
        ),
        (
            "wav_mulaw_stereo",
            testgen::wav(Codec::Mulaw, 2, 8000, 80_000, 3),
        ),
        (
            "wav_alaw_mono",
            testgen::wav(Codec::Alaw, 1, 8000, 80_000, 4),
        ),
        ("mp3", testgen::mp3(200, 5)),
        ("ogg_opus", testgen::ogg_opus(300, 2, 6)),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_format_round_trips_whole_and_by_range() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let rec = s.token(&admin, "recorder", Some("region-a")).await;
    let nurse = s
        .user(&admin, "nurse.anna", "listener", Some("region-a"))
        .await;

    for (i, (name, audio)) in formats().into_iter().enumerate() {
        let caller = format!("+4670123450{i}");
        let id = s.upload_ok(&rec, &audio, meta(&caller)).await;

        // Found by caller number (any notation), and the view decrypts the number.
        let page = ok_json(
            nurse
                .client
                .post(s.url("/api/v1/recordings/search"))
                .json(&json!({ "caller_number": format!("0046 70 123 450 {i}") }))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        let ids: Vec<_> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [id.as_str()], "{name}: search by caller");
        let detail = ok_json(
            nurse
                .client
                .get(s.url(&format!("/api/v1/recordings/{id}")))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        assert_eq!(detail["caller_number"], caller.as_str());

        let url = s.url(&nurse.grant(&s, &id).await);
        let whole = nurse.client.get(&url).send().await.unwrap();
        assert_eq!(whole.status(), 200, "{name}");
        assert_eq!(whole.headers()["accept-ranges"], "bytes");
        assert_eq!(whole.headers()["cache-control"], "no-store");
        assert_eq!(
            whole.bytes().await.unwrap().as_ref(),
            audio.as_slice(),
            "{name}: whole file"
        );

        let n = audio.len();
        for (a, b) in [
            (0, 99),
            (n / 2, n / 2 + 70_000),
            (n - 10, n - 1),
            (65_530, 65_545),
        ]
        .into_iter()
        .filter(|(a, _)| *a < n)
        {
            let b = b.min(n - 1);
            let r = nurse
                .client
                .get(&url)
                .header("range", format!("bytes={a}-{b}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 206, "{name} {a}-{b}");
            assert_eq!(
                r.headers()["content-range"],
                format!("bytes {a}-{b}/{n}").as_str()
            );
            assert_eq!(
                r.bytes().await.unwrap().as_ref(),
                &audio[a..=b],
                "{name}: range {a}-{b}"
            );
        }
        let tail = nurse
            .client
            .get(&url)
            .header("range", "bytes=-5")
            .send()
            .await
            .unwrap();
        assert_eq!(tail.bytes().await.unwrap().as_ref(), &audio[n - 5..]);
        let bad = nurse
            .client
            .get(&url)
            .header("range", format!("bytes={n}-"))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 416);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_media_is_refused_with_a_clear_error() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let rec = s.token(&admin, "recorder", Some("region-a")).await;
    let wav = testgen::wav(Codec::Pcm16, 1, 8000, 8000, 9);

    let cases: Vec<(&str, Vec<u8>, serde_json::Value)> = vec![
        (
            "not audio",
            b"hello, this is not a recording at all".to_vec(),
            meta("+46701234567"),
        ),
        (
            "truncated wav",
            wav[..wav.len() - 3].to_vec(),
            meta("+46701234567"),
        ),
        ("claimed mp3", wav.clone(), {
            let mut m = meta("+46701234567");
            m["format"] = json!("mp3");
            m
        }),
    ];
    for (what, audio, m) in cases {
        let v = ok_json(s.upload(&rec, &audio, m).await, 422).await;
        assert_eq!(v["error"], "unsupported_media", "{what}");
        assert!(v["message"].as_str().unwrap().len() > 20, "{what}: {v}");
    }
    let mut m = meta("0701234567");
    let v = ok_json(s.upload(&rec, &wav, m.clone()).await, 400).await;
    assert!(
        v["message"].as_str().unwrap().contains("country code"),
        "{v}"
    );
    m["caller_number"] = json!("+46701234567");
    m["started_at"] = json!("yesterday");
    let v = ok_json(s.upload(&rec, &wav, m).await, 400).await;
    assert!(v["message"].as_str().unwrap().contains("RFC 3339"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_readable_at_rest() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-skane").await;
    let rec = s.token(&admin, "recorder", Some("region-skane")).await;
    let caller = "+46701234567";
    let mut audios = Vec::new();
    for seed in 0..3 {
        let audio = testgen::wav(Codec::Mulaw, 2, 8000, 40_000, 100 + seed);
        s.upload_ok(&rec, &audio, meta(caller)).await;
        audios.push(audio);
    }
    let mut windows = HashSet::new();
    for a in &audios {
        for w in a.windows(32) {
            windows.insert(w.to_vec());
        }
    }
    // Logs carry no number, no secret, no token.
    let log = s.log();
    assert!(
        log.contains("callvault serving"),
        "the log is being captured: {log}"
    );
    for secret in [
        caller,
        "701234567",
        rec.as_str(),
        s.admin_password.as_deref().unwrap(),
        admin.password.as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "the log contains a secret or a number"
        );
    }
    // Every file where the deployment keeps data: the data dir, and on the scale-out backends
    // the PostgreSQL cluster and the Garage nodes too.
    let mut files = Vec::new();
    for dir in s.storage_dirs() {
        files.extend(files_under(&dir).into_iter().map(|f| (dir.clone(), f)));
    }
    assert!(
        files.len() >= 4,
        "expected a database and blobs, found {files:?}"
    );
    for (dir, f) in &files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        }; // sockets, files removed meanwhile
        assert!(
            !bytes.windows(32).any(|w| windows.contains(w)),
            "{} holds plaintext audio",
            f.display()
        );
        for needle in [caller, "701234567"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds the caller number",
                f.display()
            );
        }
        // Names: no tenant, date or number. Random hex names (our blobs, a store's hashes)
        // can contain any digits by chance, so digit checks skip hex-only components.
        for part in f
            .strip_prefix(dir)
            .unwrap()
            .iter()
            .map(|p| p.to_string_lossy().to_string())
        {
            let hexish = part
                .trim_start_matches('b')
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == '.');
            let bad: &[&str] = if hexish {
                &["region", "skane", "rec_"]
            } else {
                &["region", "skane", "rec_", "2026", "4670"]
            };
            for b in bad {
                assert!(!part.contains(b), "file name {} reveals {b}", f.display());
            }
        }
    }
}
