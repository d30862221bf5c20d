//! Figure: erasing 1 M expired recordings, metadata and blobs (issue 6).
//!
//! Boots a real deployment in the work directory (`callvault_server::init`: master key, audit
//! writer, stores), creates a tenant with a 30-day retention rule, and loads `--rows` recordings
//! that started in 2013 — metadata rows through `insert_recordings`, payload blobs of 160 bytes
//! written straight into the local blob layout (`blobs/objects/<xx>/<name>`, docs/FORMAT.md) to
//! keep the setup short. Then it times one retention run (`lifecycle::retention::run`, the code
//! the in-server job and `callvault retention run` use): expiry queries, crypto-shredding
//! transactions of `--batch` rows with their audit entries, and the blob deletions. Finally it
//! checks that nothing is left.

use crate::setup::{Backend, WorkDirArg};
use anyhow::{Context, Result, bail};
use callvault_core::{BlobName, Direction, RecordingId, TenantId};
use callvault_lifecycle::retention;
use callvault_service::config::Config;
use callvault_store::{Recording, RetentionRule, RuleScope};
use rand::RngCore;
use std::time::Instant;

/// 2013-01-01T00:00:00Z.
const START: i64 = 1_356_998_400;

/// `erase`: one retention run over expired recordings, metadata and blobs.
#[derive(clap::Args)]
pub struct Opts {
    /// Expired recordings loaded.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Recordings erased per transaction (`retention.batch`).
    #[arg(long, default_value_t = 1000)]
    batch: u32,
    /// postgres starts a hermetic PostgreSQL cluster (callvault-testkit).
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    #[command(flatten)]
    work: WorkDirArg,
}

pub async fn run(o: &Opts) -> Result<()> {
    let (rows, batch) = (o.rows, o.batch);
    if rows == 0 || batch == 0 {
        bail!("--rows and --batch must be positive");
    }
    let work = o.work.open()?;
    let root = work.sub("erase")?;
    let mut env = vec![
        (
            "CALLVAULT_DATA_DIR",
            root.join("data").display().to_string(),
        ),
        (
            "CALLVAULT_KEYS__MASTER_KEY_FILE",
            root.join("master.key").display().to_string(),
        ),
        (
            "CALLVAULT_AUDIT__SINK_FILE",
            root.join("sink.jsonl").display().to_string(),
        ),
        ("CALLVAULT_RETENTION__BATCH", batch.to_string()),
    ];
    let mut _pg = None;
    match o.backend {
        Backend::Sqlite => {}
        Backend::Postgres => {
            let db = callvault_testkit::pg::fresh_db().await;
            env.push(("CALLVAULT_METADATA__BACKEND", "postgres".into()));
            env.push(("CALLVAULT_METADATA__URL", db.node_url()));
            println!(
                "PostgreSQL: hermetic cluster from callvault-testkit, database {}",
                db.name
            );
            _pg = Some(db);
        }
    }
    let cfg = Config::load(None, env.into_iter().map(|(k, v)| (k.to_owned(), v)))?;
    let b = callvault_server::init(&cfg).await?;
    let st = &b.state;
    let kp = &st.keys.as_ref().context("full mode has keys")?.provider;
    let tenant = TenantId::parse("region-north")?;
    callvault_service::provisioning::create_tenant(&st.meta, kp, tenant.clone(), "bench".into())
        .await?;
    st.meta
        .put_retention_rule(&RetentionRule {
            tenant: tenant.clone(),
            scope: RuleScope::Tenant,
            value: String::new(),
            days: 30,
            updated_by: "bench".into(),
            updated_at: START,
        })
        .await?;

    // ---- load ----
    let t_load = Instant::now();
    let objects = root.join("data/blobs/objects");
    let mut rng = rand::thread_rng();
    let mut loaded = 0u64;
    while loaded < rows {
        let n = (rows - loaded).min(10_000);
        let mut chunk = Vec::with_capacity(n as usize);
        for i in 0..n {
            let blob = BlobName::random();
            let name = blob.to_string();
            let dir = objects.join(&name[1..3]);
            std::fs::create_dir_all(&dir)?;
            let mut payload = vec![0u8; 160];
            rng.fill_bytes(&mut payload);
            std::fs::write(dir.join(&name), &payload)?;
            let mut header = vec![0u8; 220];
            rng.fill_bytes(&mut header);
            let started_at = START + ((loaded + i) as i64 % (5 * 365 * 86_400));
            chunk.push(Recording {
                id: RecordingId::random(),
                tenant: tenant.clone(),
                blob,
                header,
                key_id: 1,
                container: "wav".into(),
                codec: "pcm_mulaw".into(),
                channels: 1,
                sample_rate: 8000,
                duration_ms: 180_000,
                size: 1_440_000,
                started_at,
                direction: Direction::Inbound,
                caller_hash: None,
                caller_enc: None,
                agent_id: None,
                queue: None,
                external_call_id: None,
                created_at: started_at,
                retention_class: Some("standard".into()),
            });
        }
        st.meta.insert_recordings(&chunk).await?;
        loaded += n;
    }
    println!(
        "loaded {rows} recordings (metadata + 160-byte blobs) in {:.1} s",
        t_load.elapsed().as_secs_f64()
    );

    // ---- erase ----
    let now = callvault_service::clock::unix_now();
    let t = Instant::now();
    let report = retention::run(st, "bench", now, false).await?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "retention run ({} backend, batch {batch}): erased {} recordings in {} batches, {:.1} s, {:.0} recordings/s",
        st.meta.backend_name(),
        report.expired,
        report.batches,
        secs,
        report.expired as f64 / secs
    );
    let left_rows = st.meta.count_recordings().await?;
    let left_blobs = st.blobs.list().await?.len();
    println!("left afterwards: {left_rows} rows, {left_blobs} blobs");
    if left_rows != 0 || left_blobs != 0 || report.expired != rows {
        bail!("the run did not erase everything");
    }
    std::fs::remove_dir_all(&root)?;
    Ok(())
}
