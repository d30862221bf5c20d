//! Live-ingest helpers shared by the live and scale-out tests: a recorder speaking the HTTPS
//! protocol, deterministic chunk audio, and the expected recording.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::{Server, User, ok_json};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// µ-law stereo 8 kHz, 100 ms chunks: 1600 bytes.
pub const FRAME: usize = 1600;
/// Header length of a µ-law WAV as callvault writes it (fmt with cbSize, fact, data).
pub const WAV_HEADER: usize = 58;

pub fn open_body() -> Value {
    json!({
        "started_at": "2026-11-28T09:00:00Z",
        "direction": "inbound",
        "caller_number": "+46701234567",
        "queue": "child-health",
        "codec": "mulaw",
        "sample_rate": 8000,
        "channels": 2,
        "frame_ms": 100,
    })
}

/// Deterministic noise for chunk `seq` of call `call`, never 0xFF (µ-law silence), so a gap
/// and a chunk can be told apart.
pub fn chunk(call: u64, seq: u64, len: usize) -> Vec<u8> {
    let mut x = call.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ seq.wrapping_add(1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8) % 0xFF
        })
        .collect()
}

pub struct Recorder<'a> {
    pub s: &'a Server,
    pub client: reqwest::Client,
    pub token: String,
}

impl<'a> Recorder<'a> {
    pub fn new(s: &'a Server, token: &str) -> Self {
        Self {
            s,
            client: s.client(),
            token: token.to_owned(),
        }
    }

    pub async fn open(&self) -> String {
        let v = ok_json(
            self.client
                .post(self.s.url("/api/v1/live/calls"))
                .bearer_auth(&self.token)
                .json(&open_body())
                .send()
                .await
                .unwrap(),
            201,
        )
        .await;
        assert_eq!(v["frame_bytes"], FRAME);
        v["id"].as_str().unwrap().to_owned()
    }

    pub async fn put(&self, id: &str, seq: u64, audio: Vec<u8>) -> reqwest::Response {
        self.client
            .put(self.s.url(&format!("/api/v1/live/calls/{id}/chunks/{seq}")))
            .bearer_auth(&self.token)
            .body(audio)
            .send()
            .await
            .unwrap()
    }

    pub async fn put_ok(&self, id: &str, seq: u64, audio: Vec<u8>) -> bool {
        let v = ok_json(self.put(id, seq, audio).await, 200).await;
        assert_eq!(v["seq"], seq);
        v["duplicate"].as_bool().unwrap()
    }

    /// Sends call `n`'s chunks `seqs` (its deterministic audio, full frames), checks that each
    /// is acknowledged as new, and adds them to `sent`.
    pub async fn send(
        &self,
        id: &str,
        n: u64,
        seqs: impl IntoIterator<Item = u64>,
        sent: &mut BTreeMap<u64, Vec<u8>>,
    ) {
        for seq in seqs {
            let c = chunk(n, seq, FRAME);
            assert!(!self.put_ok(id, seq, c.clone()).await, "chunk {seq} is new");
            sent.insert(seq, c);
        }
    }

    pub async fn status(&self, id: &str) -> Value {
        ok_json(
            self.client
                .get(self.s.url(&format!("/api/v1/live/calls/{id}")))
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap(),
            200,
        )
        .await
    }

    /// Waits (at most a minute) until the server has stored the call as a recording, and
    /// returns its status then.
    pub async fn wait_stored(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let st = self.status(id).await;
            if st["state"] == "stored" {
                return st;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{id} was not stored: {st}\n{}",
                self.s.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Finishes the call, which answers `finished`, and waits until it is stored; returns the
    /// finish answer.
    pub async fn finish_stored(&self, id: &str, chunks: Option<u64>) -> Value {
        let done = self.finish(id, chunks).await;
        assert_eq!(done["state"], "finished", "{done}");
        self.wait_stored(id).await;
        done
    }

    pub async fn finish(&self, id: &str, chunks: Option<u64>) -> Value {
        ok_json(
            self.client
                .post(self.s.url(&format!("/api/v1/live/calls/{id}/finish")))
                .bearer_auth(&self.token)
                .json(&json!({ "chunks": chunks }))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await
    }
}

/// The stored recording's audio (after the WAV header) and its live outcome.
pub async fn played(s: &Server, listener: &User, id: &str) -> (Vec<u8>, Value) {
    let detail = ok_json(
        listener
            .client
            .get(s.url(&format!("/api/v1/recordings/{id}")))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let url = listener.grant(s, id).await;
    let wav = listener.play(&s.url(&url)).await;
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(detail["container"], "wav");
    assert_eq!(detail["codec"], "mulaw");
    (wav[WAV_HEADER..].to_vec(), detail["live"].clone())
}

/// What the recording must hold: each chunk at its place, silence for the rest.
pub fn expected(chunks: &BTreeMap<u64, Vec<u8>>, total: u64) -> Vec<u8> {
    let mut out = vec![0xFF; total as usize * FRAME];
    for (seq, c) in chunks {
        let at = *seq as usize * FRAME;
        out[at..at + c.len()].copy_from_slice(c);
    }
    if let Some(last) = chunks.get(&(total - 1)) {
        out.truncate((total as usize - 1) * FRAME + last.len());
    }
    out
}
