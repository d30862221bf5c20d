//! [`RecordingStore`] on SQLite: recording rows, parties, search, waveform peaks, per-day
//! counts and playback grants.

use super::{Sqlite, all, changed, map_err, one, read};
use crate::StoreError;
use crate::meta::RecordingStore;
use crate::meta::rows::*;
use crate::model::*;
use callvault_core::{RecordingId, TenantId};
use rusqlite::params;
use rusqlite::types::Value;

#[async_trait::async_trait]
impl RecordingStore for Sqlite {
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
}

/// Inserts recordings with one prepared statement inside the caller's transaction: an error
/// returns before the commit, and dropping the transaction rolls every row back.
pub(super) fn insert_recording_rows(
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
