//! [`LifecycleStore`] on PostgreSQL: recording policies, retention rules, legal holds,
//! crypto-shredding erasure, erasure requests, the caller-hash backfill, tenant statistics.

use super::{Postgres, begin, changed, first_int, map_err, tx_exec};
use crate::StoreError;
use crate::meta::LifecycleStore;
use crate::meta::rows::*;
use crate::model::*;
use callvault_core::{BlobName, RecordingId, TenantId};

#[async_trait::async_trait]
impl LifecycleStore for Postgres {
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
}
