//! [`LifecycleStore`] on SQLite: recording policies, retention rules, legal holds, crypto-shredding
//! erasure (which also truncates the WAL), erasure requests, the caller-hash backfill, tenant
//! statistics.

use super::{Sqlite, all, changed, lock, map_err, one, read};
use crate::StoreError;
use crate::meta::LifecycleStore;
use crate::meta::rows::*;
use crate::model::*;
use callvault_core::{BlobName, RecordingId, TenantId};
use rusqlite::{OptionalExtension, params};

#[async_trait::async_trait]
impl LifecycleStore for Sqlite {
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
}
