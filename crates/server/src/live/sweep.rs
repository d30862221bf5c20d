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
                Ok(0) => every,
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

/// One pass: finalise idle calls, then assemble what waits (full nodes only). Returns how many
/// assemblies failed (they stay in the journal for the next pass).
pub async fn sweep(st: &AppState) -> Result<usize, super::LiveError> {
    let now = crate::principal::now();
    let idle = st
        .meta
        .live_calls_in_state(
            LiveState::Open,
            now - st.live.limits().idle_timeout_secs,
            BATCH,
        )
        .await?;
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
        return Ok(0);
    };
    let mut failed = 0;
    for state in [LiveState::Finished, LiveState::Incomplete] {
        for call in st.meta.live_calls_in_state(state, i64::MAX, BATCH).await? {
            if let Err(e) = st.live.assemble(keys, &call).await {
                failed += 1;
                tracing::error!(call = %call.id, error = %e, "assembling a live call failed; it stays in the journal");
            }
        }
    }
    Ok(failed)
}
