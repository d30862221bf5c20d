//! PostgreSQL adapter: for deployments where several callvault nodes share one database.
//!
//! A small connection pool (deadpool) over tokio-postgres, TLS by rustls as [`tls`] sets out.
//! Two things need care because other nodes write to the same database:
//! * Migrations run at open in one transaction holding an advisory lock, so nodes starting
//!   together apply each migration exactly once, and a database newer than this binary is
//!   refused before anything is written.
//! * `append_audit` holds another advisory lock from reading the chain head to commit, so
//!   appends from every node form one chain with contiguous sequence numbers.
//!
//! Rows are read by the shared readers in `rows`; this file only binds parameters and runs SQL.

use super::rows::*;
use super::{MetaBackend, Sealed};
use crate::StoreError;
use crate::model::*;
use callvault_audit::{Checkpoint, Entry, GENESIS, StoredEntry, chain_hash};
use callvault_core::{BlobName, RecordingId, TenantId, UserId, Username};
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime, Transaction,
};
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Row};

pub(crate) mod tls;

/// Migrations, in order; the `schema_version` table records which were applied.
const MIGRATIONS: &[&str] = &[
    include_str!("postgres/0001_init.sql"),
    include_str!("postgres/0002_leases.sql"),
    include_str!("postgres/0003_search_indexes.sql"),
    include_str!("postgres/0004_lifecycle.sql"),
    include_str!("postgres/0005_live_calls.sql"),
    include_str!("postgres/0006_console.sql"),
    include_str!("postgres/0007_recording_parties.sql"),
];

// Advisory lock keys: database-wide, so every node using the database contends for the same
// ones. The values are arbitrary but must never change ("cvmigrat" and "cvaudit" in ASCII).
const MIGRATION_LOCK: i64 = 0x6376_6d69_6772_6174;
const AUDIT_LOCK: i64 = 0x0063_7661_7564_6974;

/// Connections per handle (per node). Enough for a busy node; PostgreSQL's default
/// `max_connections = 100` leaves room for a dozen nodes.
const POOL_SIZE: usize = 8;

/// Rows per multi-row INSERT in `insert_recordings`: bounds one statement's parameter arrays
/// (about 1 KB per row) while keeping round trips few.
const INSERT_CHUNK: usize = 1000;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub(super) struct Postgres {
    pool: Pool,
}

impl Sealed for Postgres {}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn map_err(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        // SQLSTATE class 23, integrity constraint violation: a duplicate key above all, but
        // also a foreign key or check. The SQLite adapter reports all of these as Conflict too.
        // The message names the constraint; the key's value (the detail) stays out of logs.
        Some(db) if db.code().code().starts_with("23") => {
            StoreError::Conflict(db.message().to_owned())
        }
        _ => StoreError::Backend(with_causes(&e)),
    }
}

/// tokio-postgres prints only the kind of a failure ("error performing TLS handshake"); the
/// reason an operator needs ("invalid peer certificate: UnknownIssuer") is in its sources.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let msg = c.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cause = c.source();
    }
    out
}

impl Cells for Row {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.try_get(i).map_err(map_err)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.try_get(i).map_err(map_err)
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.try_get(i).map_err(map_err)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.try_get(i).map_err(map_err)
    }
    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        self.try_get(i).map_err(map_err)
    }
    fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.try_get(i).map_err(map_err)
    }
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        self.try_get(i).map_err(map_err)
    }
}

/// Starts a READ COMMITTED transaction whatever the server's default isolation is:
/// `append_audit` relies on each statement seeing everything committed before it began, in
/// particular the entries of the node that held the audit lock just before.
async fn begin(c: &mut Object) -> Result<Transaction<'_>, StoreError> {
    c.build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(map_err)
}

/// Runs one statement inside `tx`; returns how many rows it changed.
async fn tx_exec(tx: &Transaction<'_>, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
    let st = tx.prepare_cached(sql).await.map_err(map_err)?;
    tx.execute(&st, params).await.map_err(map_err)
}

async fn lock(tx: &Transaction<'_>, key: i64) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])
        .await
        .map(drop)
        .map_err(map_err)
}

fn changed(n: u64) -> Result<(), StoreError> {
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

impl Postgres {
    pub(super) async fn open(url: &str) -> Result<Self, StoreError> {
        let target = tls::parse(url)?;
        let connector = target.connector()?;
        let manager = Manager::from_config(
            target.config,
            connector,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(15)))
            .wait_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(backend)?;
        let pg = Self { pool };
        pg.migrate().await?;
        Ok(pg)
    }

    async fn conn(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => map_err(e),
            other => backend(format!("PostgreSQL connection pool: {other}")),
        })
    }

    /// Applies pending migrations. The advisory lock is held to commit, so a second node
    /// opening at the same time waits and then finds nothing left to do.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = begin(&mut c).await?;
        lock(&tx, MIGRATION_LOCK).await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await
        .map_err(map_err)?;
        let found: i64 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
            .await
            .map_err(map_err)?
            .int(0)?;
        let supported = MIGRATIONS.len() as i64;
        if found > supported {
            // Dropping `tx` rolls back: a refused database is left exactly as it was.
            return Err(StoreError::SchemaTooNew { found, supported });
        }
        let applied = usize::try_from(found)
            .map_err(|_| StoreError::Corrupt(format!("schema_version {found}")))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            tx.batch_execute(sql).await.map_err(map_err)?;
            tx.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES ($1, extract(epoch FROM now())::BIGINT)",
                &[&(i as i64 + 1)],
            )
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    /// Runs one statement on its own (autocommit); returns how many rows it changed.
    async fn exec(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        let c = self.conn().await?;
        let st = c.prepare_cached(sql).await.map_err(map_err)?;
        c.execute(&st, params).await.map_err(map_err)
    }

    /// The one row `sql` returns, read by `read`; `NotFound` if there is none.
    async fn one<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        read: fn(&dyn Cells) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.opt(sql, params, read)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn opt<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        read: fn(&dyn Cells) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let c = self.conn().await?;
        let st = c.prepare_cached(sql).await.map_err(map_err)?;
        match c.query_opt(&st, params).await.map_err(map_err)? {
            Some(row) => read(&row).map(Some),
            None => Ok(None),
        }
    }

    async fn all<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        read: fn(&dyn Cells) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let c = self.conn().await?;
        let st = c.prepare_cached(sql).await.map_err(map_err)?;
        let rows = c.query(&st, params).await.map_err(map_err)?;
        rows.iter().map(|r| read(r)).collect()
    }
}

/// Inserts `k` as its tenant's active key (both callers promise that, whatever `k.active` says);
/// the caller has already deactivated any other.
async fn insert_key(tx: &Transaction<'_>, k: &TenantKey) -> Result<(), StoreError> {
    tx_exec(
        tx,
        &format!("INSERT INTO tenant_keys ({KEY_COLS}) VALUES ($1, $2, $3, $4, TRUE, $5)"),
        &[
            &k.tenant.as_str(),
            &k.key_id,
            &k.recipient,
            &k.identity_sealed,
            &k.created_at,
        ],
    )
    .await
    .map(drop)
}

/// Inserts recordings inside the caller's transaction.
async fn insert_recording_rows(tx: &Transaction<'_>, rows: &[Recording]) -> Result<(), StoreError> {
    // Chunks of one multi-row INSERT each (one array per column), all in one transaction:
    // the first refused row fails its statement, and dropping `tx` rolls everything back.
    for chunk in rows.chunks(INSERT_CHUNK) {
        let ids: Vec<String> = chunk.iter().map(|r| r.id.to_string()).collect();
        let tenants: Vec<&str> = chunk.iter().map(|r| r.tenant.as_str()).collect();
        let blobs: Vec<String> = chunk.iter().map(|r| r.blob.to_string()).collect();
        let headers: Vec<&[u8]> = chunk.iter().map(|r| r.header.as_slice()).collect();
        let key_ids: Vec<i64> = chunk.iter().map(|r| r.key_id).collect();
        let containers: Vec<&str> = chunk.iter().map(|r| r.container.as_str()).collect();
        let codecs: Vec<&str> = chunk.iter().map(|r| r.codec.as_str()).collect();
        let channels: Vec<i64> = chunk.iter().map(|r| i64::from(r.channels)).collect();
        let rates: Vec<i64> = chunk.iter().map(|r| i64::from(r.sample_rate)).collect();
        let durations: Vec<i64> = chunk.iter().map(|r| u64_to_i64(r.duration_ms)).collect();
        let sizes: Vec<i64> = chunk.iter().map(|r| u64_to_i64(r.size)).collect();
        let started: Vec<i64> = chunk.iter().map(|r| r.started_at).collect();
        let directions: Vec<&str> = chunk.iter().map(|r| r.direction.as_str()).collect();
        let caller_hashes: Vec<Option<&[u8]>> = chunk
            .iter()
            .map(|r| r.caller_hash.as_ref().map(<[u8; 32]>::as_slice))
            .collect();
        let caller_encs: Vec<Option<&[u8]>> =
            chunk.iter().map(|r| r.caller_enc.as_deref()).collect();
        let agents: Vec<Option<&str>> = chunk.iter().map(|r| r.agent_id.as_deref()).collect();
        let queues: Vec<Option<&str>> = chunk.iter().map(|r| r.queue.as_deref()).collect();
        let external: Vec<Option<&str>> = chunk
            .iter()
            .map(|r| r.external_call_id.as_deref())
            .collect();
        let created: Vec<i64> = chunk.iter().map(|r| r.created_at).collect();
        let classes: Vec<Option<&str>> =
            chunk.iter().map(|r| r.retention_class.as_deref()).collect();
        tx_exec(
                tx,
                &format!(
                    "INSERT INTO recordings ({REC_COLS}) SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[],
                       $3::TEXT[], $4::BYTEA[], $5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::BIGINT[],
                       $9::BIGINT[], $10::BIGINT[], $11::BIGINT[], $12::BIGINT[], $13::TEXT[],
                       $14::BYTEA[], $15::BYTEA[], $16::TEXT[], $17::TEXT[], $18::TEXT[], $19::BIGINT[],
                       $20::TEXT[])"
                ),
                &[
                    &ids,
                    &tenants,
                    &blobs,
                    &headers,
                    &key_ids,
                    &containers,
                    &codecs,
                    &channels,
                    &rates,
                    &durations,
                    &sizes,
                    &started,
                    &directions,
                    &caller_hashes,
                    &caller_encs,
                    &agents,
                    &queues,
                    &external,
                    &created,
                    &classes,
                ],
            )
            .await?;
    }
    Ok(())
}

async fn insert_live_key(tx: &Transaction<'_>, k: &LiveKey) -> Result<(), StoreError> {
    tx_exec(
        tx,
        "INSERT INTO live_keys (call, key_no, wrapped) VALUES ($1, $2, $3)",
        &[&k.call.to_string(), &k.key_no, &k.wrapped],
    )
    .await
    .map(drop)
}

fn first_bytes(r: &dyn Cells) -> Result<Vec<u8>, StoreError> {
    r.bytes(0)
}

fn first_int(r: &dyn Cells) -> Result<i64, StoreError> {
    r.int(0)
}

#[async_trait::async_trait]
impl MetaBackend for Postgres {
    fn backend_name(&self) -> &'static str {
        "postgres"
    }

    async fn get_setting(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.opt(
            "SELECT value FROM settings WHERE key = $1",
            &[&key],
            first_bytes,
        )
        .await
    }

    async fn put_setting_if_absent(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        // If another node inserts the same key concurrently, the INSERT waits for its
        // transaction and then does nothing; the SELECT, a new statement, sees the winner.
        self.exec(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &value],
        )
        .await?;
        self.one(
            "SELECT value FROM settings WHERE key = $1",
            &[&key],
            first_bytes,
        )
        .await
    }

    async fn put_setting(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )
        .await
        .map(drop)
    }

    async fn create_tenant(&self, t: &Tenant, k: &TenantKey) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = begin(&mut c).await?;
        tx_exec(
            &tx,
            &format!("INSERT INTO tenants ({TENANT_COLS}) VALUES ($1, $2, $3, $4)"),
            &[
                &t.id.as_str(),
                &t.name,
                &t.caller_hash_key_sealed,
                &t.created_at,
            ],
        )
        .await?;
        insert_key(&tx, k).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Tenant, StoreError> {
        self.one(
            &format!("SELECT {TENANT_COLS} FROM tenants WHERE id = $1"),
            &[&id.as_str()],
            tenant_row,
        )
        .await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.all(
            &format!("SELECT {TENANT_COLS} FROM tenants ORDER BY id"),
            &[],
            tenant_row,
        )
        .await
    }

    async fn active_key(&self, tenant: &TenantId) -> Result<TenantKey, StoreError> {
        self.one(
            &format!("SELECT {KEY_COLS} FROM tenant_keys WHERE tenant = $1 AND active"),
            &[&tenant.as_str()],
            key_row,
        )
        .await
    }

    async fn get_key(&self, tenant: &TenantId, key_id: i64) -> Result<TenantKey, StoreError> {
        self.one(
            &format!("SELECT {KEY_COLS} FROM tenant_keys WHERE tenant = $1 AND key_id = $2"),
            &[&tenant.as_str(), &key_id],
            key_row,
        )
        .await
    }

    async fn rotate_key(&self, k: &TenantKey) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = begin(&mut c).await?;
        // Rotations of one tenant queue on its row, so the second sees the first's new key
        // and deactivates it instead of failing on the one-active-key index.
        tx_exec(
            &tx,
            "SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE",
            &[&k.tenant.as_str()],
        )
        .await?;
        tx_exec(
            &tx,
            "UPDATE tenant_keys SET active = FALSE WHERE tenant = $1 AND active",
            &[&k.tenant.as_str()],
        )
        .await?;
        insert_key(&tx, k).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn next_key_id(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        self.one(
            "SELECT COALESCE(MAX(key_id), 0) + 1 FROM tenant_keys WHERE tenant = $1",
            &[&tenant.as_str()],
            first_int,
        )
        .await
    }

    async fn create_user(&self, u: &User) -> Result<(), StoreError> {
        self.exec(
            &format!(
                "INSERT INTO users ({USER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ),
            &[
                &u.id.to_string(),
                &u.username.as_str(),
                &u.tenant.as_ref().map(TenantId::as_str),
                &u.role.as_str(),
                &u.password_hash,
                &u.must_change_password,
                &u.totp_sealed,
                &u.totp_last_step.map(u64_to_i64),
                &i64::from(u.failed_logins),
                &u.locked_until,
                &u.disabled,
                &u.created_at,
            ],
        )
        .await
        .map(drop)
    }

    async fn get_user(&self, id: &UserId) -> Result<User, StoreError> {
        self.one(
            &format!("SELECT {USER_COLS} FROM users WHERE id = $1"),
            &[&id.to_string()],
            user_row,
        )
        .await
    }

    async fn get_user_by_name(&self, name: &Username) -> Result<User, StoreError> {
        self.one(
            &format!("SELECT {USER_COLS} FROM users WHERE username = $1"),
            &[&name.as_str()],
            user_row,
        )
        .await
    }

    async fn list_users(&self, tenant: Option<&TenantId>) -> Result<Vec<User>, StoreError> {
        self.all(
            &format!(
                "SELECT {USER_COLS} FROM users WHERE $1::TEXT IS NULL OR tenant = $1 ORDER BY username"
            ),
            &[&tenant.map(TenantId::as_str)],
            user_row,
        )
        .await
    }

    async fn update_user(&self, u: &User) -> Result<(), StoreError> {
        changed(
            self.exec(
                "UPDATE users SET tenant = $2, role = $3, password_hash = $4, must_change_password = $5, totp_sealed = $6, totp_last_step = $7, failed_logins = $8, locked_until = $9, disabled = $10 WHERE id = $1",
                &[
                    &u.id.to_string(),
                    &u.tenant.as_ref().map(TenantId::as_str),
                    &u.role.as_str(),
                    &u.password_hash,
                    &u.must_change_password,
                    &u.totp_sealed,
                    &u.totp_last_step.map(u64_to_i64),
                    &i64::from(u.failed_logins),
                    &u.locked_until,
                    &u.disabled,
                ],
            )
            .await?,
        )
    }

    async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        self.exec(
            &format!("INSERT INTO sessions ({SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"),
            &[
                &s.hash.as_slice(),
                &s.user_id.to_string(),
                &s.stage.as_str(),
                &s.pending_totp_sealed,
                &s.created_at,
                &s.last_seen,
            ],
        )
        .await
        .map(drop)
    }

    async fn get_session(&self, hash: &[u8; 32]) -> Result<Session, StoreError> {
        self.one(
            &format!("SELECT {SESSION_COLS} FROM sessions WHERE hash = $1"),
            &[&hash.as_slice()],
            session_row,
        )
        .await
    }

    async fn update_session(&self, s: &Session) -> Result<(), StoreError> {
        changed(
            self.exec(
                "UPDATE sessions SET stage = $2, pending_totp_sealed = $3, last_seen = $4 WHERE hash = $1",
                &[
                    &s.hash.as_slice(),
                    &s.stage.as_str(),
                    &s.pending_totp_sealed,
                    &s.last_seen,
                ],
            )
            .await?,
        )
    }

    async fn delete_session(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        self.exec("DELETE FROM sessions WHERE hash = $1", &[&hash.as_slice()])
            .await
            .map(drop)
    }

    async fn delete_user_sessions(&self, user: &UserId) -> Result<(), StoreError> {
        self.exec(
            "DELETE FROM sessions WHERE user_id = $1",
            &[&user.to_string()],
        )
        .await
        .map(drop)
    }

    async fn create_token(&self, t: &ApiToken) -> Result<(), StoreError> {
        self.exec(
            &format!(
                "INSERT INTO api_tokens ({TOKEN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            &[
                &t.id,
                &t.hash.as_slice(),
                &t.name,
                &t.tenant.as_ref().map(TenantId::as_str),
                &t.role.as_str(),
                &t.created_by,
                &t.created_at,
                &t.expires_at,
                &t.revoked_at,
            ],
        )
        .await
        .map(drop)
    }

    async fn get_token_by_hash(&self, hash: &[u8; 32]) -> Result<ApiToken, StoreError> {
        self.one(
            &format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE hash = $1"),
            &[&hash.as_slice()],
            token_row,
        )
        .await
    }

    async fn list_tokens(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiToken>, StoreError> {
        self.all(
            &format!(
                "SELECT {TOKEN_COLS} FROM api_tokens WHERE $1::TEXT IS NULL OR tenant = $1 ORDER BY created_at, id"
            ),
            &[&tenant.map(TenantId::as_str)],
            token_row,
        )
        .await
    }

    async fn revoke_token(&self, id: &str, at: i64) -> Result<(), StoreError> {
        changed(
            self.exec(
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
                &[&id, &at],
            )
            .await?,
        )
    }

    async fn insert_recordings(&self, rows: &[Recording]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut c = self.conn().await?;
        let tx = begin(&mut c).await?;
        insert_recording_rows(&tx, rows).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_recording(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
    ) -> Result<Recording, StoreError> {
        self.one(
            &format!("SELECT {REC_COLS} FROM recordings WHERE tenant = $1 AND id = $2"),
            &[&tenant.as_str(), &id.to_string()],
            rec_row,
        )
        .await
    }

    async fn search_recordings(
        &self,
        tenant: &TenantId,
        f: &RecordingFilter,
    ) -> Result<Vec<Recording>, StoreError> {
        // Only the criteria given, as fixed fragments with numbered parameters: a catch-all
        // `($n IS NULL OR col = $n)` lets a cached generic plan ignore the index of the one
        // criterion given. The cursor is also a plain upper bound on `started_at`, which every
        // index can use, plus the tie-break on `id`.
        let tenant = tenant.as_str();
        let hash = f.caller_hash.as_ref().map(<[u8; 32]>::as_slice);
        let after = f.after.map(|(t, id)| (t, id.to_string()));
        let limit = i64::from(f.limit);
        let mut sql = format!("SELECT {REC_COLS} FROM recordings WHERE tenant = $1");
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant];
        if let Some(from) = &f.from {
            add(&mut sql, &mut params, "started_at >=", from);
        }
        if let Some(to) = &f.to {
            add(&mut sql, &mut params, "started_at <", to);
        }
        if let Some(queue) = &f.queue {
            add(&mut sql, &mut params, "queue =", queue);
        }
        if let Some(agent) = &f.agent_id {
            add(&mut sql, &mut params, "agent_id =", agent);
        }
        if let Some(hash) = &hash {
            // The caller or another party: ids from the two hash indexes, a semi-join the
            // planner can drive from them (an `OR` with a subquery would be a filter on every
            // row of the tenant).
            params.push(hash);
            let n = params.len();
            sql.push_str(&format!(
                " AND id IN (SELECT id FROM recordings WHERE tenant = $1 AND caller_hash = ${n}
                   UNION ALL SELECT recording FROM recording_parties WHERE tenant = $1 AND number_hash = ${n})"
            ));
        }
        if let Some((t, id)) = &after {
            add(&mut sql, &mut params, "started_at <=", t);
            params.push(id);
            let n = params.len();
            sql.push_str(&format!(" AND (started_at < ${} OR id < ${n})", n - 1));
        }
        params.push(&limit);
        sql.push_str(&format!(
            " ORDER BY started_at DESC, id DESC LIMIT ${}",
            params.len()
        ));
        self.all(&sql, &params, rec_row).await
    }

    async fn count_recordings(&self) -> Result<u64, StoreError> {
        let n = self
            .one("SELECT COUNT(*) FROM recordings", &[], first_int)
            .await?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("recording count {n}")))
    }

    async fn user_language(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        self.one(
            "SELECT language FROM users WHERE id = $1",
            &[&user.to_string()],
            |r| r.opt_text(0),
        )
        .await
    }

    async fn set_user_language(&self, user: &UserId, language: &str) -> Result<(), StoreError> {
        changed(
            self.exec(
                "UPDATE users SET language = $2 WHERE id = $1",
                &[&user.to_string(), &language],
            )
            .await?,
        )
    }

    async fn put_peaks(&self, recording: &RecordingId, peaks_enc: &[u8]) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO recording_peaks (recording, peaks_enc) VALUES ($1, $2)
             ON CONFLICT (recording) DO UPDATE SET peaks_enc = excluded.peaks_enc",
            &[&recording.to_string(), &peaks_enc],
        )
        .await
        .map(drop)
    }

    async fn add_parties(
        &self,
        tenant: &TenantId,
        recording: &RecordingId,
        parties: &[Party],
    ) -> Result<(), StoreError> {
        let hashes: Vec<&[u8]> = parties.iter().map(|p| p.number_hash.as_slice()).collect();
        let encs: Vec<&[u8]> = parties.iter().map(|p| p.number_enc.as_slice()).collect();
        self.exec(
            &format!(
                "INSERT INTO recording_parties (recording, tenant, {PARTY_COLS})
                 SELECT $1, $2, h, e FROM UNNEST($3::BYTEA[], $4::BYTEA[]) AS p(h, e)
                 ON CONFLICT (recording, number_hash) DO NOTHING"
            ),
            &[&recording.to_string(), &tenant.as_str(), &hashes, &encs],
        )
        .await
        .map(drop)
    }

    async fn parties(
        &self,
        tenant: &TenantId,
        recording: &RecordingId,
    ) -> Result<Vec<Party>, StoreError> {
        self.all(
            &format!(
                "SELECT {PARTY_COLS} FROM recording_parties WHERE tenant = $1 AND recording = $2
                 ORDER BY number_hash"
            ),
            &[&tenant.as_str(), &recording.to_string()],
            party_row,
        )
        .await
    }

    async fn get_peaks(
        &self,
        tenant: &TenantId,
        recording: &RecordingId,
    ) -> Result<Vec<u8>, StoreError> {
        self.one(
            "SELECT p.peaks_enc FROM recording_peaks p JOIN recordings r ON r.id = p.recording
             WHERE r.tenant = $1 AND p.recording = $2",
            &[&tenant.as_str(), &recording.to_string()],
            first_bytes,
        )
        .await
    }

    async fn recordings_per_day(
        &self,
        tenant: Option<&TenantId>,
        since: i64,
    ) -> Result<Vec<DailyRecordings>, StoreError> {
        self.all(
            "SELECT created_at / $1 AS day, COUNT(*), COALESCE(SUM(size), 0)::BIGINT FROM recordings
             WHERE created_at >= $2 AND ($3::TEXT IS NULL OR tenant = $3)
             GROUP BY day ORDER BY day",
            &[&DAY_SECS, &since, &tenant.map(TenantId::as_str)],
            daily_recordings_row,
        )
        .await
    }

    async fn actions_per_day(
        &self,
        action: &str,
        tenant: Option<&TenantId>,
        since: i64,
    ) -> Result<Vec<DailyActions>, StoreError> {
        self.all(
            "SELECT time_ns / $1 AS day, actor, COUNT(*) FROM audit
             WHERE action = $2 AND time_ns >= $3 AND ($4::TEXT IS NULL OR tenant = $4)
             GROUP BY day, actor ORDER BY day, actor",
            &[
                &(DAY_SECS * 1_000_000_000),
                &action,
                &since.saturating_mul(1_000_000_000),
                &tenant.map(TenantId::as_str),
            ],
            daily_actions_row,
        )
        .await
    }

    async fn create_grant(&self, g: &Grant) -> Result<(), StoreError> {
        self.exec(
            &format!("INSERT INTO grants ({GRANT_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"),
            &[
                &g.hash.as_slice(),
                &g.recording.to_string(),
                &g.tenant.as_str(),
                &g.user_id.to_string(),
                &g.purpose,
                &g.expires_at,
            ],
        )
        .await
        .map(drop)
    }

    async fn get_grant(&self, hash: &[u8; 32]) -> Result<Grant, StoreError> {
        self.one(
            &format!("SELECT {GRANT_COLS} FROM grants WHERE hash = $1"),
            &[&hash.as_slice()],
            grant_row,
        )
        .await
    }

    async fn append_audit(&self, entries: Vec<Entry>) -> Result<Vec<StoredEntry>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn().await?;
        let tx = begin(&mut c).await?;
        // The chain is only as durable as its commit, whatever the server's default.
        tx.batch_execute("SET LOCAL synchronous_commit = on")
            .await
            .map_err(map_err)?;
        // Held to commit: no other node reads the head until these entries are visible.
        lock(&tx, AUDIT_LOCK).await?;
        let head = tx
            .query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])
            .await
            .map_err(map_err)?;
        let (mut seq, mut prev) = match head {
            Some(r) => audit_link(r.int(0)?, r.bytes(1)?)?,
            None => (0, GENESIS),
        };
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            seq += 1;
            let hash = chain_hash(&prev, seq, &entry);
            prev = hash;
            out.push(StoredEntry { seq, entry, hash });
        }
        // One multi-row INSERT, one column array per parameter.
        let col = |f: fn(&StoredEntry) -> Option<String>| out.iter().map(f).collect::<Vec<_>>();
        let seqs: Vec<i64> = out.iter().map(|e| u64_to_i64(e.seq)).collect();
        let times: Vec<i64> = out.iter().map(|e| ns(e.entry.time)).collect();
        let hashes: Vec<&[u8]> = out.iter().map(|e| e.hash.0.as_slice()).collect();
        tx_exec(
            &tx,
            &format!(
                "INSERT INTO audit ({AUDIT_COLS}) SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[],
                   $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[],
                   $10::TEXT[], $11::BYTEA[])"
            ),
            &[
                &seqs,
                &times,
                &col(|e| Some(e.entry.actor.clone())),
                &col(|e| e.entry.tenant.clone()),
                &col(|e| Some(e.entry.action.clone())),
                &col(|e| e.entry.target.clone()),
                &col(|e| e.entry.purpose.clone()),
                &col(|e| Some(e.entry.result.clone())),
                &col(|e| e.entry.client.clone()),
                &col(|e| e.entry.details.clone()),
                &hashes,
            ],
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn audit_head(&self) -> Result<Option<StoredEntry>, StoreError> {
        self.opt(
            &format!("SELECT {AUDIT_COLS} FROM audit ORDER BY seq DESC LIMIT 1"),
            &[],
            audit_row,
        )
        .await
    }

    async fn audit_range(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        self.all(
            &format!("SELECT {AUDIT_COLS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2"),
            &[&u64_to_i64(after_seq), &i64::from(limit)],
            audit_row,
        )
        .await
    }

    async fn audit_query(&self, f: &AuditFilter) -> Result<Vec<StoredEntry>, StoreError> {
        self.all(
            &format!(
                "SELECT {AUDIT_COLS} FROM audit WHERE seq > $1
                   AND ($2::TEXT IS NULL OR tenant = $2) AND ($3::TEXT IS NULL OR action = $3)
                   AND ($4::TEXT IS NULL OR actor = $4) AND ($5::TEXT IS NULL OR target = $5)
                 ORDER BY seq LIMIT $6"
            ),
            &[
                &u64_to_i64(f.after_seq),
                &f.tenant,
                &f.action,
                &f.actor,
                &f.target,
                &i64::from(f.limit),
            ],
            audit_row,
        )
        .await
    }

    async fn insert_checkpoint(&self, cp: &Checkpoint) -> Result<(), StoreError> {
        self.exec(
            &format!("INSERT INTO audit_checkpoints ({CHECKPOINT_COLS}) VALUES ($1, $2, $3, $4)"),
            &[
                &u64_to_i64(cp.seq),
                &cp.hash.0.as_slice(),
                &ns(cp.time),
                &cp.signature.as_slice(),
            ],
        )
        .await
        .map(drop)
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.all(
            &format!("SELECT {CHECKPOINT_COLS} FROM audit_checkpoints ORDER BY seq"),
            &[],
            checkpoint_row,
        )
        .await
    }

    async fn put_recording_policy(&self, p: &RecordingPolicy) -> Result<(), StoreError> {
        self.exec(
            &format!(
                "INSERT INTO recording_policies ({POLICY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant, queue) DO UPDATE SET record = excluded.record,
                   parties = excluded.parties, retention_class = excluded.retention_class,
                   updated_by = excluded.updated_by, updated_at = excluded.updated_at"
            ),
            &[
                &p.tenant.as_str(),
                &p.queue,
                &p.record,
                &p.parties,
                &p.retention_class,
                &p.updated_by,
                &p.updated_at,
            ],
        )
        .await
        .map(drop)
    }

    async fn recording_policies(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<RecordingPolicy>, StoreError> {
        self.all(
            &format!(
                "SELECT {POLICY_COLS} FROM recording_policies WHERE tenant = $1 ORDER BY queue"
            ),
            &[&tenant.as_str()],
            policy_row,
        )
        .await
    }

    async fn put_retention_rule(&self, r: &RetentionRule) -> Result<(), StoreError> {
        self.exec(
            &format!(
                "INSERT INTO retention_rules ({RULE_COLS}) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant, scope, value) DO UPDATE SET days = excluded.days,
                   updated_by = excluded.updated_by, updated_at = excluded.updated_at"
            ),
            &[
                &r.tenant.as_str(),
                &r.scope.as_str(),
                &r.value,
                &r.days,
                &r.updated_by,
                &r.updated_at,
            ],
        )
        .await
        .map(drop)
    }

    async fn retention_rules(&self, tenant: &TenantId) -> Result<Vec<RetentionRule>, StoreError> {
        self.all(
            &format!(
                "SELECT {RULE_COLS} FROM retention_rules WHERE tenant = $1 ORDER BY scope COLLATE \"C\", value COLLATE \"C\""
            ),
            &[&tenant.as_str()],
            rule_row,
        )
        .await
    }

    async fn create_hold(&self, h: &LegalHold) -> Result<(), StoreError> {
        let c = hold_cells(&h.scope);
        self.exec(
            &format!(
                "INSERT INTO legal_holds ({HOLD_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ),
            &[
                &h.id,
                &h.tenant.as_str(),
                &c.kind,
                &c.recording,
                &c.caller_hash,
                &c.queue,
                &c.agent_id,
                &c.from,
                &c.to,
                &h.reason,
                &h.created_by,
                &h.created_at,
                &h.until,
                &h.lifted_by,
                &h.lifted_at,
            ],
        )
        .await
        .map(drop)
    }

    async fn holds(&self, tenant: &TenantId) -> Result<Vec<LegalHold>, StoreError> {
        self.all(
            &format!(
                "SELECT {HOLD_COLS} FROM legal_holds WHERE tenant = $1 ORDER BY created_at, id"
            ),
            &[&tenant.as_str()],
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
        changed(
            self.exec(
                "UPDATE legal_holds SET lifted_by = $3, lifted_at = $4 WHERE tenant = $1 AND id = $2 AND lifted_at IS NULL",
                &[&tenant.as_str(), &id, &by, &at],
            )
            .await?,
        )
    }

    async fn is_held(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let free = self
            .opt(
                &format!(
                    "SELECT 1::BIGINT FROM recordings r WHERE r.tenant = $1 AND r.id = $2 AND {}",
                    not_held("$3")
                ),
                &[&tenant.as_str(), &id.to_string(), &now],
                first_int,
            )
            .await?;
        Ok(free.is_none())
    }

    async fn expired_recordings(
        &self,
        tenant: &TenantId,
        now: i64,
        after: Option<(i64, RecordingId)>,
        limit: u32,
    ) -> Result<Vec<Expired>, StoreError> {
        let (after_t, after_id) = match after {
            Some((t, id)) => (t, id.to_string()),
            None => (EXPIRED_START.0, EXPIRED_START.1.to_owned()),
        };
        self.all(
            &expired_sql("$1", "$2", "$3", "$4", "$5"),
            &[
                &tenant.as_str(),
                &now,
                &after_t,
                &after_id,
                &i64::from(limit),
            ],
            expired_row,
        )
        .await
    }

    async fn erase_recordings(
        &self,
        tenant: &TenantId,
        ids: &[RecordingId],
        now: i64,
        cause: ErasureCause,
    ) -> Result<Vec<Expired>, StoreError> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let mut c = self.conn().await?;
        let tx = begin(&mut c).await?;
        // Set-based: lock the rows no hold covers, then delete them (and their grants),
        // leaving tombstones and queueing their blobs, all in one transaction.
        let st = tx
            .prepare_cached(&format!(
                "SELECT r.id, r.blob, r.started_at FROM recordings r
                 WHERE r.tenant = $1 AND r.id = ANY($2) AND {} FOR UPDATE",
                not_held("$3")
            ))
            .await
            .map_err(map_err)?;
        let rows = tx
            .query(&st, &[&tenant.as_str(), &ids, &now])
            .await
            .map_err(map_err)?;
        let erased: Vec<Expired> = rows
            .iter()
            .map(|r| expired_row(r))
            .collect::<Result<_, _>>()?;
        if erased.is_empty() {
            return Ok(erased);
        }
        let found: Vec<String> = erased.iter().map(|e| e.id.to_string()).collect();
        let blobs: Vec<String> = erased.iter().map(|e| e.blob.to_string()).collect();
        tx_exec(
            &tx,
            "DELETE FROM grants WHERE recording = ANY($1)",
            &[&found],
        )
        .await?;
        tx_exec(&tx, "DELETE FROM recordings WHERE id = ANY($1)", &[&found]).await?;
        tx_exec(
            &tx,
            "DELETE FROM recording_parties WHERE recording = ANY($1)",
            &[&found],
        )
        .await?;
        tx_exec(
            &tx,
            "INSERT INTO erasures (recording, tenant, erased_at, cause)
             SELECT id, $2, $3, $4 FROM UNNEST($1::TEXT[]) AS id",
            &[&found, &tenant.as_str(), &now, &cause.as_str()],
        )
        .await?;
        tx_exec(
            &tx,
            "INSERT INTO blob_deletions (blob, queued_at) SELECT b, $2 FROM UNNEST($1::TEXT[]) AS b
             ON CONFLICT (blob) DO NOTHING",
            &[&blobs, &now],
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(erased)
    }

    async fn pending_blob_deletions(&self, limit: u32) -> Result<Vec<BlobName>, StoreError> {
        self.all(
            "SELECT blob FROM blob_deletions ORDER BY queued_at, blob LIMIT $1",
            &[&i64::from(limit)],
            blob_row,
        )
        .await
    }

    async fn blob_deletions_done(&self, blobs: &[BlobName]) -> Result<(), StoreError> {
        let blobs: Vec<String> = blobs.iter().map(ToString::to_string).collect();
        self.exec("DELETE FROM blob_deletions WHERE blob = ANY($1)", &[&blobs])
            .await
            .map(drop)
    }

    async fn create_erasure_request(&self, r: &ErasureRequest) -> Result<(), StoreError> {
        self.exec(
            &format!(
                "INSERT INTO erasure_requests ({ERASURE_REQ_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ),
            &[
                &r.id,
                &r.tenant.as_str(),
                &r.caller_hash.as_slice(),
                &r.reason,
                &r.requested_by,
                &r.requested_at,
                &r.approved_by,
                &r.approved_at,
            ],
        )
        .await
        .map(drop)
    }

    async fn get_erasure_request(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<ErasureRequest, StoreError> {
        self.one(
            &format!(
                "SELECT {ERASURE_REQ_COLS} FROM erasure_requests WHERE tenant = $1 AND id = $2"
            ),
            &[&tenant.as_str(), &id],
            erasure_request_row,
        )
        .await
    }

    async fn erasure_requests(&self, tenant: &TenantId) -> Result<Vec<ErasureRequest>, StoreError> {
        self.all(
            &format!(
                "SELECT {ERASURE_REQ_COLS} FROM erasure_requests WHERE tenant = $1 ORDER BY requested_at, id"
            ),
            &[&tenant.as_str()],
            erasure_request_row,
        )
        .await
    }

    async fn approve_erasure_request(
        &self,
        tenant: &TenantId,
        id: &str,
        by: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let n = self
            .exec(
                "UPDATE erasure_requests SET approved_by = $3, approved_at = $4
                 WHERE tenant = $1 AND id = $2 AND approved_by IS NULL AND requested_by <> $3",
                &[&tenant.as_str(), &id, &by, &at],
            )
            .await?;
        if n > 0 {
            return Ok(());
        }
        self.get_erasure_request(tenant, id).await?;
        Err(StoreError::Conflict(APPROVAL_REFUSED.into()))
    }

    async fn recordings_without_caller_hash(
        &self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<Recording>, StoreError> {
        self.all(
            &format!(
                "SELECT {REC_COLS} FROM recordings WHERE tenant = $1 AND caller_hash IS NULL AND caller_enc IS NOT NULL LIMIT $2"
            ),
            &[&tenant.as_str(), &i64::from(limit)],
            rec_row,
        )
        .await
    }

    async fn set_caller_hash(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
        hash: &[u8; 32],
    ) -> Result<(), StoreError> {
        changed(
            self.exec(
                "UPDATE recordings SET caller_hash = $3 WHERE tenant = $1 AND id = $2 AND caller_hash IS NULL",
                &[&tenant.as_str(), &id.to_string(), &hash.as_slice()],
            )
            .await?,
        )
    }

    async fn tenant_stats(
        &self,
        tenant: &TenantId,
        since: i64,
        now: i64,
    ) -> Result<TenantStats, StoreError> {
        let classes = self
            .all(
                "SELECT retention_class, COUNT(*), MIN(started_at) FROM recordings WHERE tenant = $1 GROUP BY retention_class",
                &[&tenant.as_str()],
                |r| Ok((r.opt_text(0)?, r.int(1)?, r.int(2)?)),
            )
            .await?;
        let active_holds = self
            .one(
                "SELECT COUNT(*) FROM legal_holds WHERE tenant = $1 AND lifted_at IS NULL AND (hold_until IS NULL OR hold_until > $2)",
                &[&tenant.as_str(), &now],
                first_int,
            )
            .await?;
        let erased = self
            .one(
                "SELECT COUNT(*) FROM erasures WHERE tenant = $1 AND erased_at >= $2 AND erased_at <= $3",
                &[&tenant.as_str(), &since, &now],
                first_int,
            )
            .await?;
        Ok(stats(classes, active_holds, erased))
    }

    async fn create_live_call(&self, c: &LiveCall, k: &LiveKey) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let tx = begin(&mut conn).await?;
        tx_exec(
            &tx,
            &format!("INSERT INTO live_calls ({LIVE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"),
            &[
                &c.id.to_string(),
                &c.tenant.as_str(),
                &c.key_id,
                &c.codec,
                &i64::from(c.sample_rate),
                &i64::from(c.channels),
                &i64::from(c.frame_bytes),
                &c.started_at,
                &c.direction.as_str(),
                &c.caller_hash.as_ref().map(<[u8; 32]>::as_slice),
                &c.caller_enc,
                &c.agent_id,
                &c.queue,
                &c.external_call_id,
                &c.state.as_str(),
                &c.total_chunks.map(u64_to_i64),
                &c.gaps,
                &c.updated_at,
                &c.created_at,
            ],
        )
        .await?;
        insert_live_key(&tx, k).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_live_call(
        &self,
        tenant: &TenantId,
        id: &RecordingId,
    ) -> Result<LiveCall, StoreError> {
        self.one(
            &format!("SELECT {LIVE_COLS} FROM live_calls WHERE tenant = $1 AND id = $2"),
            &[&tenant.as_str(), &id.to_string()],
            live_row,
        )
        .await
    }

    async fn add_live_key(&self, k: &LiveKey) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let tx = begin(&mut conn).await?;
        insert_live_key(&tx, k).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn live_keys(&self, call: &RecordingId) -> Result<Vec<LiveKey>, StoreError> {
        self.all(
            "SELECT call, key_no, wrapped FROM live_keys WHERE call = $1 ORDER BY key_no",
            &[&call.to_string()],
            live_key_row,
        )
        .await
    }

    async fn append_live_chunks(
        &self,
        chunks: &[LiveChunk],
        now: i64,
    ) -> Result<Vec<ChunkOutcome>, StoreError> {
        if chunks.is_empty() {
            return Ok(Vec::new());
        }
        let calls: Vec<String> = chunks.iter().map(|c| c.call.to_string()).collect();
        let seqs: Vec<i64> = chunks.iter().map(|c| u64_to_i64(c.seq)).collect();
        let key_nos: Vec<i64> = chunks.iter().map(|c| c.key_no).collect();
        let sealed: Vec<&[u8]> = chunks.iter().map(|c| c.sealed.as_slice()).collect();
        let mut conn = self.conn().await?;
        let tx = begin(&mut conn).await?;
        // First the open calls' rows are locked: a concurrent finish on another node waits for
        // this commit (or this batch sees its new state), so a chunk is never stored after its
        // call was assembled. The lock is exclusive and taken in id order, up front, so two
        // nodes appending to the same calls at once queue instead of deadlocking (a shared
        // lock upgraded by the `updated_at` write below did).
        let open: Vec<String> = tx
            .query(
                "SELECT id FROM live_calls WHERE id = ANY($1) AND state = 'open'
                 ORDER BY id FOR UPDATE",
                &[&calls],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<_, StoreError>>()?;
        let st = tx
            .prepare_cached(
                "INSERT INTO live_chunks (call, seq, key_no, sealed)
                 SELECT c.call, c.seq, c.key_no, c.sealed
                 FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::BYTEA[]) AS c(call, seq, key_no, sealed)
                 WHERE c.call = ANY($5)
                 ON CONFLICT DO NOTHING
                 RETURNING call, seq",
            )
            .await
            .map_err(map_err)?;
        let stored: std::collections::HashSet<(String, i64)> = tx
            .query(&st, &[&calls, &seqs, &key_nos, &sealed, &open])
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| Ok((r.text(0)?, r.int(1)?)))
            .collect::<Result<_, StoreError>>()?;
        let st = tx
            .prepare_cached(
                "SELECT k.call, k.seq FROM live_chunks k
                 JOIN UNNEST($1::TEXT[], $2::BIGINT[]) AS c(call, seq) ON k.call = c.call AND k.seq = c.seq",
            )
            .await
            .map_err(map_err)?;
        let present: std::collections::HashSet<(String, i64)> = tx
            .query(&st, &[&calls, &seqs])
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| Ok((r.text(0)?, r.int(1)?)))
            .collect::<Result<_, StoreError>>()?;
        let mut first = std::collections::HashSet::new();
        let mut touched: Vec<String> = Vec::new();
        let out = calls
            .iter()
            .zip(&seqs)
            .map(|(call, &seq)| {
                let key = (call.clone(), seq);
                if stored.contains(&key) && first.insert(key.clone()) {
                    touched.push(call.clone());
                    ChunkOutcome::Stored
                } else if present.contains(&key) {
                    ChunkOutcome::Duplicate
                } else {
                    ChunkOutcome::Closed
                }
            })
            .collect();
        tx_exec(
            &tx,
            "UPDATE live_calls SET updated_at = $2 WHERE id = ANY($1)",
            &[&touched, &now],
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn live_chunk_seqs(&self, call: &RecordingId) -> Result<Vec<u64>, StoreError> {
        let seqs = self
            .all(
                "SELECT seq FROM live_chunks WHERE call = $1 ORDER BY seq",
                &[&call.to_string()],
                first_int,
            )
            .await?;
        Ok(seqs.into_iter().map(|s| s as u64).collect())
    }

    async fn live_chunks(
        &self,
        call: &RecordingId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<LiveChunk>, StoreError> {
        self.all(
            "SELECT call, seq, key_no, sealed FROM live_chunks
             WHERE call = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
            &[&call.to_string(), &u64_to_i64(from), &i64::from(limit)],
            live_chunk_row,
        )
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
        let n = self
            .exec(
                "UPDATE live_calls SET state = $3, total_chunks = COALESCE($4, total_chunks),
                 gaps = COALESCE($6, gaps), updated_at = $5
                 WHERE id = $1 AND state = $2",
                &[
                    &id.to_string(),
                    &from.as_str(),
                    &to.as_str(),
                    &total_chunks.map(u64_to_i64),
                    &now,
                    &outcome,
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn live_calls_in_state(
        &self,
        state: LiveState,
        before: i64,
        limit: u32,
    ) -> Result<Vec<LiveCall>, StoreError> {
        self.all(
            &format!(
                "SELECT {LIVE_COLS} FROM live_calls WHERE state = $1 AND updated_at < $2
                 ORDER BY updated_at LIMIT $3"
            ),
            &[&state.as_str(), &before, &i64::from(limit)],
            live_row,
        )
        .await
    }

    async fn store_live_call(&self, rec: &Recording, gaps: &str) -> Result<(), StoreError> {
        let id = rec.id.to_string();
        let mut conn = self.conn().await?;
        let tx = begin(&mut conn).await?;
        let n = tx_exec(
            &tx,
            "UPDATE live_calls SET state = 'stored', gaps = $2
             WHERE id = $1 AND state IN ('finished', 'incomplete')",
            &[&id, &gaps],
        )
        .await?;
        if n == 0 {
            return Err(StoreError::Conflict(
                "the live call is not waiting to be stored".into(),
            ));
        }
        insert_recording_rows(&tx, std::slice::from_ref(rec)).await?;
        tx_exec(&tx, "DELETE FROM live_chunks WHERE call = $1", &[&id]).await?;
        tx_exec(&tx, "DELETE FROM live_keys WHERE call = $1", &[&id]).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .exec(
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $4)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE leases.expires_at <= $3 OR leases.holder = excluded.holder",
                &[&name, &holder, &now, &(now + ttl_secs)],
            )
            .await?;
        Ok(n > 0)
    }
}

/// Appends ` AND {column_op} $n` for parameter `p`, numbered by its position.
fn add<'a>(
    sql: &mut String,
    params: &mut Vec<&'a (dyn ToSql + Sync)>,
    column_op: &str,
    p: &'a (dyn ToSql + Sync),
) {
    params.push(p);
    sql.push_str(&format!(" AND {column_op} ${}", params.len()));
}
