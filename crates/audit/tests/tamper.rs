//! Every way an administrator could try to hide an access is detected, with the right finding.

// Test helpers outside `#[test]` functions may unwrap: a failure there is a broken fixture.
#![allow(clippy::unwrap_used)]

use callvault_audit::{
    Checkpoint, Entry, Finding, GENESIS, Hash, StoredEntry, Verifier, chain_hash, sink::FileSink,
    verify,
};
use ed25519_dalek::SigningKey;
use time::{Duration, OffsetDateTime, macros::datetime};

const N: u64 = 50;
const EVERY: u64 = 10;

struct Log {
    key: SigningKey,
    entries: Vec<StoredEntry>,
    db: Vec<Checkpoint>,
    sink: Vec<Checkpoint>,
}

impl Log {
    fn verify(&self) -> Result<callvault_audit::Report, Finding> {
        self.verify_with(&self.key)
    }

    fn verify_with(&self, key: &SigningKey) -> Result<callvault_audit::Report, Finding> {
        verify(
            key.verifying_key(),
            self.db.clone(),
            self.sink.clone(),
            self.entries.clone(),
        )
    }

    fn index(&self, seq: u64) -> usize {
        self.entries.iter().position(|e| e.seq == seq).unwrap()
    }
}

fn entry(i: u64) -> Entry {
    let start: OffsetDateTime = datetime!(2025-06-01 08:00 UTC);
    Entry {
        time: start + Duration::seconds(i as i64 * 7),
        actor: format!("user:agent{}", i % 4),
        tenant: Some("acme".into()),
        action: if i.is_multiple_of(3) {
            "recording.play"
        } else {
            "recording.upload"
        }
        .into(),
        target: Some(format!("rec_{i:04}")),
        purpose: i.is_multiple_of(3).then(|| "quality review".into()),
        result: if i.is_multiple_of(11) { "denied" } else { "ok" }.into(),
        client: Some("192.0.2.10".into()),
        details: i.is_multiple_of(5).then(|| r#"{"bytes":1024}"#.into()),
    }
}

/// Recomputes every hash, as an attacker with write access to the database would.
fn rechain(entries: &mut [StoredEntry]) {
    let mut prev = GENESIS;
    for e in entries {
        e.hash = chain_hash(&prev, e.seq, &e.entry);
        prev = e.hash;
    }
}

/// Signs a checkpoint every `EVERY` entries, into the database and the sink.
fn checkpoints(key: &SigningKey, entries: &[StoredEntry]) -> Vec<Checkpoint> {
    entries
        .iter()
        .filter(|e| e.seq % EVERY == 0)
        .map(|e| Checkpoint::sign(key, e.seq, e.hash, e.entry.time + Duration::seconds(1)))
        .collect()
}

fn honest_log() -> Log {
    let key = SigningKey::from_bytes(&[42; 32]);
    let mut entries: Vec<StoredEntry> = (1..=N)
        .map(|seq| StoredEntry {
            seq,
            entry: entry(seq),
            hash: GENESIS,
        })
        .collect();
    rechain(&mut entries);
    let db = checkpoints(&key, &entries);
    Log {
        key,
        sink: db.clone(),
        db,
        entries,
    }
}

#[test]
fn honest_chain_verifies() {
    let log = honest_log();
    let report = log.verify().unwrap();
    assert_eq!(report.entries, N);
    assert_eq!(report.checkpoints, N / EVERY);
    assert_eq!(report.sink_checkpoints, N / EVERY);
    assert_eq!(report.head, Some((N, log.entries[N as usize - 1].hash)));
}

#[test]
fn empty_record_verifies() {
    let key = SigningKey::from_bytes(&[1; 32]);
    let report = verify(key.verifying_key(), vec![], vec![], vec![]).unwrap();
    assert_eq!(report.entries, 0);
    assert_eq!(report.head, None);
}

#[test]
fn checkpoints_need_not_be_sorted_and_sink_may_lag() {
    let mut log = honest_log();
    log.db.reverse();
    log.sink.truncate(2);
    let report = log.verify().unwrap();
    assert_eq!((report.checkpoints, report.sink_checkpoints), (5, 2));
}

#[test]
fn edited_field_is_altered() {
    let mut log = honest_log();
    let i = log.index(17);
    log.entries[i].entry.actor = "user:nobody".into();
    assert_eq!(log.verify(), Err(Finding::Altered { seq: 17 }));
    let msg = Finding::Altered { seq: 17 }.to_string();
    assert_eq!(
        msg,
        "entry 17 was altered: its stored hash does not match its content"
    );
}

#[test]
fn edited_none_to_empty_is_altered() {
    let mut log = honest_log();
    let i = log.index(4);
    assert_eq!(log.entries[i].entry.purpose, None);
    log.entries[i].entry.purpose = Some(String::new());
    assert_eq!(log.verify(), Err(Finding::Altered { seq: 4 }));
}

#[test]
fn edit_with_recomputed_hashes_is_caught_by_checkpoint() {
    let mut log = honest_log();
    let i = log.index(13);
    log.entries[i].entry.result = "ok".into();
    log.entries[i].entry.target = Some("rec_9999".into());
    rechain(&mut log.entries);
    assert_eq!(log.verify(), Err(Finding::CheckpointMismatch { seq: 20 }));
}

#[test]
fn edit_with_recomputed_hashes_and_resigned_checkpoints_is_caught_by_sink() {
    // The attacker holds the signing key too; only the external sink still knows the truth.
    let mut log = honest_log();
    let i = log.index(13);
    log.entries[i].entry.actor = "system".into();
    rechain(&mut log.entries);
    log.db = checkpoints(&log.key, &log.entries);
    assert_eq!(log.verify(), Err(Finding::SinkMismatch { seq: 20 }));
}

#[test]
fn wholesale_rewrite_with_another_key_is_caught_by_sink() {
    // Everything in the database is rewritten and re-signed with a new key, and the verifier is
    // configured with that new key: the sink's checkpoints, signed by the old key, disagree.
    let mut log = honest_log();
    let new_key = SigningKey::from_bytes(&[7; 32]);
    let i = log.index(33);
    log.entries.remove(i);
    for (n, e) in log.entries.iter_mut().enumerate() {
        e.seq = n as u64 + 1;
    }
    rechain(&mut log.entries);
    log.db = checkpoints(&new_key, &log.entries);
    assert_eq!(
        log.verify_with(&new_key),
        Err(Finding::SinkMismatch { seq: 10 })
    );
    // With the original key the re-signed database checkpoints themselves fail.
    assert_eq!(
        log.verify(),
        Err(Finding::BadCheckpointSignature { seq: 10 })
    );
}

#[test]
fn deleted_middle_entry_is_missing() {
    let mut log = honest_log();
    let i = log.index(25);
    log.entries.remove(i);
    assert_eq!(
        log.verify(),
        Err(Finding::Missing {
            expected: 25,
            found: 26
        })
    );
    assert_eq!(
        Finding::Missing {
            expected: 5,
            found: 10
        }
        .to_string(),
        "entries 5 to 9 are missing (the next entry present is 10)"
    );
}

#[test]
fn deleted_middle_entry_with_renumbering_is_altered() {
    let mut log = honest_log();
    let i = log.index(25);
    log.entries.remove(i);
    for (n, e) in log.entries.iter_mut().enumerate() {
        e.seq = n as u64 + 1;
    }
    assert_eq!(log.verify(), Err(Finding::Altered { seq: 25 }));
}

#[test]
fn deleted_tail_after_checkpoint_is_truncated() {
    let mut log = honest_log();
    log.entries.truncate(35);
    assert_eq!(
        log.verify(),
        Err(Finding::Truncated {
            last_entry: 35,
            checkpoint_seq: 40
        })
    );
    // Deleting the database checkpoints too does not help: the sink still has them.
    log.db.retain(|c| c.seq <= 35);
    assert_eq!(
        log.verify(),
        Err(Finding::Truncated {
            last_entry: 35,
            checkpoint_seq: 40
        })
    );
    // Without any checkpoint beyond the end, a cut tail is indistinguishable from a short log;
    // that is why checkpoints are frequent and leave the building.
    log.sink.retain(|c| c.seq <= 35);
    assert!(log.verify().is_ok());
}

#[test]
fn swapped_entries_are_altered() {
    // Exchanging the contents of two rows (an UPDATE of their seq columns).
    let mut log = honest_log();
    let (a, b) = (log.index(21), log.index(22));
    let ea = log.entries[a].entry.clone();
    log.entries[a].entry = log.entries[b].entry.clone();
    log.entries[b].entry = ea;
    log.entries.swap(a, b);
    log.entries[a].seq = 21;
    log.entries[b].seq = 22;
    assert_eq!(log.verify(), Err(Finding::Altered { seq: 21 }));
}

#[test]
fn swapped_and_rechained_entries_hit_checkpoint() {
    let mut log = honest_log();
    let (a, b) = (log.index(21), log.index(22));
    let ea = log.entries[a].entry.clone();
    log.entries[a].entry = log.entries[b].entry.clone();
    log.entries[b].entry = ea;
    rechain(&mut log.entries);
    assert_eq!(log.verify(), Err(Finding::CheckpointMismatch { seq: 30 }));
}

#[test]
fn reordered_stream_is_out_of_order() {
    let log = honest_log();
    let mut v = Verifier::new(log.key.verifying_key(), log.db.clone(), log.sink.clone());
    for e in &log.entries[..5] {
        v.push(e).unwrap();
    }
    let dup = log.entries[2].clone();
    let finding = Finding::OutOfOrder {
        seq: 3,
        previous: 5,
    };
    assert_eq!(v.push(&dup), Err(finding.clone()));
    // Findings are sticky: continuing with good entries cannot end in success.
    assert_eq!(v.push(&log.entries[5]), Err(finding.clone()));
    assert_eq!(v.finish(), Err(finding));
}

#[test]
fn forged_checkpoint_signature() {
    let mut log = honest_log();
    let cp = log.db.iter_mut().find(|c| c.seq == 30).unwrap();
    cp.signature[10] ^= 0x40;
    assert_eq!(
        log.verify(),
        Err(Finding::BadCheckpointSignature { seq: 30 })
    );
}

#[test]
fn checkpoint_signed_by_another_key() {
    let mut log = honest_log();
    let other = SigningKey::from_bytes(&[9; 32]);
    let e = &log.entries[log.index(20)];
    let forged = Checkpoint::sign(&other, 20, e.hash, e.entry.time);
    log.db.push(forged);
    assert_eq!(
        log.verify(),
        Err(Finding::BadCheckpointSignature { seq: 20 })
    );
}

#[test]
fn forged_checkpoint_beyond_end_is_a_bad_signature_not_truncation() {
    let mut log = honest_log();
    let mut cp = Checkpoint::sign(&log.key, 60, Hash([1; 32]), datetime!(2025-07-01 0:00 UTC));
    cp.signature[0] ^= 1;
    log.db.push(cp);
    assert_eq!(
        log.verify(),
        Err(Finding::BadCheckpointSignature { seq: 60 })
    );
}

#[test]
fn bad_signature_in_sink_is_a_finding() {
    let mut log = honest_log();
    log.sink[1].signature[5] ^= 1;
    assert_eq!(log.verify(), Err(Finding::SinkMismatch { seq: 20 }));
}

#[test]
fn through_a_file_sink() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::new(dir.path().join("checkpoints.jsonl"));
    let mut log = honest_log();
    for cp in &log.db {
        sink.append(cp).unwrap();
    }
    log.sink = sink.read_all().unwrap();
    assert!(log.verify().is_ok());
    log.entries.truncate(45);
    log.db.retain(|c| c.seq <= 45);
    assert_eq!(
        log.verify(),
        Err(Finding::Truncated {
            last_entry: 45,
            checkpoint_seq: 50
        })
    );
}

#[test]
fn many_entries_stream_without_findings() {
    // Not a benchmark (see examples/verify_speed.rs); exercises the streaming path at size.
    let key = SigningKey::from_bytes(&[5; 32]);
    let mut v = Verifier::new(key.verifying_key(), vec![], vec![]);
    let mut prev = GENESIS;
    let mut e = entry(1);
    for seq in 1..=20_000 {
        e.time += Duration::milliseconds(1);
        let hash = chain_hash(&prev, seq, &e);
        let stored = StoredEntry {
            seq,
            entry: e,
            hash,
        };
        v.push(&stored).unwrap();
        prev = hash;
        e = stored.entry;
    }
    assert_eq!(v.finish().unwrap().entries, 20_000);
}
