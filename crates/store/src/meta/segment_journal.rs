//! The embedded deployment's live-call journal: sealed chunks appended to segment files beside
//! the SQLite database (docs/FORMAT.md, "Live journal segments").
//!
//! Why not SQLite rows: every chunk written as a row is written twice (WAL, then checkpoint),
//! walks a B-tree and is zeroed again on delete; at 2,000 calls that is 32 MB/s of sealed audio
//! through SQLite's single writer, which measured as the bottleneck of live ingest. Here a group
//! commit is one `write` of all its records and one `fdatasync`. Only the index is in memory
//! (about 40 bytes per chunk); the call rows, states and keys stay in SQLite.
//!
//! Invariants: a chunk is in the index only after the `fdatasync` that made it durable; a
//! segment file is deleted only when no undropped call has a chunk in it; a record that does not
//! check out when the journal is reopened (a write torn by a crash, never acknowledged) is cut
//! off with everything after it in that segment. One process owns the journal (an exclusive
//! `flock`), so a CLI verb run beside the server never touches it.

use crate::StoreError;
use crate::model::{ChunkOutcome, LiveChunk};
use callvault_core::RecordingId;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// First bytes of every segment file: format name and version.
const SEGMENT_MAGIC: &[u8; 8] = b"cvjrnl01";
/// A segment is closed and a new one started once it holds this much.
const SEGMENT_TARGET: u64 = 64 << 20;
/// Record header: body length and CRC-32C of the body, both little-endian u32.
const HEADER: usize = 8;
/// Longest body a record may declare (a 1 s PCM16 stereo 16 kHz chunk is 64 KB sealed).
const MAX_BODY: usize = 1 << 20;
/// Slice-by-16: the byte-at-a-time table was a tenth of the server's CPU at 2,000 calls.
const CRC: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("live journal: {what} {}: {e}", path.display()))
}

/// Where one chunk's sealed bytes are.
#[derive(Debug, Clone, Copy)]
struct Loc {
    segment: u32,
    offset: u64,
    len: u32,
    key_no: i64,
}

#[derive(Default)]
struct CallChunks {
    by_seq: BTreeMap<u64, Loc>,
    /// Newest `appended_at` of its records, which the call row's `updated_at` does not carry.
    last_append: i64,
}

struct Segment {
    file: Arc<File>,
    /// Chunks of undropped calls in it.
    live: usize,
}

pub(super) struct SegmentJournal {
    dir: PathBuf,
    /// Held for the journal's lifetime: the exclusive lock.
    _lock: File,
    segments: BTreeMap<u32, Segment>,
    current: u32,
    current_len: u64,
    calls: HashMap<RecordingId, CallChunks>,
}

/// One decoded record.
struct Record {
    call: RecordingId,
    seq: u64,
    key_no: i64,
    appended_at: i64,
    sealed_at: usize,
    sealed_len: usize,
}

/// Encodes one record (header and body) onto `out`; the layout is in docs/FORMAT.md.
fn encode(out: &mut Vec<u8>, c: &LiveChunk, appended_at: i64) -> usize {
    let id = c.call.to_string();
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    out.push(id.len() as u8);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&c.seq.to_le_bytes());
    out.extend_from_slice(&c.key_no.to_le_bytes());
    out.extend_from_slice(&appended_at.to_le_bytes());
    let sealed_at = out.len() - start;
    out.extend_from_slice(&c.sealed);
    let body_len = (out.len() - start - HEADER) as u32;
    let crc = CRC.checksum(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&body_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    sealed_at
}

/// Decodes the record at the start of `buf`; `None` if it is incomplete or does not check out.
fn decode(buf: &[u8]) -> Option<(Record, usize)> {
    let len = u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(buf.get(4..8)?.try_into().ok()?);
    if len > MAX_BODY {
        return None;
    }
    let body = buf.get(HEADER..HEADER + len)?;
    if CRC.checksum(body) != crc {
        return None;
    }
    let id_len = usize::from(*body.first()?);
    let id = std::str::from_utf8(body.get(1..1 + id_len)?).ok()?;
    let call = RecordingId::parse(id).ok()?;
    let num = |at: usize| -> Option<[u8; 8]> { body.get(at..at + 8)?.try_into().ok() };
    let p = 1 + id_len;
    let seq = u64::from_le_bytes(num(p)?);
    let key_no = i64::from_le_bytes(num(p + 8)?);
    let appended_at = i64::from_le_bytes(num(p + 16)?);
    let sealed_at = HEADER + p + 24;
    let rec = Record {
        call,
        seq,
        key_no,
        appended_at,
        sealed_at,
        sealed_len: HEADER + len - sealed_at,
    };
    Some((rec, HEADER + len))
}

fn segment_name(n: u32) -> String {
    format!("{n:08}.seg")
}

impl SegmentJournal {
    /// Opens (creating) the journal in `dir`, takes its lock, reads every segment back and
    /// starts a fresh one for new writes.
    pub(super) fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io("cannot create", dir, e))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| io("cannot open", &lock_path, e))?;
        lock.try_lock().map_err(|_| {
            StoreError::Backend(format!(
                "live journal {} is in use by another callvault process; only one server may use an embedded data directory",
                dir.display()
            ))
        })?;
        let mut numbers = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io("cannot list", dir, e))? {
            let name = entry.map_err(|e| io("cannot list", dir, e))?.file_name();
            if let Some(n) = name
                .to_str()
                .and_then(|s| s.strip_suffix(".seg"))
                .and_then(|s| s.parse::<u32>().ok())
            {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        let mut j = Self {
            dir: dir.to_owned(),
            _lock: lock,
            segments: BTreeMap::new(),
            current: 0,
            current_len: 0,
            calls: HashMap::new(),
        };
        for n in &numbers {
            j.recover(*n)?;
        }
        j.start_segment(numbers.last().map_or(1, |n| n + 1))?;
        Ok(j)
    }

    /// Indexes every good record of segment `n` and cuts off a torn tail.
    fn recover(&mut self, n: u32) -> Result<(), StoreError> {
        let path = self.dir.join(segment_name(n));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io("cannot open", &path, e))?;
        let data = std::fs::read(&path).map_err(|e| io("cannot read", &path, e))?;
        if data.get(..SEGMENT_MAGIC.len()) != Some(SEGMENT_MAGIC.as_slice()) {
            // Created but its header never made it to disk: nothing was ever acknowledged in it.
            std::fs::remove_file(&path).map_err(|e| io("cannot remove", &path, e))?;
            return Ok(());
        }
        let mut at = SEGMENT_MAGIC.len();
        let mut live = 0;
        while let Some((r, len)) = decode(&data[at..]) {
            let loc = Loc {
                segment: n,
                offset: (at + r.sealed_at) as u64,
                len: r.sealed_len as u32,
                key_no: r.key_no,
            };
            let call = self.calls.entry(r.call).or_default();
            if let std::collections::btree_map::Entry::Vacant(v) = call.by_seq.entry(r.seq) {
                v.insert(loc);
                live += 1;
            }
            call.last_append = call.last_append.max(r.appended_at);
            at += len;
        }
        if at < data.len() {
            tracing::warn!(
                segment = %path.display(),
                offset = at,
                bytes = data.len() - at,
                "live journal: cut bytes that do not form whole, intact records (a write torn by a crash, never acknowledged)"
            );
            file.set_len(at as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| io("cannot truncate", &path, e))?;
        }
        self.segments.insert(
            n,
            Segment {
                file: Arc::new(file),
                live,
            },
        );
        Ok(())
    }

    fn start_segment(&mut self, n: u32) -> Result<(), StoreError> {
        let path = self.dir.join(segment_name(n));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io("cannot create", &path, e))?;
        file.write_all(SEGMENT_MAGIC)
            .and_then(|()| file.sync_all())
            .map_err(|e| io("cannot write", &path, e))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("cannot sync", &self.dir, e))?;
        let previous = std::mem::replace(&mut self.current, n);
        self.current_len = SEGMENT_MAGIC.len() as u64;
        self.segments.insert(
            n,
            Segment {
                file: Arc::new(file),
                live: 0,
            },
        );
        self.remove_if_dead(previous);
        Ok(())
    }

    /// Keeps only the calls `keep` says are still live (open, or waiting to be stored).
    pub(super) fn retain(&mut self, keep: impl Fn(&RecordingId) -> bool) {
        let gone: Vec<RecordingId> = self.calls.keys().filter(|c| !keep(c)).copied().collect();
        for c in gone {
            self.drop_call(&c);
        }
        let empty: Vec<u32> = self.segments.keys().copied().collect();
        for n in empty {
            self.remove_if_dead(n);
        }
    }

    /// Appends every chunk of a call `is_open` accepts and not stored before, durably, in one
    /// write and one `fdatasync`. The first copy of a sequence number wins.
    pub(super) fn append(
        &mut self,
        chunks: &[LiveChunk],
        appended_at: i64,
        mut is_open: impl FnMut(&RecordingId) -> Result<bool, StoreError>,
    ) -> Result<Vec<ChunkOutcome>, StoreError> {
        let mut out = Vec::with_capacity(chunks.len());
        let mut buf = Vec::with_capacity(chunks.iter().map(|c| c.sealed.len() + 64).sum());
        let mut placed = Vec::new();
        let mut in_batch = HashSet::new();
        let mut open = HashMap::new();
        for c in chunks {
            let known = self
                .calls
                .get(&c.call)
                .is_some_and(|k| k.by_seq.contains_key(&c.seq));
            if known || in_batch.contains(&(c.call, c.seq)) {
                out.push(ChunkOutcome::Duplicate);
                continue;
            }
            let is = match open.get(&c.call) {
                Some(b) => *b,
                None => {
                    let b = is_open(&c.call)?;
                    open.insert(c.call, b);
                    b
                }
            };
            if !is {
                out.push(ChunkOutcome::Closed);
                continue;
            }
            let start = buf.len();
            let sealed_at = encode(&mut buf, c, appended_at);
            placed.push((c, start + sealed_at));
            in_batch.insert((c.call, c.seq));
            out.push(ChunkOutcome::Stored);
        }
        if placed.is_empty() {
            return Ok(out);
        }
        let base = self.current_len;
        let seg = self.current;
        let path = self.dir.join(segment_name(seg));
        let file = self.segments.get(&seg).map(|s| s.file.clone());
        let file =
            file.ok_or_else(|| StoreError::Backend("live journal: no open segment".into()))?;
        if let Err(e) = file
            .write_all_at(&buf, base)
            .and_then(|()| file.sync_data())
        {
            // What reached the file is not acknowledged; cut it off (or, failing that, leave
            // this segment so that nothing acknowledged ever follows it) before reporting.
            if file.set_len(base).and_then(|()| file.sync_data()).is_err() {
                self.start_segment(seg + 1)?;
            }
            return Err(io("cannot append to", &path, e));
        }
        self.current_len += buf.len() as u64;
        for (c, at) in placed {
            let call = self.calls.entry(c.call).or_default();
            call.by_seq.insert(
                c.seq,
                Loc {
                    segment: seg,
                    offset: base + at as u64,
                    len: c.sealed.len() as u32,
                    key_no: c.key_no,
                },
            );
            call.last_append = call.last_append.max(appended_at);
            if let Some(s) = self.segments.get_mut(&seg) {
                s.live += 1;
            }
        }
        if self.current_len >= SEGMENT_TARGET {
            self.start_segment(seg + 1)?;
        }
        Ok(out)
    }

    pub(super) fn seqs(&self, call: &RecordingId) -> Vec<u64> {
        self.calls
            .get(call)
            .map(|c| c.by_seq.keys().copied().collect())
            .unwrap_or_default()
    }

    pub(super) fn last_append(&self, call: &RecordingId) -> Option<i64> {
        self.calls.get(call).map(|c| c.last_append)
    }

    /// Where the call's chunks from `from` on are, at most `limit`: read them with
    /// [`read_located`] after releasing the journal's lock.
    pub(super) fn locate(&self, call: &RecordingId, from: u64, limit: u32) -> Vec<Located> {
        let Some(c) = self.calls.get(call) else {
            return Vec::new();
        };
        c.by_seq
            .range(from..)
            .take(limit as usize)
            .filter_map(|(seq, loc)| {
                let s = self.segments.get(&loc.segment)?;
                Some(Located {
                    call: *call,
                    seq: *seq,
                    loc: *loc,
                    file: s.file.clone(),
                })
            })
            .collect()
    }

    /// Forgets a call's chunks (it was stored as a recording) and deletes segments left empty.
    pub(super) fn drop_call(&mut self, call: &RecordingId) {
        let Some(c) = self.calls.remove(call) else {
            return;
        };
        let mut touched = HashSet::new();
        for loc in c.by_seq.values() {
            if let Some(s) = self.segments.get_mut(&loc.segment) {
                s.live = s.live.saturating_sub(1);
                touched.insert(loc.segment);
            }
        }
        for n in touched {
            self.remove_if_dead(n);
        }
    }

    fn remove_if_dead(&mut self, n: u32) {
        if n == self.current || self.segments.get(&n).is_none_or(|s| s.live > 0) {
            return;
        }
        self.segments.remove(&n);
        // A failed removal only costs space: the next open reads it and drops it again.
        let _ = std::fs::remove_file(self.dir.join(segment_name(n)));
    }
}

/// A chunk found by [`SegmentJournal::locate`].
pub(super) struct Located {
    call: RecordingId,
    seq: u64,
    loc: Loc,
    file: Arc<File>,
}

/// Reads located chunks back (blocking file reads, outside the journal's lock).
pub(super) fn read_located(found: Vec<Located>) -> Result<Vec<LiveChunk>, StoreError> {
    found
        .into_iter()
        .map(|l| {
            let mut sealed = vec![0; l.loc.len as usize];
            l.file
                .read_exact_at(&mut sealed, l.loc.offset)
                .map_err(|e| StoreError::Backend(format!("live journal: cannot read: {e}")))?;
            Ok(LiveChunk {
                call: l.call,
                seq: l.seq,
                key_no: l.loc.key_no,
                sealed,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn chunk(call: RecordingId, seq: u64, byte: u8) -> LiveChunk {
        LiveChunk {
            call,
            seq,
            key_no: 1,
            sealed: vec![byte; 40],
        }
    }

    #[test]
    fn reopening_recovers_every_chunk_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (RecordingId::random(), RecordingId::random());
        let mut j = SegmentJournal::open(dir.path()).unwrap();
        let out = j
            .append(
                &[chunk(a, 0, 1), chunk(b, 5, 2), chunk(a, 1, 3)],
                100,
                |_| Ok(true),
            )
            .unwrap();
        assert_eq!(out, vec![ChunkOutcome::Stored; 3]);
        let seg = dir.path().join(segment_name(j.current));
        drop(j);
        // A crash in the middle of the next group commit: half a record at the end.
        let mut torn = Vec::new();
        encode(&mut torn, &chunk(a, 2, 4), 101);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&torn[..torn.len() / 2]).unwrap();
        drop(f);
        let before = std::fs::metadata(&seg).unwrap().len();

        let mut j = SegmentJournal::open(dir.path()).unwrap();
        assert_eq!(j.seqs(&a), vec![0, 1]);
        assert_eq!(j.seqs(&b), vec![5]);
        assert_eq!(j.last_append(&a), Some(100));
        let got = read_located(j.locate(&a, 1, 10)).unwrap();
        assert_eq!(got, vec![chunk(a, 1, 3)]);
        assert!(
            std::fs::metadata(&seg).unwrap().len() < before,
            "torn tail cut"
        );
        // The first copy wins, also across a reopen.
        let again = j.append(&[chunk(a, 1, 9)], 102, |_| Ok(true)).unwrap();
        assert_eq!(again, vec![ChunkOutcome::Duplicate]);
    }

    #[test]
    fn a_segment_is_deleted_once_all_its_calls_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (RecordingId::random(), RecordingId::random());
        let mut j = SegmentJournal::open(dir.path()).unwrap();
        j.append(&[chunk(a, 0, 1), chunk(b, 0, 2)], 1, |_| Ok(true))
            .unwrap();
        let first = j.current;
        drop(j);
        let mut j = SegmentJournal::open(dir.path()).unwrap();
        let path = dir.path().join(segment_name(first));
        assert!(path.exists());
        j.drop_call(&a);
        assert!(path.exists(), "b still has a chunk in it");
        j.drop_call(&b);
        assert!(!path.exists());
        // Retain drops what the database says is gone.
        j.append(&[chunk(a, 1, 1)], 2, |_| Ok(true)).unwrap();
        drop(j);
        let mut j = SegmentJournal::open(dir.path()).unwrap();
        j.retain(|_| false);
        assert!(j.seqs(&a).is_empty());
        let segs = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "seg")
            })
            .count();
        assert_eq!(segs, 1, "only the fresh segment is left");
    }

    #[test]
    fn a_second_process_cannot_open_the_same_journal() {
        let dir = tempfile::tempdir().unwrap();
        let _j = SegmentJournal::open(dir.path()).unwrap();
        let again = SegmentJournal::open(dir.path());
        assert!(matches!(again, Err(StoreError::Backend(m)) if m.contains("in use")));
    }

    #[test]
    fn closed_calls_refuse_and_duplicates_in_one_batch_keep_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (RecordingId::random(), RecordingId::random());
        let mut j = SegmentJournal::open(dir.path()).unwrap();
        let out = j
            .append(&[chunk(a, 0, 1), chunk(a, 0, 2), chunk(b, 0, 3)], 1, |c| {
                Ok(*c == a)
            })
            .unwrap();
        use ChunkOutcome::*;
        assert_eq!(out, vec![Stored, Duplicate, Closed]);
        assert_eq!(
            read_located(j.locate(&a, 0, 5)).unwrap(),
            vec![chunk(a, 0, 1)]
        );
    }

    /// The record layout of docs/FORMAT.md, byte for byte.
    #[test]
    fn record_test_vector() {
        let call = RecordingId::parse("rec_0123456789abcdef0123456789abcdef").unwrap();
        let c = LiveChunk {
            call,
            seq: 7,
            key_no: 1,
            sealed: vec![0xAA; 4],
        };
        let mut out = Vec::new();
        encode(&mut out, &c, 1_800_000_000);
        assert_eq!(hex::encode(&out), RECORD_VECTOR);
    }

    /// Computed independently (Python, bitwise CRC-32C) in docs/FORMAT.md.
    const RECORD_VECTOR: &str = "41000000614f5757247265635f30313233343536373839616263646566303132333435363738396162636465660700000000000000010000000000000000d2496b00000000aaaaaaaa";
}
