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
//! Rows are read by the shared readers in `rows`; this adapter only binds parameters and runs
//! SQL. This file holds the pool, migrations and what every concern uses; each concern's
//! methods are in the module named after it.

use super::rows::{Cells, impl_cells};
use super::{MetaBackend, Sealed};
use crate::StoreError;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime, Transaction,
};
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Row};

mod audit;
mod coordination;
mod identity;
mod lifecycle;
mod live;
mod recordings;
pub(crate) mod tls;

/// Migrations, in order; the `schema_version` table records which were applied.
const MIGRATIONS: &[&str] = &[
    include_str!("0001_init.sql"),
    include_str!("0002_leases.sql"),
    include_str!("0003_search_indexes.sql"),
    include_str!("0004_lifecycle.sql"),
    include_str!("0005_live_calls.sql"),
    include_str!("0006_console.sql"),
    include_str!("0007_recording_parties.sql"),
];

// Advisory lock keys: database-wide, so every node using the database contends for the same
// ones. The values are arbitrary but must never change ("cvmigrat" and "cvaudit" in ASCII).
const MIGRATION_LOCK: i64 = 0x6376_6d69_6772_6174;
const AUDIT_LOCK: i64 = 0x0063_7661_7564_6974;

/// Connections per handle (per node). Enough for a busy node; PostgreSQL's default
/// `max_connections = 100` leaves room for a dozen nodes.
const POOL_SIZE: usize = 8;

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

impl_cells!(Row, try_get, map_err);

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

fn first_bytes(r: &dyn Cells) -> Result<Vec<u8>, StoreError> {
    r.bytes(0)
}

fn first_int(r: &dyn Cells) -> Result<i64, StoreError> {
    r.int(0)
}

impl MetaBackend for Postgres {
    fn backend_name(&self) -> &'static str {
        "postgres"
    }
}
