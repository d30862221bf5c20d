//! [`AuditStore`] on PostgreSQL: the audit chain, appended under an advisory lock held to commit
//! (so every node's appends form one chain), its checkpoints and per-day counts.

use super::{AUDIT_LOCK, Postgres, begin, lock, map_err, tx_exec};
use crate::StoreError;
use crate::meta::AuditStore;
use crate::meta::rows::*;
use crate::model::*;
use callvault_audit::{Checkpoint, Entry, GENESIS, StoredEntry, chain_hash};
use callvault_core::TenantId;

#[async_trait::async_trait]
impl AuditStore for Postgres {
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
}
