//! Figure: durable audit append ≥ 20,000 entries/s with group commit; verify 10 M entries < 30 s.
//!
//! W tokio tasks call [`AuditLog::record`] (which returns only once the entry is committed with
//! SQLite `synchronous=FULL`) until the total is reached. Then the whole chain is read back with
//! `audit_range` in pages and streamed through [`Verifier`] (no checkpoints); reading and
//! verifying are timed separately and together.

use crate::setup::WorkDirArg;
use anyhow::{Result, anyhow, bail};
use callvault_audit::{Verifier, generate_signing_key};
use callvault_service::audit_log::{AuditLog, Event};
use callvault_store::{MetadataConfig, MetadataStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PAGE: u32 = 10_000;

/// `audit-append`: durable appends with group commit, then verification of the chain.
#[derive(clap::Args)]
pub struct Opts {
    /// Entries appended in all.
    #[arg(long, default_value_t = 200_000)]
    entries: u64,
    /// Concurrent writer tasks.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    #[command(flatten)]
    work: WorkDirArg,
}

pub async fn run(o: &Opts) -> Result<()> {
    let (total, writers) = (o.entries, o.writers);
    let work = o.work.open()?;
    let dir = work.sub("audit")?;
    let store = MetadataStore::open(&MetadataConfig::Sqlite {
        path: dir.join("meta.db"),
    })
    .await?;
    let log = AuditLog::start(store.clone(), 1_000_000);

    let next = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (log, next) = (log.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t0 = Instant::now();
                log.record(event(w, i)).await.map_err(|e| anyhow!(e))?;
                lat.push(t0.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::new();
    for task in tasks {
        lat.extend(task.await??);
    }
    let append = t.elapsed();
    let s = crate::stats::summarize(&lat);
    println!(
        "appended {total} entries with {writers} writers in {:.2} s: {:.0} durable entries/s \
         (record() latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms)",
        append.as_secs_f64(),
        total as f64 / append.as_secs_f64(),
        s.p50 / 1e3,
        s.p99 / 1e3,
        s.max / 1e3
    );

    let key = generate_signing_key();
    let mut v = Verifier::new(key.verifying_key(), Vec::new(), Vec::new());
    let mut read = Duration::ZERO;
    let mut verify = Duration::ZERO;
    let mut after = 0;
    loop {
        let t0 = Instant::now();
        let page = store.audit_range(after, PAGE).await?;
        read += t0.elapsed();
        let Some(last) = page.last() else { break };
        after = last.seq;
        let t1 = Instant::now();
        for e in &page {
            v.push(e).map_err(|f| anyhow!("verification failed: {f}"))?;
        }
        verify += t1.elapsed();
    }
    let t1 = Instant::now();
    let report = v
        .finish()
        .map_err(|f| anyhow!("verification failed: {f}"))?;
    verify += t1.elapsed();
    if report.entries != total {
        bail!("verified {} entries, expected {total}", report.entries);
    }
    let both = read + verify;
    let rate = |d: Duration| total as f64 / d.as_secs_f64();
    println!(
        "read back {total} entries (audit_range, pages of {PAGE}) in {:.2} s: {:.0} entries/s",
        read.as_secs_f64(),
        rate(read)
    );
    println!(
        "verified {total} entries (Verifier::push) in {:.2} s: {:.0} entries/s",
        verify.as_secs_f64(),
        rate(verify)
    );
    println!(
        "read + verify: {:.0} entries/s → 10 M entries in {:.1} s (target < 30 s)",
        rate(both),
        10e6 / rate(both)
    );
    drop(log);
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    println!("# {} at end", crate::setup::loadavg());
    Ok(())
}

/// A playback entry of realistic size.
fn event(writer: usize, i: u64) -> Event {
    Event {
        actor: format!("user:nurse{writer:02}"),
        tenant: Some("region-east".into()),
        action: "recording.play",
        target: Some(format!("rec_{i:032x}")),
        purpose: Some("quality review".into()),
        result: "ok",
        client: Some("192.0.2.7".into()),
        details: Some(serde_json::json!({ "bytes": 123_456, "range": "0-4095" })),
    }
}
