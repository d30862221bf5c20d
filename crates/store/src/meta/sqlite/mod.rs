//! SQLite adapter: the embedded default. WAL mode with `synchronous=FULL`, so a committed
//! transaction survives power loss; one writer connection (SQLite serialises writers anyway)
//! and a few readers that WAL lets run beside it; checkpoints run on a background thread so
//! that no commit pays for copying the WAL into the database. Blocking calls run on tokio's blocking pool.
//! Live chunks are not rows: they go to the segment journal beside the database
//! (`segment_journal.rs`), which the call rows here govern.
//!
//! This file holds the connections and what every concern uses; each concern's methods are in
//! the module named after it.

use super::rows::{Cells, impl_cells};
use super::segment_journal::SegmentJournal;
use super::{MetaBackend, Sealed};
use crate::StoreError;
use rusqlite::{Connection, Row};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

mod audit;
mod coordination;
mod identity;
mod lifecycle;
mod live;
mod recordings;

const READERS: usize = 4;

/// Migrations, in order; `PRAGMA user_version` records how many were applied.
const MIGRATIONS: &[&str] = &[
    include_str!("0001_init.sql"),
    include_str!("0002_leases.sql"),
    include_str!("0003_search_indexes.sql"),
    include_str!("0004_lifecycle.sql"),
    include_str!("0005_live_calls.sql"),
    include_str!("0006_console.sql"),
    include_str!("0007_recording_parties.sql"),
    include_str!("0008_live_journal_files.sql"),
];

pub(super) struct Sqlite {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next: AtomicUsize,
    /// Opened on first use, so a CLI verb run beside the server never takes it.
    journal: Mutex<Option<SegmentJournal>>,
    journal_dir: PathBuf,
}

impl Inner {
    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer connection (blocking).
    fn transaction<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut c = lock(&self.writer)?;
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map_err)?;
        let out = f(&tx)?;
        tx.commit().map_err(map_err)?;
        Ok(out)
    }
}

impl Sealed for Sqlite {}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn map_err(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        rusqlite::Error::FromSqlConversionFailure(_, _, inner) if inner.is::<StoreError>() => {
            match inner.downcast::<StoreError>() {
                Ok(e) => *e,
                Err(other) => backend(other),
            }
        }
        rusqlite::Error::SqliteFailure(f, msg)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(msg.unwrap_or_else(|| "constraint violated".into()))
        }
        other => backend(other),
    }
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, StoreError> {
    m.lock()
        .map_err(|_| backend("connection lock poisoned by an earlier panic"))
}

fn connect(path: &PathBuf) -> Result<Connection, StoreError> {
    let c = Connection::open(path).map_err(map_err)?;
    c.execute_batch(
        // secure_delete: an erased recording's age header is overwritten in the file, not
        // left in a free page (crypto-shredding; see `erase_recordings`).
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000; PRAGMA secure_delete=ON;",
    )
    .map_err(map_err)?;
    Ok(c)
}

impl Sqlite {
    pub(super) async fn open(path: PathBuf) -> Result<Self, StoreError> {
        tokio::task::spawn_blocking(move || {
            // SQLite gives the -wal and -shm files the database file's mode, so creating it
            // owner-only keeps all three private.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)?;
            let mut writer = connect(&path)?;
            migrate(&mut writer)?;
            let readers = (0..READERS)
                .map(|_| connect(&path).map(Mutex::new))
                .collect::<Result<_, _>>()?;
            // Checkpoints run beside the writer, not inside its commits: with automatic
            // checkpoints a commit that crosses the WAL threshold also copies the WAL into the
            // database and fsyncs it, which stalls every waiting acknowledgement.
            writer
                .pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(map_err)?;
            let journal_dir = path
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("live-journal");
            let inner = Arc::new(Inner {
                writer: Mutex::new(writer),
                readers,
                next: AtomicUsize::new(0),
                journal: Mutex::new(None),
                journal_dir,
            });
            start_checkpointer(connect(&path)?, Arc::downgrade(&inner));
            Ok(Self { inner })
        })
        .await?
    }

    /// Every row `sql` returns for its one parameter `?1` (a tenant, or NULL for all), parsed by `row`.
    async fn rows_of<T: Send + 'static>(
        &self,
        sql: String,
        param: Option<String>,
        row: fn(&dyn Cells) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached(&sql).map_err(map_err)?;
            all(st.query_map([param], read(row)).map_err(map_err)?)
        })
        .await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let i = inner.next.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let c = lock(&inner.readers[i])?;
            f(&c)
        })
        .await?
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer connection.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.transaction(f)).await?
    }
}

/// How often the background checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Runs passive checkpoints (never blocking the writer or readers) on its own connection until
/// the store is dropped.
fn start_checkpointer(c: Connection, store: std::sync::Weak<Inner>) {
    std::thread::spawn(move || {
        while store.strong_count() > 0 {
            std::thread::sleep(CHECKPOINT_EVERY);
            // Busy or I/O trouble: the WAL still holds every commit; try again next round.
            let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        }
    });
}

fn migrate(c: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(map_err)?;
    let supported = MIGRATIONS.len() as i64;
    if version > supported {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = c.transaction().map_err(map_err)?;
        tx.execute_batch(sql).map_err(map_err)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(map_err)?;
        tx.commit().map_err(map_err)?;
    }
    Ok(())
}

// ---- row conversions: the shared readers in `rows` over rusqlite's row type -------------

impl_cells!(Row<'_>, get, map_err);

/// Adapts a `rows` reader to the closure rusqlite wants. The `StoreError` travels boxed inside
/// rusqlite's error and [`map_err`] unboxes it, so a malformed row still reads as `Corrupt`.
fn read<T>(f: fn(&dyn Cells) -> Result<T, StoreError>) -> impl Fn(&Row<'_>) -> rusqlite::Result<T> {
    move |r| {
        f(r).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Null, Box::new(e))
        })
    }
}

fn one<T>(r: rusqlite::Result<T>) -> Result<T, StoreError> {
    r.map_err(map_err)
}

fn all<T>(rows: impl Iterator<Item = rusqlite::Result<T>>) -> Result<Vec<T>, StoreError> {
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(map_err)
}

fn changed(n: usize) -> Result<(), StoreError> {
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

impl MetaBackend for Sqlite {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }
}
