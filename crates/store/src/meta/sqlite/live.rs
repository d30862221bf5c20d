//! [`LiveStore`] on SQLite: call rows and journal keys are rows; chunks go to the segment journal
//! beside the database (`segment_journal.rs`), opened on first use and kept in step with the
//! rows.

use super::recordings::insert_recording_rows;
use super::{Inner, Sqlite, all, backend, lock, map_err, one, read};
use crate::StoreError;
use crate::meta::LiveStore;
use crate::meta::rows::*;
use crate::meta::segment_journal::{SegmentJournal, read_located};
use crate::model::*;
use callvault_core::{RecordingId, TenantId};
use rusqlite::{Connection, params};
use std::sync::atomic::Ordering;

impl Inner {
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

#[async_trait::async_trait]
impl LiveStore for Sqlite {
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
}

fn insert_live_key(tx: &rusqlite::Transaction<'_>, k: &LiveKey) -> Result<(), StoreError> {
    one(tx.execute(
        "INSERT INTO live_keys (call, key_no, wrapped) VALUES (?1, ?2, ?3)",
        params![k.call.to_string(), k.key_no, k.wrapped],
    ))
    .map(drop)
}
