//! Prints how fast the verifier streams a large record:
//! `cargo run --release -p callvault-audit --example verify_speed [entries]`.

use std::time::Instant;

use callvault_audit::{Checkpoint, Entry, GENESIS, StoredEntry, Verifier, chain_hash};
use ed25519_dalek::SigningKey;
use time::OffsetDateTime;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let key = SigningKey::from_bytes(&[1; 32]);
    let mut stored = StoredEntry {
        seq: 0,
        entry: Entry {
            time: OffsetDateTime::UNIX_EPOCH,
            actor: "user:alice".into(),
            tenant: Some("acme".into()),
            action: "recording.play".into(),
            target: Some("rec_0000000000000001".into()),
            purpose: Some("quality review".into()),
            result: "ok".into(),
            client: Some("192.0.2.7".into()),
            details: Some(r#"{"bytes":123456}"#.into()),
        },
        hash: GENESIS,
    };

    // Checkpoints every 1000 entries, in the database and the sink alike.
    let start = Instant::now();
    let mut checkpoints = Vec::new();
    let mut head = GENESIS;
    for seq in 1..=n {
        head = chain_hash(&head, seq, &stored.entry);
        if seq % 1000 == 0 {
            checkpoints.push(Checkpoint::sign(&key, seq, head, stored.entry.time));
        }
    }
    println!("chained and signed {n} entries in {:?}", start.elapsed());

    let start = Instant::now();
    let mut v = Verifier::new(key.verifying_key(), checkpoints.clone(), checkpoints);
    let mut prev = GENESIS;
    for seq in 1..=n {
        stored.seq = seq;
        stored.hash = chain_hash(&prev, seq, &stored.entry);
        prev = stored.hash;
        if let Err(f) = v.push(&stored) {
            eprintln!("unexpected finding: {f}");
            std::process::exit(1);
        }
    }
    match v.finish() {
        Ok(r) => println!(
            "verified {} entries, {} + {} checkpoints in {:?} (includes hashing once more to build the input)",
            r.entries,
            r.checkpoints,
            r.sink_checkpoints,
            start.elapsed()
        ),
        Err(f) => {
            eprintln!("unexpected finding: {f}");
            std::process::exit(1);
        }
    }
}
