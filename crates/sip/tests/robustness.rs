//! The stable-toolchain half of fuzzing: every file of the cargo-fuzz seed corpora
//! (`fuzz/corpus/`), truncations of it, and thousands of deterministic byte mutations go
//! through the parser its target fuzzes. (A fuzzing run grows the corpus by hundreds of
//! files; those stay out of git, and this test would slow down with them in a debug build.) Passing means no
//! panic and no hang; the libFuzzer targets in `fuzz/` explore further on nightly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use callvault_sip::metadata::Metadata;
use callvault_sip::sdp::Session;
use callvault_sip::{message, multipart, rtp, srtp};

fn sip(data: &[u8]) {
    let _ = message::frame_len(data);
    if let Ok(msg) = message::Message::parse(data) {
        let _ = msg.cseq();
        let _ = message::Message::parse(&msg.to_bytes());
        let _ = multipart::parts(msg.header("Content-Type").unwrap_or_default(), &msg.body);
    }
}

fn sdp(data: &[u8]) {
    if let Ok(session) = Session::parse(data) {
        for m in &session.media {
            let _ = m.audio_codec();
        }
    }
}

fn metadata(data: &[u8]) {
    if let Ok(meta) = Metadata::parse(data) {
        let mut merged = meta.clone();
        merged.merge(meta);
        let _ = merged.sender_of_label("1");
    }
}

fn rtp_packet(data: &[u8]) {
    let _ = rtp::parse(data);
    let _ = srtp::Context::new(&[7; srtp::MASTER_LEN]).unprotect(data);
}

/// xorshift64: reproducible mutations without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn exercise(target: &str, check: fn(&[u8])) {
    // Read at run time: a compiled-in path goes stale when a shared target directory is reused
    // by a checkout elsewhere.
    let dir = format!(
        "{}/../../fuzz/corpus/{target}",
        std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo test or nextest")
    );
    let mut seeds = 0;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let Ok(entry) = entry else { continue };
        let Ok(seed) = std::fs::read(entry.path()) else {
            continue;
        };
        seeds += 1;
        check(&seed);
        for len in 0..seed.len() {
            check(&seed[..len]);
        }
        for _ in 0..2_000 {
            let mut m = seed.clone();
            for _ in 0..1 + rng.next() % 4 {
                if m.is_empty() {
                    break;
                }
                let at = (rng.next() % m.len() as u64) as usize;
                match rng.next() % 3 {
                    0 => m[at] = rng.next() as u8,
                    1 => {
                        m.remove(at);
                    }
                    _ => {
                        // Structural bytes are where parsers go wrong.
                        const STRUCTURAL: &[u8] = b"<>/=:;\r\n \"&|-0";
                        let b = STRUCTURAL[(rng.next() % STRUCTURAL.len() as u64) as usize];
                        m.insert(at, b);
                    }
                }
            }
            check(&m);
        }
    }
    assert!(seeds > 0, "no corpus in {dir}");
}

#[test]
fn sip_messages_never_panic() {
    exercise("sip_message", sip);
}

#[test]
fn sdp_never_panics() {
    exercise("sdp", sdp);
}

#[test]
fn metadata_never_panics() {
    exercise("metadata", metadata);
}

#[test]
fn rtp_never_panics() {
    exercise("rtp", rtp_packet);
}
