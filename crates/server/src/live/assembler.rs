//! Assembly off the acknowledgement path. A finish answers as soon as the call is durably
//! `finished`; this job, one per full node, then stores finished and idle-finalised calls as
//! recordings, one call at a time, oldest first. Its CPU work (decrypting every chunk, laying
//! out the WAV, encrypting the file) runs on one thread of its own at a lower CPU priority, so
//! that a burst of calls ending together is stored as fast as the node has CPU to spare and
//! never delays the acknowledgements of the calls still streaming (done inline by every
//! finish, it did: BENCHMARKS.md §6). Until it is stored a finished call plays from the journal
//! like a live one.
//!
//! It is woken by every finish and idle finalisation on this node and also looks on its own,
//! at start and every sweep period, for calls finished elsewhere: on an ingest-only node, or
//! before a crash. Storing is compare-and-set in the store, so several nodes may assemble at
//! once.

use crate::state::{AppState, Keys};
use callvault_store::LiveState;
use std::time::Duration;
use tokio::sync::oneshot;

/// Calls taken per state and pass.
const BATCH: u32 = 100;
/// Pause before the next pass when something failed (e.g. the blob store briefly unavailable).
const RETRY: Duration = Duration::from_secs(2);
/// How much lower than the server's the assembly thread's CPU priority is (nice levels).
const NICER: i32 = 10;

/// Starts the assembler; on a node without keys (ingest only) there is nothing to start.
pub fn start(st: AppState) -> std::io::Result<()> {
    if st.keys.is_none() {
        return Ok(());
    }
    let cpu = LowPriorityThread::spawn("live-assembly")?;
    let every = super::sweep::period(st.live.limits());
    tokio::spawn(async move {
        let Some(keys) = st.keys.as_ref() else { return };
        loop {
            let pause = match pass(&st, keys, &cpu).await {
                // A full batch means more may be waiting: go on at once.
                Ok(Pass { failed: 0, full }) if full => continue,
                Ok(Pass { failed: 0, .. }) => every,
                Ok(_) => {
                    // Not woken meanwhile: a failing store must not be retried per finish.
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live assembly pass failed; retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            tokio::select! {
                () = st.live.assembly_due() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    });
    Ok(())
}

/// What one pass did.
struct Pass {
    /// Assemblies that failed; those calls stay in the journal for the next pass.
    failed: usize,
    /// Some batch was full, so more calls may be waiting.
    full: bool,
}

async fn pass(
    st: &AppState,
    keys: &Keys,
    cpu: &LowPriorityThread,
) -> Result<Pass, super::LiveError> {
    let mut pass = Pass {
        failed: 0,
        full: false,
    };
    for state in [LiveState::Finished, LiveState::Incomplete] {
        let waiting = st.meta.live_calls_in_state(state, i64::MAX, BATCH).await?;
        pass.full |= waiting.len() == BATCH as usize;
        for call in waiting {
            if let Err(e) = st.live.assemble(keys, cpu, &call).await {
                pass.failed += 1;
                tracing::error!(call = %call.id, error = %e, "assembling a live call failed; it stays in the journal");
            }
        }
    }
    Ok(pass)
}

type Job = Box<dyn FnOnce() + Send>;

/// One OS thread, at a lower CPU priority than the rest of the server, that runs the jobs
/// given to it in turn.
pub(super) struct LowPriorityThread {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl LowPriorityThread {
    fn spawn(name: &str) -> std::io::Result<Self> {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                lower_own_priority();
                for job in rx {
                    // A panicking job drops its answer (its caller sees an error); the thread
                    // lives on for the next one.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })?;
        Ok(Self { jobs })
    }

    /// Runs `f` on the thread and waits for its result.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, super::LiveError> {
        let (tx, rx) = oneshot::channel();
        let gone =
            || super::LiveError::Journal("the assembly job panicked or its thread stopped".into());
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }
}

/// Raises this thread's nice value by [`NICER`] (Linux keeps one per thread). Lowering one's
/// own priority needs no privilege; if it fails anyway, assembly runs at normal priority.
fn lower_own_priority() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let tid = Some(rustix::thread::gettid());
        let lowered = getpriority_process(tid)
            .and_then(|now| setpriority_process(tid, (now + NICER).min(19)));
        if let Err(e) = lowered {
            tracing::warn!(error = %e, "cannot lower the assembly thread's CPU priority");
        }
    }
}
