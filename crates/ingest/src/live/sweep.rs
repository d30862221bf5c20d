//! Idle finalisation, on every node: a call whose recorder sent nothing for
//! `live.idle_timeout_secs` becomes `Incomplete`, and the assembler (`assembler.rs`, full nodes)
//! stores it as a recording. The first pass runs at start, so calls left open by a crash are
//! finalised without a recorder. The step is compare-and-set in the store, so several nodes may
//! sweep at once.

use super::LiveLimits;
use crate::Ingest;
use crate::audit_log::Event;
use callvault_store::LiveState;
use std::time::Duration;

/// Calls finalised per pass.
const BATCH: u32 = 100;
/// Pause before the next pass when something failed (e.g. the audit log briefly unavailable).
const RETRY: Duration = Duration::from_secs(2);

/// How often the sweeper (and the assembler, for calls finished elsewhere) looks.
pub(super) fn period(limits: LiveLimits) -> Duration {
    Duration::from_secs((limits.idle_timeout_secs as u64 / 2).clamp(1, 30))
}

pub fn start(st: Ingest) {
    let every = period(st.live.limits());
    tokio::spawn(async move {
        loop {
            let pause = match sweep(&st).await {
                // A full batch means more may be waiting: go on at once.
                Ok(true) => Duration::ZERO,
                Ok(false) => every,
                Err(e) => {
                    tracing::warn!(error = %e, "live sweep failed; retrying");
                    RETRY.min(every)
                }
            };
            tokio::time::sleep(pause).await;
        }
    });
}

/// One pass: finalises the idle calls; `true` if the batch was full.
async fn sweep(st: &Ingest) -> Result<bool, super::LiveError> {
    let now = crate::clock::unix_now();
    let idle = st
        .meta
        .live_calls_in_state(
            LiveState::Open,
            now - st.live.limits().idle_timeout_secs,
            BATCH,
        )
        .await?;
    let full = idle.len() == BATCH as usize;
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
        st.live.wake_assembler();
    }
    Ok(full)
}
