//! [`AuditStore`] on SQLite: the audit chain, appended in one transaction on the single writer
//! connection (so concurrent appends form one chain), its checkpoints and per-day counts.

use super::{Sqlite, all, map_err, one, read};
use crate::StoreError;
use crate::meta::AuditStore;
use crate::meta::rows::*;
use crate::model::*;
use callvault_audit::{Checkpoint, Entry, StoredEntry, chain_hash};
use callvault_core::TenantId;
use rusqlite::{OptionalExtension, params};

#[async_trait::async_trait]
impl AuditStore for Sqlite {
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
}
