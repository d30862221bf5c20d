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
//! once. A call that fails is tried again after a pause of its own that doubles per failure
//! (`Backoff`), so it neither blocks nor slows the calls behind it.

use crate::Ingest;
use crate::keys::Keys;
use callvault_core::RecordingId;
use callvault_store::LiveState;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Calls taken per state and pass.
const BATCH: u32 = 100;
/// Pause after a failed listing of waiting calls (e.g. the database briefly unavailable), and
/// the first pause before a call whose assembly failed is tried again.
const RETRY: Duration = Duration::from_secs(2);
/// Longest pause between attempts at a call that keeps failing (say, a chunk altered on disk).
const MAX_RETRY: Duration = Duration::from_secs(300);
/// How much lower than the server's the assembly thread's CPU priority is (nice levels).
const NICER: i32 = 10;

/// Starts the assembler on a full node (one with keys; on any other it stops at once).
pub fn start(st: Ingest) -> std::io::Result<()> {
    let cpu = LowPriorityThread::spawn("live-assembly")?;
    let every = super::sweep::period(st.live.limits());
    tokio::spawn(async move {
        let Some(keys) = st.keys.as_ref() else { return };
        let mut backoff = Backoff::default();
        loop {
            let pause = match pass(&st, keys, &cpu, &mut backoff).await {
                // A full batch of which some were tried means more may be waiting.
                Ok(Pass { full: true, tried }) if tried > 0 => continue,
                Ok(_) => backoff
                    .next_due()
                    .map_or(every, |due| due.saturating_duration_since(Instant::now()))
                    .min(every),
                Err(e) => {
                    // Not woken meanwhile: a store that cannot list calls is not asked per finish.
                    tracing::warn!(error = %e, "listing live calls to store failed; retrying");
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
    /// Calls tried (stored or failed), not counting those waiting out a failure.
    tried: usize,
    /// Some batch was full, so more calls may be waiting.
    full: bool,
}

async fn pass(
    st: &Ingest,
    keys: &Keys,
    cpu: &LowPriorityThread,
    backoff: &mut Backoff,
) -> Result<Pass, super::LiveError> {
    let mut pass = Pass {
        tried: 0,
        full: false,
    };
    let mut waiting = HashSet::new();
    for state in [LiveState::Finished, LiveState::Incomplete] {
        let calls = st.meta.live_calls_in_state(state, i64::MAX, BATCH).await?;
        pass.full |= calls.len() == BATCH as usize;
        for call in calls {
            waiting.insert(call.id);
            if !backoff.due(&call.id) {
                continue;
            }
            pass.tried += 1;
            match st.live.assemble(keys, cpu, &call).await {
                Ok(_) => backoff.forget(&call.id),
                Err(e) => {
                    st.metrics
                        .live_assembly_failures
                        .fetch_add(1, Ordering::Relaxed);
                    let retry_in = backoff.failed(call.id);
                    tracing::error!(call = %call.id, error = %e, retry_in_secs = retry_in.as_secs(), "storing a live call failed; it stays in the journal");
                }
            }
        }
    }
    if !pass.full {
        // Calls stored elsewhere (or erased) meanwhile need no more attempts.
        backoff.keep_only(&waiting);
    }
    Ok(pass)
}

/// Calls whose assembly failed and when each may be tried again, its pause doubling per failure
/// up to [`MAX_RETRY`]: one call that cannot be stored must not slow the storing of the rest.
/// In memory only; a restart tries each once more.
#[derive(Default)]
struct Backoff(HashMap<RecordingId, (Instant, Duration)>);

impl Backoff {
    fn due(&self, id: &RecordingId) -> bool {
        self.0.get(id).is_none_or(|(at, _)| *at <= Instant::now())
    }

    /// Records a failure; returns the pause before the next attempt.
    fn failed(&mut self, id: RecordingId) -> Duration {
        let pause = self
            .0
            .get(&id)
            .map_or(RETRY, |(_, last)| (*last * 2).min(MAX_RETRY));
        self.0.insert(id, (Instant::now() + pause, pause));
        pause
    }

    fn forget(&mut self, id: &RecordingId) {
        self.0.remove(id);
    }

    fn keep_only(&mut self, ids: &HashSet<RecordingId>) {
        self.0.retain(|id, _| ids.contains(id));
    }

    fn next_due(&self) -> Option<Instant> {
        self.0.values().map(|(at, _)| *at).min()
    }
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
