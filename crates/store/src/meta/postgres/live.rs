//! [`LiveStore`] on PostgreSQL: call rows, journal keys and chunks are all rows, so a call
//! survives the node that took it.

use super::recordings::insert_recording_rows;
use super::{Postgres, begin, first_int, map_err, tx_exec};
use crate::StoreError;
use crate::meta::LiveStore;
use crate::meta::rows::*;
use crate::model::*;
use callvault_core::{RecordingId, TenantId};
use deadpool_postgres::Transaction;

#[async_trait::async_trait]
impl LiveStore for Postgres {
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
