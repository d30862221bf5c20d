//! The background jobs of live ingest, on every node: idle finalisation (a call whose recorder
//! sent nothing for `live.idle_timeout_secs` becomes `Incomplete`), and on full nodes assembly
//! of every `Finished` or `Incomplete` call into a recording. The first pass runs at start, so
//! journals left by a crash or by an ingest-only node are recovered without a recorder.
//! Both steps are compare-and-set in the store, so several nodes may sweep at once.

use crate::audit_log::Event;
use crate::state::AppState;
use callvault_store::LiveState;
use std::time::Duration;

/// Calls handled per state and pass.
const BATCH: u32 = 100;
/// Pause before the next pass when something failed (e.g. the blob store briefly unavailable).
const RETRY: Duration = Duration::from_secs(2);

pub fn start(st: AppState) {
    let idle = st.live.limits().idle_timeout_secs;
    let every = Duration::from_secs((idle as u64 / 2).clamp(1, 30));
    tokio::spawn(async move {
        loop {
            let pause = match sweep(&st).await {
                // A full batch means more may be waiting: go on at once.
                Ok(Pass { failed: 0, full }) if full => Duration::ZERO,
                Ok(Pass { failed: 0, .. }) => every,
                Ok(_) => RETRY.min(every),
                Err(e) => {
                    tracing::warn!(error = %e, "live sweep failed; retrying");
                    RETRY.min(every)
                }
            };
            tokio::time::sleep(pause).await;
        }
    });
}

/// What one pass did.
struct Pass {
    /// Assemblies that failed; those calls stay in the journal for the next pass.
    failed: usize,
    /// Some batch was full, so more calls may be waiting.
    full: bool,
}

/// One pass: finalise idle calls, then assemble what waits (full nodes only).
async fn sweep(st: &AppState) -> Result<Pass, super::LiveError> {
    let now = crate::principal::now();
    let idle = st
        .meta
        .live_calls_in_state(
            LiveState::Open,
            now - st.live.limits().idle_timeout_secs,
            BATCH,
        )
        .await?;
    let mut full = idle.len() == BATCH as usize;
    for call in idle {
        let ev = Event {
            actor: "system".into(),
            tenant: Some(call.tenant.to_string()),
            action: "recording.live_incomplete",
            target: Some(call.id.to_string()),
            result: "ok",
            details: Some(serde_json::json!({ "idle_since": call.updated_at })),
            ..Event::default()
        };
        st.audit.record(ev).await.map_err(super::LiveError::Audit)?;
        st.meta
            .set_live_state(
                &call.id,
                LiveState::Open,
                LiveState::Incomplete,
                None,
                None,
                now,
            )
            .await?;
        st.live.forget(&call.id);
    }
    let Some(keys) = st.keys.as_ref() else {
        return Ok(Pass { failed: 0, full });
    };
    let mut failed = 0;
    for state in [LiveState::Finished, LiveState::Incomplete] {
        let waiting = st.meta.live_calls_in_state(state, i64::MAX, BATCH).await?;
        full |= waiting.len() == BATCH as usize;
        for call in waiting {
            if let Err(e) = st.live.assemble(keys, &call).await {
                failed += 1;
                tracing::error!(call = %call.id, error = %e, "assembling a live call failed; it stays in the journal");
            }
        }
    }
    Ok(Pass { failed, full })
}
