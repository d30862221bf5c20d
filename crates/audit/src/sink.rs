//! The external checkpoint sink: an append-only copy of every signed checkpoint, kept where the
//! database administrator cannot rewrite it (another host's file system, a WORM mount, a log
//! shipper). Signatures alone do not stop someone who holds every key and rewrites the whole
//! database; a checkpoint that already left the building does.
//!
//! Format: one [`Checkpoint`] as JSON per line. This module does nothing but append and read.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::Checkpoint;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot read checkpoint sink {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "line {line} of checkpoint sink {path} is not a valid checkpoint ({source}); \
         a crash during an append can leave a torn last line: inspect and remove it"
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// A JSON-lines file. Each append is one `write` on an `O_APPEND` descriptor followed by fsync,
/// so concurrent writers cannot interleave within a line and an acknowledged checkpoint survives
/// a crash.
#[derive(Debug, Clone)]
pub struct FileSink {
    path: PathBuf,
}

impl FileSink {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSink { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&self, cp: &Checkpoint) -> io::Result<()> {
        let mut line = serde_json::to_vec(cp)?;
        line.push(b'\n');
        let created = !self.path.exists();
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)?;
        file.write_all(&line)?;
        file.sync_all()?;
        if created {
            sync_parent_dir(&self.path)?;
        }
        Ok(())
    }

    /// All checkpoints in file order. A missing file is an empty sink (nothing was signed yet);
    /// any unreadable line is an error, because silently skipping one would hide a rewrite.
    pub fn read_all(&self) -> Result<Vec<Checkpoint>, SinkError> {
        let io_err = |source| SinkError::Io {
            path: self.path.clone(),
            source,
        };
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(e)),
        };
        let mut out = Vec::new();
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(io_err)?;
            let cp = serde_json::from_str(&line).map_err(|source| SinkError::Corrupt {
                path: self.path.clone(),
                line: i + 1,
                source,
            })?;
            out.push(cp);
        }
        Ok(out)
    }
}

/// A new file's directory entry is durable only once its directory is synced.
#[cfg(unix)]
fn sync_parent_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

#[cfg(not(unix))]
fn sync_parent_dir(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hash;
    use ed25519_dalek::SigningKey;
    use time::macros::datetime;

    fn cp(seq: u64) -> Checkpoint {
        let key = SigningKey::from_bytes(&[3; 32]);
        Checkpoint::sign(
            &key,
            seq,
            Hash([seq as u8; 32]),
            datetime!(2025-03-04 05:06:07.891 UTC),
        )
    }

    #[test]
    fn missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::new(dir.path().join("none.jsonl"));
        assert!(sink.read_all().unwrap().is_empty());
    }

    #[test]
    fn append_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::new(dir.path().join("cp.jsonl"));
        let cps = [cp(10), cp(20), cp(30)];
        for c in &cps {
            sink.append(c).unwrap();
        }
        assert_eq!(sink.read_all().unwrap(), cps);
        let text = std::fs::read_to_string(sink.path()).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn corrupt_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::new(dir.path().join("cp.jsonl"));
        sink.append(&cp(10)).unwrap();
        let mut f = OpenOptions::new().append(true).open(sink.path()).unwrap();
        f.write_all(b"{\"seq\":20,\"hash\":\"ab\n").unwrap();
        sink.append(&cp(30)).unwrap();
        match sink.read_all() {
            Err(err @ SinkError::Corrupt { line: 2, .. }) => {
                assert!(
                    err.to_string().contains("line 2 of checkpoint sink"),
                    "{err}"
                );
            }
            other => panic!("expected corrupt line 2, got {other:?}"),
        }
    }
}
