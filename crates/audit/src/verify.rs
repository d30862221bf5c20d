//! Streaming verification of the whole record against the database's and the sink's checkpoints.
//!
//! Memory is O(number of checkpoints) and nothing is allocated per entry, so ten million entries
//! verify in a few seconds (`cargo run --release --example verify_speed`).

use ed25519_dalek::VerifyingKey;

use crate::{Checkpoint, GENESIS, Hash, StoredEntry, chain_hash};

/// What is wrong with the record, naming the first bad entry. Verification stops at the first
/// finding: everything after a broken link is unproven anyway.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Finding {
    #[error("entry {seq} was altered: its stored hash does not match its content")]
    Altered { seq: u64 },
    #[error("{}", missing_message(*expected, *found))]
    Missing { expected: u64, found: u64 },
    #[error(
        "entry {seq} came after entry {previous}: entries are out of order or duplicated \
         (sequence numbers must rise by exactly one)"
    )]
    OutOfOrder { seq: u64, previous: u64 },
    #[error(
        "the checkpoint at entry {seq} has a signature that does not verify with the audit key: \
         it was forged or altered"
    )]
    BadCheckpointSignature { seq: u64 },
    #[error(
        "the signed checkpoint at entry {seq} does not match the chain: entries up to {seq} \
         were altered, removed or reordered and their hashes recomputed"
    )]
    CheckpointMismatch { seq: u64 },
    #[error(
        "the external sink's checkpoint at entry {seq} disagrees with the database (other hash, \
         or not signed by this key): the database was rewritten or the audit key replaced"
    )]
    SinkMismatch { seq: u64 },
    #[error(
        "a checkpoint refers to entry {checkpoint_seq} but the record ends at entry \
         {last_entry}: entries after {last_entry} were deleted"
    )]
    Truncated {
        last_entry: u64,
        checkpoint_seq: u64,
    },
}

fn missing_message(expected: u64, found: u64) -> String {
    let last = found.saturating_sub(1);
    if last <= expected {
        format!("entry {expected} is missing (the next entry present is {found})")
    } else {
        format!("entries {expected} to {last} are missing (the next entry present is {found})")
    }
}

/// What a successful verification covered, for the operator's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub entries: u64,
    /// Database checkpoints verified.
    pub checkpoints: u64,
    /// External sink checkpoints verified.
    pub sink_checkpoints: u64,
    /// Last entry's seq and hash; `None` for an empty record.
    pub head: Option<(u64, Hash)>,
}

/// Checkpoints sorted by seq with a cursor, consumed as the chain reaches them.
struct Queue {
    items: Vec<Checkpoint>,
    next: usize,
}

impl Queue {
    fn new(mut items: Vec<Checkpoint>) -> Self {
        items.sort_by_key(|c| c.seq);
        Queue { items, next: 0 }
    }

    /// The next checkpoint if it is at or before `seq`.
    fn take_upto(&mut self, seq: u64) -> Option<&Checkpoint> {
        let cp = self.items.get(self.next).filter(|c| c.seq <= seq)?;
        self.next += 1;
        Some(cp)
    }

    fn peek(&self) -> Option<&Checkpoint> {
        self.items.get(self.next)
    }
}

/// Feed entries in seq order with [`push`](Self::push), then call [`finish`](Self::finish):
/// only `finish` can see that the tail was cut off, so a verification that skips it proves
/// nothing about deletions at the end.
pub struct Verifier {
    key: VerifyingKey,
    db: Queue,
    sink: Queue,
    last_seq: u64,
    head: Hash,
    report: Report,
    /// Once a finding is made it is returned again, so a caller that keeps pushing cannot
    /// accidentally end with `Ok`.
    failed: Option<Finding>,
}

impl Verifier {
    /// `checkpoints` come from the database, `sink` from the external sink; neither needs to be
    /// sorted. Signatures are checked as the chain reaches each checkpoint.
    pub fn new(key: VerifyingKey, checkpoints: Vec<Checkpoint>, sink: Vec<Checkpoint>) -> Self {
        Verifier {
            key,
            db: Queue::new(checkpoints),
            sink: Queue::new(sink),
            last_seq: 0,
            head: GENESIS,
            report: Report {
                entries: 0,
                checkpoints: 0,
                sink_checkpoints: 0,
                head: None,
            },
            failed: None,
        }
    }

    pub fn push(&mut self, e: &StoredEntry) -> Result<(), Finding> {
        if let Some(f) = &self.failed {
            return Err(f.clone());
        }
        let result = self.step(e);
        if let Err(f) = &result {
            self.failed = Some(f.clone());
        }
        result
    }

    /// Checks any checkpoints beyond the last entry: a valid one there means entries were
    /// deleted from the end.
    pub fn finish(mut self) -> Result<Report, Finding> {
        if let Some(f) = self.failed {
            return Err(f);
        }
        // Checkpoints at seq 0 (an empty record) are settled here if no entry was pushed.
        self.settle()?;
        if let Some(cp) = self.db.peek() {
            if !cp.verify(&self.key) {
                return Err(Finding::BadCheckpointSignature { seq: cp.seq });
            }
            return Err(Finding::Truncated {
                last_entry: self.last_seq,
                checkpoint_seq: cp.seq,
            });
        }
        if let Some(cp) = self.sink.peek() {
            if !cp.verify(&self.key) {
                return Err(Finding::SinkMismatch { seq: cp.seq });
            }
            return Err(Finding::Truncated {
                last_entry: self.last_seq,
                checkpoint_seq: cp.seq,
            });
        }
        Ok(self.report)
    }

    fn step(&mut self, e: &StoredEntry) -> Result<(), Finding> {
        self.settle()?;
        let expected = self.last_seq + 1;
        if e.seq < expected {
            return Err(Finding::OutOfOrder {
                seq: e.seq,
                previous: self.last_seq,
            });
        }
        if e.seq > expected {
            return Err(Finding::Missing {
                expected,
                found: e.seq,
            });
        }
        if chain_hash(&self.head, e.seq, &e.entry) != e.hash {
            return Err(Finding::Altered { seq: e.seq });
        }
        self.last_seq = e.seq;
        self.head = e.hash;
        self.report.entries += 1;
        self.report.head = Some((e.seq, e.hash));
        self.settle()
    }

    /// Checks every checkpoint at or before the current head. Because entries arrive one seq at
    /// a time, such a checkpoint is always exactly at the head.
    fn settle(&mut self) -> Result<(), Finding> {
        while let Some(cp) = self.db.take_upto(self.last_seq) {
            if !cp.verify(&self.key) {
                return Err(Finding::BadCheckpointSignature { seq: cp.seq });
            }
            if cp.seq != self.last_seq || cp.hash != self.head {
                return Err(Finding::CheckpointMismatch { seq: cp.seq });
            }
            self.report.checkpoints += 1;
        }
        while let Some(cp) = self.sink.take_upto(self.last_seq) {
            if !cp.verify(&self.key) || cp.seq != self.last_seq || cp.hash != self.head {
                return Err(Finding::SinkMismatch { seq: cp.seq });
            }
            self.report.sink_checkpoints += 1;
        }
        Ok(())
    }
}

/// Verifies a whole record in one call; see [`Verifier`].
pub fn verify(
    key: VerifyingKey,
    checkpoints: Vec<Checkpoint>,
    sink: Vec<Checkpoint>,
    entries: impl IntoIterator<Item = StoredEntry>,
) -> Result<Report, Finding> {
    let mut v = Verifier::new(key, checkpoints, sink);
    for e in entries {
        v.push(&e)?;
    }
    v.finish()
}
