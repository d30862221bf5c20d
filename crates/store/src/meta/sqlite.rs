//! SQLite adapter: the embedded default. WAL mode with `synchronous=FULL`, so a committed
//! transaction survives power loss; one writer connection (SQLite serialises writers anyway)
//! and a few readers that WAL lets run beside it; checkpoints run on a background thread so
//! that no commit pays for copying the WAL into the database. Blocking calls run on tokio's blocking pool.
//! Live chunks are not rows: they go to the segment journal beside the database
//! (`segment_journal.rs`), which the call rows here govern.

use super::rows::*;
use super::segment_journal::{SegmentJournal, read_located};
use super::{MetaBackend, Sealed};
use crate::StoreError;
use crate::model::*;
use callvault_audit::{Checkpoint, Entry, StoredEntry, chain_hash};
use callvault_core::{BlobName, RecordingId, TenantId, UserId, Username};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const READERS: usize = 4;

/// Migrations, in order; `PRAGMA user_version` records how many were applied.
const MIGRATIONS: &[&str] = &[
    include_str!("sqlite/0001_init.sql"),
    include_str!("sqlite/0002_leases.sql"),
    include_str!("sqlite/0003_search_indexes.sql"),
    include_str!("sqlite/0004_lifecycle.sql"),
    include_str!("sqlite/0005_live_calls.sql"),
    include_str!("sqlite/0006_console.sql"),
    include_str!("sqlite/0007_recording_parties.sql"),
    include_str!("sqlite/0008_live_journal_files.sql"),
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

    /// Runs `f` on the live journal, opening it (and dropping the chunks of calls the database
    /// no longer holds as live) on first use.
    fn with_journal<T>(
        &self,
        c: &Connection,
        f: impl FnOnce(&mut SegmentJournal) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = lock(&self.journal)?;
        if guard.is_none() {
            let mut j = SegmentJournal::open(&self.journal_dir)?;
            let mut st = c
                .prepare(
                    "SELECT id FROM live_calls WHERE state IN ('open', 'finished', 'incomplete')",
                )
                .map_err(map_err)?;
            let live: std::collections::HashSet<String> = st
                .query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect())
                .map_err(map_err)?;
            j.retain(|id| live.contains(&id.to_string()));
            *guard = Some(j);
        }
        match guard.as_mut() {
            Some(j) => f(j),
            None => Err(backend("live journal not open")),
        }
    }

    /// A call row's `updated_at` is its last state change; its last chunk is in the journal.
    fn with_last_append(
        &self,
        c: &Connection,
        mut calls: Vec<LiveCall>,
    ) -> Result<Vec<LiveCall>, StoreError> {
        self.with_journal(c, |j| {
            for call in &mut calls {
                if let Some(t) = j.last_append(&call.id) {
                    call.updated_at = call.updated_at.max(t);
                }
            }
            Ok(calls)
        })
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

impl Cells for Row<'_> {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.get(i).map_err(map_err)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.get(i).map_err(map_err)
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.get(i).map_err(map_err)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.get(i).map_err(map_err)
    }
    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        self.get(i).map_err(map_err)
    }
    fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.get(i).map_err(map_err)
    }
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(i).map_err(map_err)
    }
}

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

/// Inserts recordings with one prepared statement inside the caller's transaction: an error
/// returns before the commit, and dropping the transaction rolls every row back.
fn insert_recording_rows(
    tx: &rusqlite::Transaction<'_>,
    rows: &[Recording],
) -> Result<(), StoreError> {
    let mut st = tx
        .prepare_cached(&format!("INSERT INTO recordings ({REC_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"))
        .map_err(map_err)?;
    for r in rows {
        st.execute(params![
            r.id.to_string(),
            r.tenant.as_str(),
            r.blob.to_string(),
            r.header,
            r.key_id,
            r.container,
            r.codec,
            r.channels,
            r.sample_rate,
            u64_to_i64(r.duration_ms),
            u64_to_i64(r.size),
            r.started_at,
            r.direction.as_str(),
            r.caller_hash.map(|h| h.to_vec()),
            r.caller_enc,
            r.agent_id,
            r.queue,
            r.external_call_id,
            r.created_at,
            r.retention_class
        ])
        .map_err(map_err)?;
    }
    Ok(())
}

fn insert_live_key(tx: &rusqlite::Transaction<'_>, k: &LiveKey) -> Result<(), StoreError> {
    one(tx.execute(
        "INSERT INTO live_keys (call, key_no, wrapped) VALUES (?1, ?2, ?3)",
        params![k.call.to_string(), k.key_no, k.wrapped],
    ))
    .map(drop)
}

#[async_trait::async_trait]
impl MetaBackend for Sqlite {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    async fn get_setting(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        self.read(move |c| {
            one(c
                .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional())
        })
        .await
    }

    async fn put_setting_if_absent(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.write(move |tx| {
            one(tx.execute(
                "INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)",
                params![key, value],
            ))?;
            one(
                tx.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                }),
            )
        })
        .await
    }

    async fn put_setting(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.write(move |tx| {
            one(tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            ))
            .map(drop)
        })
        .await
    }

    async fn create_tenant(&self, t: &Tenant, k: &TenantKey) -> Result<(), StoreError> {
        let (t, k) = (t.clone(), k.clone());
        self.write(move |tx| {
            one(tx.execute(
                &format!("INSERT INTO tenants ({TENANT_COLS}) VALUES (?1, ?2, ?3, ?4)"),
                params![
                    t.id.as_str(),
                    t.name,
                    t.caller_hash_key_sealed,
                    t.created_at
                ],
            ))?;
            insert_key(tx, &k)
        })
        .await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Tenant, StoreError> {
        let id = id.clone();
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {TENANT_COLS} FROM tenants WHERE id = ?1"),
                [id.as_str()],
                read(tenant_row),
            ))
        })
        .await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare(&format!("SELECT {TENANT_COLS} FROM tenants ORDER BY id"))
                .map_err(map_err)?;
            all(st.query_map([], read(tenant_row)).map_err(map_err)?)
        })
        .await
    }

    async fn active_key(&self, tenant: &TenantId) -> Result<TenantKey, StoreError> {
        let tenant = tenant.clone();
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {KEY_COLS} FROM tenant_keys WHERE tenant = ?1 AND active = 1"),
                [tenant.as_str()],
                read(key_row),
            ))
        })
        .await
    }

    async fn get_key(&self, tenant: &TenantId, key_id: i64) -> Result<TenantKey, StoreError> {
        let tenant = tenant.clone();
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {KEY_COLS} FROM tenant_keys WHERE tenant = ?1 AND key_id = ?2"),
                params![tenant.as_str(), key_id],
                read(key_row),
            ))
        })
        .await
    }

    async fn rotate_key(&self, k: &TenantKey) -> Result<(), StoreError> {
        let k = k.clone();
        self.write(move |tx| {
            one(tx.execute(
                "UPDATE tenant_keys SET active = 0 WHERE tenant = ?1",
                [k.tenant.as_str()],
            ))?;
            insert_key(tx, &k)
        })
        .await
    }

    async fn next_key_id(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        let tenant = tenant.clone();
        self.read(move |c| {
            one(c.query_row(
                "SELECT COALESCE(MAX(key_id), 0) + 1 FROM tenant_keys WHERE tenant = ?1",
                [tenant.as_str()],
                |r| r.get(0),
            ))
        })
        .await
    }

    async fn create_user(&self, u: &User) -> Result<(), StoreError> {
        let u = u.clone();
        self.write(move |tx| {
            one(tx.execute(
                &format!("INSERT INTO users ({USER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                params![
                    u.id.to_string(),
                    u.username.as_str(),
                    u.tenant.as_ref().map(|t| t.as_str().to_owned()),
                    u.role.as_str(),
                    u.password_hash,
                    u.must_change_password,
                    u.totp_sealed,
                    u.totp_last_step.map(u64_to_i64),
                    u.failed_logins,
                    u.locked_until,
                    u.disabled,
                    u.created_at
                ],
            ))
            .map(drop)
        })
        .await
    }

    async fn get_user(&self, id: &UserId) -> Result<User, StoreError> {
        let id = id.to_string();
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {USER_COLS} FROM users WHERE id = ?1"),
                [id],
                read(user_row),
            ))
        })
        .await
    }

    async fn get_user_by_name(&self, name: &Username) -> Result<User, StoreError> {
        let name = name.as_str().to_owned();
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {USER_COLS} FROM users WHERE username = ?1"),
                [name],
                read(user_row),
            ))
        })
        .await
    }

    async fn list_users(&self, tenant: Option<&TenantId>) -> Result<Vec<User>, StoreError> {
        self.rows_of(
            format!(
                "SELECT {USER_COLS} FROM users WHERE ?1 IS NULL OR tenant = ?1 ORDER BY username"
            ),
            tenant.map(|t| t.as_str().to_owned()),
            user_row,
        )
        .await
    }

    async fn update_user(&self, u: &User) -> Result<(), StoreError> {
        let u = u.clone();
        self.write(move |tx| {
            changed(one(tx.execute(
                "UPDATE users SET tenant = ?2, role = ?3, password_hash = ?4, must_change_password = ?5, totp_sealed = ?6, totp_last_step = ?7, failed_logins = ?8, locked_until = ?9, disabled = ?10 WHERE id = ?1",
                params![
                    u.id.to_string(),
                    u.tenant.as_ref().map(|t| t.as_str().to_owned()),
                    u.role.as_str(),
                    u.password_hash,
                    u.must_change_password,
                    u.totp_sealed,
                    u.totp_last_step.map(u64_to_i64),
                    u.failed_logins,
                    u.locked_until,
                    u.disabled
                ],
            ))?)
        })
        .await
    }

    async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        let s = s.clone();
        self.write(move |tx| {
            one(tx.execute(
                &format!("INSERT INTO sessions ({SESSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    s.hash.to_vec(),
                    s.user_id.to_string(),
                    s.stage.as_str(),
                    s.pending_totp_sealed,
                    s.created_at,
                    s.last_seen
                ],
            ))
            .map(drop)
        })
        .await
    }

    async fn get_session(&self, hash: &[u8; 32]) -> Result<Session, StoreError> {
        let hash = hash.to_vec();
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {SESSION_COLS} FROM sessions WHERE hash = ?1"),
                [hash],
                read(session_row),
            ))
        })
        .await
    }

    async fn update_session(&self, s: &Session) -> Result<(), StoreError> {
        let s = s.clone();
        self.write(move |tx| {
            changed(one(tx.execute(
                "UPDATE sessions SET stage = ?2, pending_totp_sealed = ?3, last_seen = ?4 WHERE hash = ?1",
                params![s.hash.to_vec(), s.stage.as_str(), s.pending_totp_sealed, s.last_seen],
            ))?)
        })
        .await
    }

    async fn delete_session(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        let hash = hash.to_vec();
        self.write(move |tx| {
            one(tx.execute("DELETE FROM sessions WHERE hash = ?1", [hash])).map(drop)
        })
        .await
    }

    async fn delete_user_sessions(&self, user: &UserId) -> Result<(), StoreError> {
        let user = user.to_string();
        self.write(move |tx| {
            one(tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user])).map(drop)
        })
        .await
    }

    async fn create_token(&self, t: &ApiToken) -> Result<(), StoreError> {
        let t = t.clone();
        self.write(move |tx| {
            one(tx.execute(
                &format!("INSERT INTO api_tokens ({TOKEN_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    t.id,
                    t.hash.to_vec(),
                    t.name,
                    t.tenant.as_ref().map(|x| x.as_str().to_owned()),
                    t.role.as_str(),
                    t.created_by,
                    t.created_at,
                    t.expires_at,
                    t.revoked_at
                ],
            ))
            .map(drop)
        })
        .await
    }

    async fn get_token_by_hash(&self, hash: &[u8; 32]) -> Result<ApiToken, StoreError> {
        let hash = hash.to_vec();
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE hash = ?1"),
                [hash],
                read(token_row),
            ))
        })
        .await
    }

    async fn list_tokens(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiToken>, StoreError> {
        self.rows_of(format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE ?1 IS NULL OR tenant = ?1 ORDER BY created_at, id"), tenant.map(|t| t.as_str().to_owned()), token_row)
            .await
    }

    async fn revoke_token(&self, id: &str, at: i64) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write(move |tx| {
            changed(one(tx.execute(
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                params![id, at],
            ))?)
        })
        .await
    }

    async fn insert_recordings(&self, rows: &[Recording]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = rows.to_vec();
        // One statement, prepared once, run per row inside the one write transaction: an error
        // returns before the commit, and dropping the transaction rolls every row back.
        self.write(move |tx| insert_recording_rows(tx, &rows)).await
    }

    async fn get_recording(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
    ) -> Result<Recording, StoreError> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_string());
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {REC_COLS} FROM recordings WHERE tenant = ?1 AND id = ?2"),
                [tenant, id],
                read(rec_row),
            ))
        })
        .await
    }

    async fn search_recordings(
        &self,
        tenant: &TenantId,
        f: &RecordingFilter,
    ) -> Result<Vec<Recording>, StoreError> {
        let (tenant, f) = (tenant.as_str().to_owned(), f.clone());
        self.read(move |c| {
            let (sql, args) = search_sql(tenant, &f);
            let mut st = c.prepare_cached(&sql).map_err(map_err)?;
            all(st
                .query_map(rusqlite::params_from_iter(args), read(rec_row))
                .map_err(map_err)?)
        })
        .await
    }

    async fn count_recordings(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            one(c.query_row("SELECT COUNT(*) FROM recordings", [], |r| {
                r.get::<_, i64>(0)
            }))
            .map(|n| n as u64)
        })
        .await
    }

    async fn user_language(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        let id = user.to_string();
        self.read(move |c| {
            one(
                c.query_row("SELECT language FROM users WHERE id = ?1", [id], |r| {
                    r.get(0)
                }),
            )
        })
        .await
    }

    async fn set_user_language(&self, user: &UserId, language: &str) -> Result<(), StoreError> {
        let (id, lang) = (user.to_string(), language.to_owned());
        self.write(move |tx| {
            changed(one(tx.execute(
                "UPDATE users SET language = ?2 WHERE id = ?1",
                params![id, lang],
            ))?)
        })
        .await
    }

    async fn put_peaks(&self, recording: &RecordingId, peaks_enc: &[u8]) -> Result<(), StoreError> {
        let (id, enc) = (recording.to_string(), peaks_enc.to_vec());
        self.write(move |tx| {
            one(tx.execute(
                "INSERT INTO recording_peaks (recording, peaks_enc) VALUES (?1, ?2)
                 ON CONFLICT (recording) DO UPDATE SET peaks_enc = excluded.peaks_enc",
                params![id, enc],
            ))
            .and_then(changed)
        })
        .await
    }

    async fn add_parties(
        &self,
        tenant: &TenantId,
        recording: &RecordingId,
        parties: &[Party],
    ) -> Result<(), StoreError> {
        let (t, id, parties) = (tenant.to_string(), recording.to_string(), parties.to_vec());
        self.write(move |tx| {
            let mut add = tx
                .prepare_cached(&format!(
                    "INSERT INTO recording_parties (recording, tenant, {PARTY_COLS}) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (recording, number_hash) DO NOTHING"
                ))
                .map_err(map_err)?;
            for p in &parties {
                one(add.execute(params![id, t, p.number_hash.to_vec(), p.number_enc]))?;
            }
            Ok(())
        })
        .await
    }

    async fn parties(
        &self,
        tenant: &TenantId,
        recording: &RecordingId,
    ) -> Result<Vec<Party>, StoreError> {
        let (t, id) = (tenant.to_string(), recording.to_string());
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {PARTY_COLS} FROM recording_parties WHERE tenant = ?1 AND recording = ?2
                     ORDER BY number_hash"
                ))
                .map_err(map_err)?;
            all(st
                .query_map(params![t, id], read(party_row))
                .map_err(map_err)?)
        })
        .await
    }

    async fn get_peaks(
        &self,
        tenant: &TenantId,
        recording: &RecordingId,
    ) -> Result<Vec<u8>, StoreError> {
        let (t, id) = (tenant.to_string(), recording.to_string());
        self.read(move |c| {
            one(c.query_row(
                "SELECT p.peaks_enc FROM recording_peaks p JOIN recordings r ON r.id = p.recording
                 WHERE r.tenant = ?1 AND p.recording = ?2",
                params![t, id],
                |r| r.get(0),
            ))
        })
        .await
    }

    async fn recordings_per_day(
        &self,
        tenant: Option<&TenantId>,
        since: i64,
    ) -> Result<Vec<DailyRecordings>, StoreError> {
        let t = tenant.map(|t| t.to_string());
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT created_at / ?1 AS day, COUNT(*), COALESCE(SUM(size), 0) FROM recordings
                     WHERE created_at >= ?2 AND (?3 IS NULL OR tenant = ?3)
                     GROUP BY day ORDER BY day",
                )
                .map_err(map_err)?;
            all(st
                .query_map(params![DAY_SECS, since, t], read(daily_recordings_row))
                .map_err(map_err)?)
        })
        .await
    }

    async fn actions_per_day(
        &self,
        action: &str,
        tenant: Option<&TenantId>,
        since: i64,
    ) -> Result<Vec<DailyActions>, StoreError> {
        let (a, t) = (action.to_owned(), tenant.map(|t| t.to_string()));
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT time_ns / ?1 AS day, actor, COUNT(*) FROM audit
                     WHERE action = ?2 AND time_ns >= ?3 AND (?4 IS NULL OR tenant = ?4)
                     GROUP BY day, actor ORDER BY day, actor",
                )
                .map_err(map_err)?;
            all(st
                .query_map(
                    params![
                        DAY_SECS * 1_000_000_000,
                        a,
                        since.saturating_mul(1_000_000_000),
                        t
                    ],
                    read(daily_actions_row),
                )
                .map_err(map_err)?)
        })
        .await
    }

    async fn create_grant(&self, g: &Grant) -> Result<(), StoreError> {
        let g = g.clone();
        self.write(move |tx| {
            one(tx.execute(
                &format!("INSERT INTO grants ({GRANT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    g.hash.to_vec(),
                    g.recording.to_string(),
                    g.tenant.as_str(),
                    g.user_id.to_string(),
                    g.purpose,
                    g.expires_at
                ],
            ))
            .map(drop)
        })
        .await
    }

    async fn get_grant(&self, hash: &[u8; 32]) -> Result<Grant, StoreError> {
        let hash = hash.to_vec();
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {GRANT_COLS} FROM grants WHERE hash = ?1"),
                [hash],
                read(grant_row),
            ))
        })
        .await
    }

    async fn append_audit(&self, entries: Vec<Entry>) -> Result<Vec<StoredEntry>, StoreError> {
        self.write(move |tx| {
            let head: Option<(i64, Vec<u8>)> = one(
                tx.query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional(),
            )?;
            let (mut seq, mut prev) = match head {
                Some((s, h)) => audit_link(s, h)?,
                None => (0, callvault_audit::GENESIS),
            };
            let mut st = tx
                .prepare_cached(&format!("INSERT INTO audit ({AUDIT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"))
                .map_err(map_err)?;
            let mut out = Vec::with_capacity(entries.len());
            for entry in entries {
                seq += 1;
                let hash = chain_hash(&prev, seq, &entry);
                st.execute(params![
                    u64_to_i64(seq),
                    ns(entry.time),
                    entry.actor,
                    entry.tenant,
                    entry.action,
                    entry.target,
                    entry.purpose,
                    entry.result,
                    entry.client,
                    entry.details,
                    hash.0.to_vec()
                ])
                .map_err(map_err)?;
                prev = hash;
                out.push(StoredEntry { seq, entry, hash });
            }
            Ok(out)
        })
        .await
    }

    async fn audit_head(&self) -> Result<Option<StoredEntry>, StoreError> {
        self.read(|c| {
            one(c
                .query_row(
                    &format!("SELECT {AUDIT_COLS} FROM audit ORDER BY seq DESC LIMIT 1"),
                    [],
                    read(audit_row),
                )
                .optional())
        })
        .await
    }

    async fn audit_range(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {AUDIT_COLS} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2"
                ))
                .map_err(map_err)?;
            all(st
                .query_map(params![u64_to_i64(after_seq), limit], read(audit_row))
                .map_err(map_err)?)
        })
        .await
    }

    async fn audit_query(&self, f: &AuditFilter) -> Result<Vec<StoredEntry>, StoreError> {
        let f = f.clone();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {AUDIT_COLS} FROM audit WHERE seq > ?1
                       AND (?2 IS NULL OR tenant = ?2) AND (?3 IS NULL OR action = ?3)
                       AND (?4 IS NULL OR actor = ?4) AND (?5 IS NULL OR target = ?5)
                     ORDER BY seq LIMIT ?6"
                ))
                .map_err(map_err)?;
            all(st
                .query_map(
                    params![
                        u64_to_i64(f.after_seq),
                        f.tenant,
                        f.action,
                        f.actor,
                        f.target,
                        f.limit
                    ],
                    read(audit_row),
                )
                .map_err(map_err)?)
        })
        .await
    }

    async fn insert_checkpoint(&self, cp: &Checkpoint) -> Result<(), StoreError> {
        let cp = cp.clone();
        self.write(move |tx| {
            one(tx.execute(
                &format!(
                    "INSERT INTO audit_checkpoints ({CHECKPOINT_COLS}) VALUES (?1, ?2, ?3, ?4)"
                ),
                params![
                    u64_to_i64(cp.seq),
                    cp.hash.0.to_vec(),
                    ns(cp.time),
                    cp.signature.to_vec()
                ],
            ))
            .map(drop)
        })
        .await
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {CHECKPOINT_COLS} FROM audit_checkpoints ORDER BY seq"
                ))
                .map_err(map_err)?;
            all(st.query_map([], read(checkpoint_row)).map_err(map_err)?)
        })
        .await
    }

    async fn put_recording_policy(&self, p: &RecordingPolicy) -> Result<(), StoreError> {
        let p = p.clone();
        self.write(move |tx| {
            one(tx.execute(
                &format!("INSERT OR REPLACE INTO recording_policies ({POLICY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![p.tenant.as_str(), p.queue, p.record, p.parties, p.retention_class, p.updated_by, p.updated_at],
            ))
            .map(drop)
        })
        .await
    }

    async fn recording_policies(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<RecordingPolicy>, StoreError> {
        self.rows_of(
            format!(
                "SELECT {POLICY_COLS} FROM recording_policies WHERE tenant = ?1 ORDER BY queue"
            ),
            Some(tenant.as_str().to_owned()),
            policy_row,
        )
        .await
    }

    async fn put_retention_rule(&self, r: &RetentionRule) -> Result<(), StoreError> {
        let r = r.clone();
        self.write(move |tx| {
            one(tx.execute(
                &format!("INSERT OR REPLACE INTO retention_rules ({RULE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![r.tenant.as_str(), r.scope.as_str(), r.value, r.days, r.updated_by, r.updated_at],
            ))
            .map(drop)
        })
        .await
    }

    async fn retention_rules(&self, tenant: &TenantId) -> Result<Vec<RetentionRule>, StoreError> {
        self.rows_of(
            format!(
                "SELECT {RULE_COLS} FROM retention_rules WHERE tenant = ?1 ORDER BY scope, value"
            ),
            Some(tenant.as_str().to_owned()),
            rule_row,
        )
        .await
    }

    async fn create_hold(&self, h: &LegalHold) -> Result<(), StoreError> {
        let h = h.clone();
        self.write(move |tx| {
            let c = hold_cells(&h.scope);
            one(tx.execute(
                &format!("INSERT INTO legal_holds ({HOLD_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
                params![
                    h.id, h.tenant.as_str(), c.kind, c.recording, c.caller_hash, c.queue, c.agent_id,
                    c.from, c.to, h.reason, h.created_by, h.created_at, h.until, h.lifted_by, h.lifted_at
                ],
            ))
            .map(drop)
        })
        .await
    }

    async fn holds(&self, tenant: &TenantId) -> Result<Vec<LegalHold>, StoreError> {
        self.rows_of(
            format!(
                "SELECT {HOLD_COLS} FROM legal_holds WHERE tenant = ?1 ORDER BY created_at, id"
            ),
            Some(tenant.as_str().to_owned()),
            hold_row,
        )
        .await
    }

    async fn lift_hold(
        &self,
        tenant: &TenantId,
        id: &str,
        by: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let (tenant, id, by) = (tenant.as_str().to_owned(), id.to_owned(), by.to_owned());
        self.write(move |tx| {
            changed(one(tx.execute(
                "UPDATE legal_holds SET lifted_by = ?3, lifted_at = ?4 WHERE tenant = ?1 AND id = ?2 AND lifted_at IS NULL",
                params![tenant, id, by, at],
            ))?)
        })
        .await
    }

    async fn is_held(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_string());
        self.read(move |c| {
            let free: Option<i64> = one(c
                .query_row(
                    &format!(
                        "SELECT 1 FROM recordings r WHERE r.tenant = ?1 AND r.id = ?2 AND {}",
                        not_held("?3")
                    ),
                    params![tenant, id, now],
                    |r| r.get(0),
                )
                .optional())?;
            Ok(free.is_none())
        })
        .await
    }

    async fn expired_recordings(
        &self,
        tenant: &TenantId,
        now: i64,
        after: Option<(i64, RecordingId)>,
        limit: u32,
    ) -> Result<Vec<Expired>, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let (after_t, after_id) = match after {
            Some((t, id)) => (t, id.to_string()),
            None => (EXPIRED_START.0, EXPIRED_START.1.to_owned()),
        };
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&expired_sql("?1", "?2", "?3", "?4", "?5"))
                .map_err(map_err)?;
            all(st
                .query_map(
                    params![tenant, now, after_t, after_id, limit],
                    read(expired_row),
                )
                .map_err(map_err)?)
        })
        .await
    }

    async fn erase_recordings(
        &self,
        tenant: &TenantId,
        ids: &[RecordingId],
        now: i64,
        cause: ErasureCause,
    ) -> Result<Vec<Expired>, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let erased = self
            .write(move |tx| {
                let mut find = tx
                    .prepare_cached(&format!(
                        "SELECT r.id, r.blob, r.started_at FROM recordings r WHERE r.tenant = ?1 AND r.id = ?2 AND {}",
                        not_held("?3")
                    ))
                    .map_err(map_err)?;
                let mut grants = tx
                    .prepare_cached("DELETE FROM grants WHERE recording = ?1")
                    .map_err(map_err)?;
                let mut row = tx
                    .prepare_cached("DELETE FROM recordings WHERE id = ?1")
                    .map_err(map_err)?;
                let mut parties = tx
                    .prepare_cached("DELETE FROM recording_parties WHERE recording = ?1")
                    .map_err(map_err)?;
                let mut tomb = tx
                    .prepare_cached("INSERT INTO erasures (recording, tenant, erased_at, cause) VALUES (?1, ?2, ?3, ?4)")
                    .map_err(map_err)?;
                let mut queue = tx
                    .prepare_cached("INSERT OR IGNORE INTO blob_deletions (blob, queued_at) VALUES (?1, ?2)")
                    .map_err(map_err)?;
                let mut out = Vec::new();
                for id in &ids {
                    let Some(e) = one(find
                        .query_row(params![tenant, id, now], read(expired_row))
                        .optional())?
                    else {
                        continue;
                    };
                    grants.execute([id]).map_err(map_err)?;
                    row.execute([id]).map_err(map_err)?;
                    parties.execute([id]).map_err(map_err)?;
                    tomb.execute(params![id, tenant, now, cause.as_str()])
                        .map_err(map_err)?;
                    queue.execute(params![e.blob.to_string(), now])
                        .map_err(map_err)?;
                    out.push(e);
                }
                Ok(out)
            })
            .await?;
        if !erased.is_empty() {
            // The old row, header included, may still sit in the write-ahead log until a
            // checkpoint copies the zeroed page over it; truncate the log now.
            let inner = self.inner.clone();
            tokio::task::spawn_blocking(move || {
                let c = lock(&inner.writer)?;
                one(c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
            })
            .await??;
        }
        Ok(erased)
    }

    async fn pending_blob_deletions(&self, limit: u32) -> Result<Vec<BlobName>, StoreError> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached("SELECT blob FROM blob_deletions ORDER BY queued_at, blob LIMIT ?1")
                .map_err(map_err)?;
            all(st.query_map([limit], read(blob_row)).map_err(map_err)?)
        })
        .await
    }

    async fn blob_deletions_done(&self, blobs: &[BlobName]) -> Result<(), StoreError> {
        let blobs: Vec<String> = blobs.iter().map(ToString::to_string).collect();
        self.write(move |tx| {
            let mut st = tx
                .prepare_cached("DELETE FROM blob_deletions WHERE blob = ?1")
                .map_err(map_err)?;
            for b in &blobs {
                st.execute([b]).map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn create_erasure_request(&self, r: &ErasureRequest) -> Result<(), StoreError> {
        let r = r.clone();
        self.write(move |tx| {
            one(tx.execute(
                &format!("INSERT INTO erasure_requests ({ERASURE_REQ_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![
                    r.id, r.tenant.as_str(), r.caller_hash.to_vec(), r.reason, r.requested_by,
                    r.requested_at, r.approved_by, r.approved_at
                ],
            ))
            .map(drop)
        })
        .await
    }

    async fn get_erasure_request(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<ErasureRequest, StoreError> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        self.read(move |c| {
            one(c.query_row(
                &format!(
                    "SELECT {ERASURE_REQ_COLS} FROM erasure_requests WHERE tenant = ?1 AND id = ?2"
                ),
                [tenant, id],
                read(erasure_request_row),
            ))
        })
        .await
    }

    async fn erasure_requests(&self, tenant: &TenantId) -> Result<Vec<ErasureRequest>, StoreError> {
        self.rows_of(format!("SELECT {ERASURE_REQ_COLS} FROM erasure_requests WHERE tenant = ?1 ORDER BY requested_at, id"), Some(tenant.as_str().to_owned()), erasure_request_row)
            .await
    }

    async fn approve_erasure_request(
        &self,
        tenant: &TenantId,
        id: &str,
        by: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let (tenant, id, by) = (tenant.as_str().to_owned(), id.to_owned(), by.to_owned());
        self.write(move |tx| {
            let n = one(tx.execute(
                "UPDATE erasure_requests SET approved_by = ?3, approved_at = ?4
                 WHERE tenant = ?1 AND id = ?2 AND approved_by IS NULL AND requested_by <> ?3",
                params![tenant, id, by, at],
            ))?;
            if n > 0 {
                return Ok(());
            }
            let exists: Option<i64> = one(tx
                .query_row(
                    "SELECT 1 FROM erasure_requests WHERE tenant = ?1 AND id = ?2",
                    [&tenant, &id],
                    |r| r.get(0),
                )
                .optional())?;
            Err(match exists {
                Some(_) => StoreError::Conflict(APPROVAL_REFUSED.into()),
                None => StoreError::NotFound,
            })
        })
        .await
    }

    async fn recordings_without_caller_hash(
        &self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<Recording>, StoreError> {
        let tenant = tenant.as_str().to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {REC_COLS} FROM recordings WHERE tenant = ?1 AND caller_hash IS NULL AND caller_enc IS NOT NULL LIMIT ?2"
                ))
                .map_err(map_err)?;
            all(st.query_map(params![tenant, limit], read(rec_row)).map_err(map_err)?)
        })
        .await
    }

    async fn set_caller_hash(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
        hash: &[u8; 32],
    ) -> Result<(), StoreError> {
        let (tenant, id, hash) = (tenant.as_str().to_owned(), id.to_string(), hash.to_vec());
        self.write(move |tx| {
            changed(one(tx.execute(
                "UPDATE recordings SET caller_hash = ?3 WHERE tenant = ?1 AND id = ?2 AND caller_hash IS NULL",
                params![tenant, id, hash],
            ))?)
        })
        .await
    }

    async fn tenant_stats(
        &self,
        tenant: &TenantId,
        since: i64,
        now: i64,
    ) -> Result<TenantStats, StoreError> {
        let tenant = tenant.as_str().to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT retention_class, COUNT(*), MIN(started_at) FROM recordings WHERE tenant = ?1 GROUP BY retention_class",
                )
                .map_err(map_err)?;
            let classes = all(st
                .query_map([&tenant], |r| {
                    Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                })
                .map_err(map_err)?)?;
            let active_holds = one(c.query_row(
                "SELECT COUNT(*) FROM legal_holds WHERE tenant = ?1 AND lifted_at IS NULL AND (hold_until IS NULL OR hold_until > ?2)",
                params![tenant, now],
                |r| r.get(0),
            ))?;
            let erased = one(c.query_row(
                "SELECT COUNT(*) FROM erasures WHERE tenant = ?1 AND erased_at >= ?2 AND erased_at <= ?3",
                params![tenant, since, now],
                |r| r.get(0),
            ))?;
            Ok(stats(classes, active_holds, erased))
        })
        .await
    }

    async fn create_live_call(&self, c: &LiveCall, k: &LiveKey) -> Result<(), StoreError> {
        let (c, k) = (c.clone(), k.clone());
        self.write(move |tx| {
            one(tx.execute(
                &format!("INSERT INTO live_calls ({LIVE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"),
                params![
                    c.id.to_string(),
                    c.tenant.as_str(),
                    c.key_id,
                    c.codec,
                    c.sample_rate,
                    c.channels,
                    c.frame_bytes,
                    c.started_at,
                    c.direction.as_str(),
                    c.caller_hash.map(|h| h.to_vec()),
                    c.caller_enc,
                    c.agent_id,
                    c.queue,
                    c.external_call_id,
                    c.state.as_str(),
                    c.total_chunks.map(u64_to_i64),
                    c.gaps,
                    c.updated_at,
                    c.created_at
                ],
            ))?;
            insert_live_key(tx, &k)
        })
        .await
    }

    async fn get_live_call(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
    ) -> Result<LiveCall, StoreError> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_string());
        let inner = self.inner.clone();
        self.read(move |c| {
            let call = one(c.query_row(
                &format!("SELECT {LIVE_COLS} FROM live_calls WHERE tenant = ?1 AND id = ?2"),
                [tenant, id],
                read(live_row),
            ))?;
            let mut calls = inner.with_last_append(c, vec![call])?;
            calls.pop().ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn add_live_key(&self, k: &LiveKey) -> Result<(), StoreError> {
        let k = k.clone();
        self.write(move |tx| insert_live_key(tx, &k)).await
    }

    async fn live_keys(&self, call: &RecordingId) -> Result<Vec<LiveKey>, StoreError> {
        let call = call.to_string();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT call, key_no, wrapped FROM live_keys WHERE call = ?1 ORDER BY key_no",
                )
                .map_err(map_err)?;
            all(st.query_map([call], read(live_key_row)).map_err(map_err)?)
        })
        .await
    }

    async fn append_live_chunks(
        &self,
        chunks: &[LiveChunk],
        now: i64,
    ) -> Result<Vec<ChunkOutcome>, StoreError> {
        let chunks = chunks.to_vec();
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let i = inner.next.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let c = lock(&inner.readers[i])?;
            let mut open = c
                .prepare_cached("SELECT 1 FROM live_calls WHERE id = ?1 AND state = 'open'")
                .map_err(map_err)?;
            // The openness check and the `fdatasync` happen under one hold of the journal
            // lock, and every reader of chunks takes that lock: a chunk that passed the check
            // before its call closed is durable before anyone can look for it after the close.
            // State changes never wait for appends, nor appends for SQLite commits (whose
            // fsync, when a gate held it, was the ack tail under load).
            inner.with_journal(&c, |j| {
                j.append(&chunks, now, |call| {
                    open.exists([call.to_string()]).map_err(map_err)
                })
            })
        })
        .await?
    }

    async fn live_chunk_seqs(&self, call: &RecordingId) -> Result<Vec<u64>, StoreError> {
        let (call, inner) = (*call, self.inner.clone());
        self.read(move |c| inner.with_journal(c, |j| Ok(j.seqs(&call))))
            .await
    }

    async fn live_chunks(
        &self,
        call: &RecordingId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<LiveChunk>, StoreError> {
        let (call, inner) = (*call, self.inner.clone());
        self.read(move |c| {
            let found = inner.with_journal(c, |j| Ok(j.locate(&call, from, limit)))?;
            read_located(found)
        })
        .await
    }

    async fn set_live_state(
        &self,
        id: &RecordingId,
        from: LiveState,
        to: LiveState,
        total_chunks: Option<u64>,
        outcome: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (id, outcome) = (id.to_string(), outcome.map(str::to_owned));
        self.write(move |tx| {
            let n = one(tx.execute(
                "UPDATE live_calls SET state = ?3, total_chunks = COALESCE(?4, total_chunks),
                 gaps = COALESCE(?6, gaps), updated_at = ?5
                 WHERE id = ?1 AND state = ?2",
                params![
                    id,
                    from.as_str(),
                    to.as_str(),
                    total_chunks.map(u64_to_i64),
                    now,
                    outcome
                ],
            ))?;
            Ok(n == 1)
        })
        .await
    }

    async fn live_calls_in_state(
        &self,
        state: LiveState,
        before: i64,
        limit: u32,
    ) -> Result<Vec<LiveCall>, StoreError> {
        let inner = self.inner.clone();
        self.read(move |c| {
            // Open calls' last chunks are in the journal, so every candidate is read and
            // judged by it; a limit in SQL could fill up with calls that are still talking.
            let sql_limit = if state == LiveState::Open {
                -1
            } else {
                i64::from(limit)
            };
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {LIVE_COLS} FROM live_calls WHERE state = ?1 AND updated_at < ?2
                     ORDER BY updated_at LIMIT ?3"
                ))
                .map_err(map_err)?;
            let rows = all(st
                .query_map(params![state.as_str(), before, sql_limit], read(live_row))
                .map_err(map_err)?)?;
            let mut calls = inner.with_last_append(c, rows)?;
            calls.retain(|call| call.updated_at < before);
            calls.sort_by_key(|call| call.updated_at);
            calls.truncate(limit as usize);
            Ok(calls)
        })
        .await
    }

    async fn store_live_call(&self, rec: &Recording, gaps: &str) -> Result<(), StoreError> {
        let call = rec.id;
        let (rec, gaps) = (rec.clone(), gaps.to_owned());
        self.write(move |tx| {
            let id = rec.id.to_string();
            let n = one(tx.execute(
                "UPDATE live_calls SET state = 'stored', gaps = ?2
                 WHERE id = ?1 AND state IN ('finished', 'incomplete')",
                params![id, gaps],
            ))?;
            if n == 0 {
                return Err(StoreError::Conflict(
                    "the live call is not waiting to be stored".into(),
                ));
            }
            insert_recording_rows(tx, std::slice::from_ref(&rec))?;
            one(tx.execute("DELETE FROM live_keys WHERE call = ?1", [&id]))?;
            Ok(())
        })
        .await?;
        // After the commit: a crash in between leaves chunks the next open drops (the row
        // says `stored`).
        let inner = self.inner.clone();
        self.read(move |c| {
            inner.with_journal(c, |j| {
                j.drop_call(&call);
                Ok(())
            })
        })
        .await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        // Takes the lease if it is free, expired or already ours: one row changes exactly then.
        const LEASE_SQL: &str = "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?4)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.expires_at <= ?3 OR leases.holder = excluded.holder";
        self.write(move |tx| {
            let n = one(tx.execute(LEASE_SQL, params![name, holder, now, now + ttl_secs]))?;
            Ok(n > 0)
        })
        .await
    }
}

/// Inserts `k` as its tenant's active key (both callers promise that, whatever `k.active` says);
/// the caller has already deactivated any other.
fn insert_key(tx: &rusqlite::Transaction<'_>, k: &TenantKey) -> Result<(), StoreError> {
    one(tx.execute(
        &format!("INSERT INTO tenant_keys ({KEY_COLS}) VALUES (?1, ?2, ?3, ?4, 1, ?5)"),
        params![
            k.tenant.as_str(),
            k.key_id,
            k.recipient,
            k.identity_sealed,
            k.created_at
        ],
    ))
    .map(drop)
}

/// The search query for exactly the criteria `f` gives: fixed SQL fragments with `?`
/// placeholders and their values, in order. A catch-all `(? IS NULL OR col = ?)` would keep the
/// planner from using the index of the one criterion given. The cursor is also written as a
/// plain upper bound on `started_at`, which every index can use, plus the tie-break on `id`.
///
/// A search by number matches the caller or another party: the ids come from the two hash
/// indexes (`recordings_by_caller`, `recording_parties_by_number`) and are looked up by primary
/// key, then sorted. The outer `+tenant` keeps SQLite (which has no statistics) from walking the
/// tenant's whole time index instead, testing every row against the id list.
fn search_sql(tenant: String, f: &RecordingFilter) -> (String, Vec<Value>) {
    let tenant_term = if f.caller_hash.is_some() {
        "+tenant"
    } else {
        "tenant"
    };
    let mut sql = format!("SELECT {REC_COLS} FROM recordings WHERE {tenant_term} = ?");
    let mut args = vec![Value::Text(tenant.clone())];
    if let Some(from) = f.from {
        sql.push_str(" AND started_at >= ?");
        args.push(Value::Integer(from));
    }
    if let Some(to) = f.to {
        sql.push_str(" AND started_at < ?");
        args.push(Value::Integer(to));
    }
    if let Some(queue) = &f.queue {
        sql.push_str(" AND queue = ?");
        args.push(Value::Text(queue.clone()));
    }
    if let Some(agent) = &f.agent_id {
        sql.push_str(" AND agent_id = ?");
        args.push(Value::Text(agent.clone()));
    }
    if let Some(hash) = f.caller_hash {
        sql.push_str(
            " AND id IN (SELECT id FROM recordings WHERE tenant = ? AND caller_hash = ?
               UNION ALL SELECT recording FROM recording_parties WHERE tenant = ? AND number_hash = ?)",
        );
        args.extend([
            Value::Text(tenant.clone()),
            Value::Blob(hash.to_vec()),
            Value::Text(tenant),
            Value::Blob(hash.to_vec()),
        ]);
    }
    if let Some((t, id)) = &f.after {
        sql.push_str(" AND started_at <= ? AND (started_at < ? OR id < ?)");
        args.extend([
            Value::Integer(*t),
            Value::Integer(*t),
            Value::Text(id.to_string()),
        ]);
    }
    sql.push_str(" ORDER BY started_at DESC, id DESC LIMIT ?");
    args.push(Value::Integer(i64::from(f.limit)));
    (sql, args)
}
