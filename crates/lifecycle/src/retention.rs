//! The retention run: for every tenant, erase the recordings whose retention has ended and that
//! no legal hold covers, in bounded batches. Run by the in-server job on the one node holding
//! the `retention` lease, and by `callvault retention run [--dry-run] [--now T]`.

use super::LifecycleResult;
use super::erase::{collect_garbage, shred};
use callvault_service::Services;
use callvault_service::audit_log::Event;
use callvault_store::ErasureCause;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The lease that decides which node runs the retention job.
pub const RETENTION_LEASE: &str = "retention";

/// What one run did (or, dry, would do).
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct RunReport {
    pub dry_run: bool,
    /// The time the run judged expiry by (unix seconds).
    pub now: i64,
    pub tenants: u64,
    /// Recordings erased (dry run: that would be erased).
    pub expired: u64,
    /// Expired, but a hold arrived before the erasing transaction.
    pub spared: u64,
    pub batches: u64,
    /// Payload blobs deleted, including any left over from earlier runs.
    pub blobs_deleted: u64,
    /// Keyed caller hashes added to recordings an ingest node stored (see `pseudonym`).
    pub caller_hashes_added: u64,
}

/// One retention run over every tenant, as `actor`, judging expiry at `now`.
pub async fn run(
    st: &Services,
    actor: &str,
    now: i64,
    dry_run: bool,
) -> LifecycleResult<RunReport> {
    let batch = st.cfg.retention.batch.max(1);
    let origin = Event {
        actor: actor.to_owned(),
        ..Event::default()
    };
    let mut report = RunReport {
        dry_run,
        now,
        ..RunReport::default()
    };
    for tenant in st.meta.list_tenants().await? {
        report.tenants += 1;
        if !dry_run {
            report.caller_hashes_added += super::pseudonym::backfill(st, &tenant.id).await?;
        }
        let mut after = None;
        loop {
            // Both kinds of run walk forward with the cursor. A real run could restart from the
            // top, since what it erased is gone, but on PostgreSQL the erased rows stay in the
            // index as dead entries until vacuum, and every restart would walk them again.
            let page = st
                .meta
                .expired_recordings(&tenant.id, now, after, batch)
                .await?;
            let Some(last) = page.last() else { break };
            report.batches += 1;
            report.expired += page.len() as u64;
            after = Some((last.started_at, last.id));
            if !dry_run {
                let s = shred(
                    st,
                    &origin,
                    &tenant.id,
                    &page,
                    ErasureCause::Retention,
                    None,
                    now,
                )
                .await?;
                report.expired -= s.spared;
                report.spared += s.spared;
            }
            if page.len() < batch as usize {
                break;
            }
        }
    }
    if !dry_run {
        // Blobs an earlier run could not delete.
        report.blobs_deleted = collect_garbage(st).await?;
        st.metrics.retention_runs.fetch_add(1, Ordering::Relaxed);
    }
    let ev = Event {
        action: "retention.run",
        result: "ok",
        details: serde_json::to_value(&report).ok(),
        ..origin
    };
    super::record(st, ev).await?;
    Ok(report)
}

/// Runs retention every `retention.interval_secs` (the first time one interval after start) on
/// whichever node holds the lease.
pub fn start_job(st: Services) {
    let every = Duration::from_secs(st.cfg.retention.interval_secs.max(1));
    let node = format!("node-{:016x}", rand::random::<u64>());
    tokio::spawn(async move {
        loop {
            // First run one interval after start: a node that restarts in a loop does not
            // erase in a loop, and a restarted node is inspectable before its first run.
            tokio::time::sleep(every).await;
            let now = st.clock.now();
            let ttl = 3 * i64::try_from(every.as_secs()).unwrap_or(i64::MAX / 4);
            match st.meta.try_lease(RETENTION_LEASE, &node, now, ttl).await {
                Ok(true) => match run(&st, "system:retention", now, false).await {
                    Ok(r) if r.expired > 0 => {
                        tracing::info!(erased = r.expired, spared = r.spared, "retention run");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "retention run failed"),
                },
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "retention lease failed"),
            }
        }
    });
}
