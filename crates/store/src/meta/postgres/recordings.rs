//! [`RecordingStore`] on PostgreSQL: recording rows, parties, search, waveform peaks, per-day
//! counts and playback grants.

use super::{Postgres, begin, first_bytes, first_int, map_err, tx_exec};
use crate::StoreError;
use crate::meta::RecordingStore;
use crate::meta::rows::*;
use crate::model::*;
use callvault_core::{RecordingId, TenantId};
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

/// Rows per multi-row INSERT in `insert_recordings`: bounds one statement's parameter arrays
/// (about 1 KB per row) while keeping round trips few.
const INSERT_CHUNK: usize = 1000;

#[async_trait::async_trait]
impl RecordingStore for Postgres {
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
}

/// Inserts recordings inside the caller's transaction.
pub(super) async fn insert_recording_rows(
    tx: &Transaction<'_>,
    rows: &[Recording],
) -> Result<(), StoreError> {
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
