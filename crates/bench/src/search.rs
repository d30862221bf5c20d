//! Figure: metadata search over 2.7 M calls, p99 < 50 ms (issue 3).
//!
//! Loads `--rows` synthetic recordings into a fresh metadata store (SQLite file or PostgreSQL
//! database) with `insert_recordings` in batches of `--batch`, then runs each search shape the
//! API offers `--queries` times with random parameters: the first page (limit 50) and, when
//! there is one, the second page through the keyset cursor. Prints load rate, size on disk and
//! p50/p99/max per shape and page.
//!
//! The data is deterministic (seeded): 3 tenants (the 1177 case had three regions), calls
//! spread over 6 years (2013-01-01 to 2019-01-01) and inserted in time order as an import or a
//! live system would, ~40 queues, ~2,000 agents (each in one tenant), ~1.5 M distinct callers of
//! which ~57,000 are frequent callers who recur, 3 % withheld numbers, a ~220-byte header and a
//! ~200-byte encrypted caller number per row. Query parameters come from rows that exist, so
//! they follow the data (a frequent caller is searched for more often than a one-off caller).

use crate::setup::{Backend, WorkDirArg};
use crate::stats::summarize;
use anyhow::{Context, Result, bail};
use callvault_core::{BlobName, Direction, RecordingId, TenantId};
use callvault_store::{
    MetadataConfig, MetadataStore, Recording, RecordingFilter, Tenant, TenantKey,
};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::time::{Duration, Instant};

const SEED: u64 = 0x0063_7662_656e_6368; // "cvbench"
/// 2013-01-01T00:00:00Z and six years on (2019-01-01).
const START: i64 = 1_356_998_400;
const SPAN: i64 = 1_546_300_800 - START;
const DAY: i64 = 86_400;
const TENANTS: [&str; 3] = ["region-north", "region-central", "region-south"];
/// Share of calls per tenant, in percent.
const TENANT_WEIGHT: [u32; 3] = [45, 35, 20];
const QUEUES: u64 = 40;
const AGENTS: u64 = 2_000;
const PAGE: u32 = 50;

/// The search shapes the API offers (`POST /api/v1/recordings/search`).
#[derive(Clone, Copy)]
enum Shape {
    Caller,
    DayAndQueue,
    Agent,
    Week,
}

impl Shape {
    const ALL: [Shape; 4] = [Shape::Caller, Shape::DayAndQueue, Shape::Agent, Shape::Week];
    fn name(self) -> &'static str {
        match self {
            Shape::Caller => "(a) caller number",
            Shape::DayAndQueue => "(b) one day + queue",
            Shape::Agent => "(c) agent, no time range",
            Shape::Week => "(d) one week only",
        }
    }
}

/// What a query can be built from: one stored row's searchable fields.
struct Sample {
    tenant: usize,
    started_at: i64,
    caller_hash: Option<[u8; 32]>,
    agent: String,
    queue: String,
}

/// splitmix64: derives independent values from an index without a generator's state.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The keyed hash a tenant stores for caller `idx` (random-looking, 32 bytes, stable).
fn caller_hash(tenant: usize, idx: u64) -> [u8; 32] {
    let mut h = [0u8; 32];
    let base = mix(idx ^ ((tenant as u64) << 56) ^ SEED);
    for (i, chunk) in h.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(base.wrapping_add(i as u64)).to_le_bytes());
    }
    h
}

fn random_bytes(rng: &mut StdRng, prefix: &[u8], len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    v[..prefix.len()].copy_from_slice(prefix);
    rng.fill_bytes(&mut v[prefix.len()..]);
    v
}

struct Generator {
    rng: StdRng,
    rows: u64,
    next: u64,
    tenants: Vec<TenantId>,
    frequent: u64,
    occasional: u64,
}

impl Generator {
    fn new(rows: u64, tenants: Vec<TenantId>) -> Self {
        Self {
            rng: StdRng::seed_from_u64(SEED),
            rows,
            next: 0,
            tenants,
            // 57,000 frequent callers at 2.7 M rows, making ~35 % of the calls; the rest come
            // from a pool 5/3 the row count, which yields ~1.45 M distinct one-off callers.
            frequent: (rows * 57_000 / 2_700_000).max(1),
            occasional: (rows * 5 / 3).max(1),
        }
    }

    fn tenant(&mut self) -> usize {
        let mut x = self.rng.gen_range(0..100);
        for (i, w) in TENANT_WEIGHT.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        0
    }

    fn row(&mut self) -> Recording {
        let i = self.next;
        self.next += 1;
        let t = self.tenant();
        let rng = &mut self.rng;
        // In time order: evenly spread over the span, jittered by up to ten minutes.
        let started_at = START
            + (i128::from(SPAN) * i128::from(i) / i128::from(self.rows)) as i64
            + rng.gen_range(0..600);
        // Busy queues are busier: squaring a uniform value skews towards low indexes.
        let u: f64 = rng.r#gen();
        let queue = format!("queue-{:02}", (u * u * QUEUES as f64) as u64);
        // Each agent works for one tenant: agent numbers ≡ tenant (mod 3).
        let agent_n = rng.gen_range(0..AGENTS / 3) * 3 + t as u64;
        let caller = match rng.gen_range(0..100u32) {
            0..3 => None,
            3..38 => Some(rng.gen_range(0..self.frequent)),
            _ => Some(self.frequent + rng.gen_range(0..self.occasional)),
        };
        let duration_ms = rng.gen_range(5_000..1_800_000u64);
        let header = random_bytes(rng, b"age-encryption.org/v1\n-> X25519 ", 220);
        let caller_enc = caller.map(|_| random_bytes(rng, b"age-encryption.org/v1\n", 200));
        let id = RecordingId::parse(&format!("rec_{:032x}", rng.r#gen::<u128>()));
        let blob = BlobName::parse(&format!("b{:032x}", rng.r#gen::<u128>()));
        let direction = match rng.gen_range(0..10) {
            0..7 => Direction::Inbound,
            7..9 => Direction::Outbound,
            _ => Direction::Internal,
        };
        let external = format!("{:016x}@pbx-{}", rng.r#gen::<u64>(), t);
        #[allow(clippy::expect_used)] // the formats above are valid by construction
        Recording {
            id: id.expect("valid recording id"),
            tenant: self.tenants[t].clone(),
            blob: blob.expect("valid blob name"),
            header,
            key_id: 1,
            container: "ogg".into(),
            codec: "opus".into(),
            channels: 2,
            sample_rate: 8_000,
            duration_ms,
            size: duration_ms * 4,
            started_at,
            direction,
            caller_hash: caller.map(|c| caller_hash(t, c)),
            caller_enc,
            agent_id: Some(format!("agent-{agent_n:04}")),
            queue: Some(queue),
            external_call_id: Some(external),
            created_at: started_at + (duration_ms / 1000) as i64 + 5,
            retention_class: None,
        }
    }
}

/// `search`: load synthetic recordings, then time every search shape the API offers.
#[derive(clap::Args)]
pub struct Opts {
    /// Recordings loaded.
    #[arg(long, default_value_t = 2_700_000)]
    rows: u64,
    /// postgres starts a hermetic PostgreSQL cluster (callvault-testkit) unless --pg-url is given.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// Runs of each search shape.
    #[arg(long, default_value_t = 300)]
    queries: usize,
    /// Recordings per insert batch.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// An existing PostgreSQL database to use with --backend postgres.
    #[arg(long, value_name = "URL")]
    pg_url: Option<String>,
    /// Keep the SQLite file at the end.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    keep: bool,
    #[command(flatten)]
    work: WorkDirArg,
}

pub async fn run(o: &Opts) -> Result<()> {
    let (rows, queries, batch, keep) = (o.rows, o.queries, o.batch, o.keep);
    if batch == 0 || rows == 0 {
        bail!("--rows and --batch must be positive");
    }

    let work = o.work.open()?;
    let mut _pg_db = None;
    let mut pg_admin = None;
    let mut sqlite_dir = None;
    let cfg = match (o.backend, &o.pg_url) {
        (Backend::Sqlite, _) => {
            let dir = work.sub("search")?;
            let path = dir.join("meta.sqlite");
            sqlite_dir = Some(dir);
            MetadataConfig::Sqlite { path }
        }
        (Backend::Postgres, Some(url)) => MetadataConfig::Postgres { url: url.clone() },
        (Backend::Postgres, None) => {
            let db = callvault_testkit::pg::fresh_db().await;
            println!(
                "PostgreSQL: hermetic cluster from callvault-testkit (PostgreSQL 15, fsync=on), database {}, over TLS",
                db.name
            );
            pg_admin = Some(db.connect().await);
            let cfg = MetadataConfig::Postgres { url: db.node_url() };
            _pg_db = Some(db);
            cfg
        }
    };
    let store = MetadataStore::open(&cfg).await?;
    println!("backend {}: {cfg:?}", store.backend_name());

    // Tenants, each with key 1.
    let tenants: Vec<TenantId> = TENANTS
        .iter()
        .map(|t| TenantId::parse(t))
        .collect::<Result<_, _>>()?;
    for t in &tenants {
        store
            .create_tenant(
                &Tenant {
                    id: t.clone(),
                    name: t.as_str().to_owned(),
                    caller_hash_key_sealed: vec![0; 64],
                    created_at: START,
                },
                &TenantKey {
                    tenant: t.clone(),
                    key_id: 1,
                    recipient: "age1bench".into(),
                    identity_sealed: vec![0; 128],
                    active: true,
                    created_at: START,
                },
            )
            .await?;
    }

    // ---- load ----
    let mut generator = Generator::new(rows, tenants.clone());
    let mut samples = Vec::new();
    let sample_every = (rows / 20_000).max(1);
    let mut gen_time = Duration::ZERO;
    let mut insert_time = Duration::ZERO;
    let mut batch_lat = Vec::new();
    let mut bytes = 0u64;
    let t_load = Instant::now();
    let mut done = 0u64;
    let mut next_report = rows / 10;
    while done < rows {
        let n = (rows - done).min(batch as u64);
        let t0 = Instant::now();
        let chunk: Vec<Recording> = (0..n).map(|_| generator.row()).collect();
        gen_time += t0.elapsed();
        for (k, r) in chunk.iter().enumerate() {
            bytes += (r.header.len() + r.caller_enc.as_ref().map_or(0, Vec::len)) as u64;
            if (done + k as u64).is_multiple_of(sample_every) {
                samples.push(Sample {
                    tenant: tenants.iter().position(|t| *t == r.tenant).unwrap_or(0),
                    started_at: r.started_at,
                    caller_hash: r.caller_hash,
                    agent: r.agent_id.clone().unwrap_or_default(),
                    queue: r.queue.clone().unwrap_or_default(),
                });
            }
        }
        let t1 = Instant::now();
        store
            .insert_recordings(&chunk)
            .await
            .with_context(|| format!("inserting rows {done}..{}", done + n))?;
        let d = t1.elapsed();
        insert_time += d;
        batch_lat.push(d);
        done += n;
        if done >= next_report || done == rows {
            println!(
                "  {done:>9} rows  {:7.1} s  {:8.0} rows/s overall, last batch {:6.0} rows/s",
                t_load.elapsed().as_secs_f64(),
                done as f64 / insert_time.as_secs_f64(),
                n as f64 / d.as_secs_f64()
            );
            next_report += rows / 10;
        }
    }
    let wall = t_load.elapsed();
    let b = summarize(&batch_lat);
    println!(
        "loaded {rows} rows in {:.1} s wall ({:.1} s in insert_recordings, {:.1} s generating): {:.0} rows/s; \
         batch of {batch}: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {:.0} MB of header+caller_enc blobs",
        wall.as_secs_f64(),
        insert_time.as_secs_f64(),
        gen_time.as_secs_f64(),
        rows as f64 / insert_time.as_secs_f64(),
        b.p50 / 1e3,
        b.p99 / 1e3,
        b.max / 1e3,
        bytes as f64 / 1e6
    );
    let count = store.count_recordings().await?;
    if count != rows {
        bail!("count_recordings says {count}, expected {rows}");
    }

    // ---- size on disk, statistics ----
    if let Some(dir) = &sqlite_dir {
        let mut total = 0;
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let len = e.metadata()?.len();
            println!(
                "  {}: {:.0} MB",
                e.file_name().to_string_lossy(),
                len as f64 / 1e6
            );
            total += len;
        }
        println!("SQLite size on disk: {:.0} MB", total as f64 / 1e6);
    }
    if let Some(c) = &pg_admin {
        // What autovacuum would have done long since on a database this size.
        let t = Instant::now();
        c.batch_execute("ANALYZE recordings").await?;
        println!("ANALYZE recordings: {:.1} s", t.elapsed().as_secs_f64());
        let row = c
            .query_one(
                "SELECT pg_database_size(current_database()), pg_total_relation_size('recordings'),
                        pg_relation_size('recordings'), pg_indexes_size('recordings')",
                &[],
            )
            .await?;
        let mb = |i: usize| row.get::<_, i64>(i) as f64 / 1e6;
        println!(
            "PostgreSQL size on disk: database {:.0} MB; recordings {:.0} MB total = heap {:.0} MB + indexes {:.0} MB (+ TOAST)",
            mb(0),
            mb(1),
            mb(2),
            mb(3)
        );
    }

    // ---- search ----
    println!(
        "search: {queries} queries per shape, limit {PAGE}, parameters from {} sampled rows",
        samples.len()
    );
    let mut rng = StdRng::seed_from_u64(SEED ^ 0x5eed);
    println!(
        "| shape | page | n | rows/page (mean) | p50 ms | p99 ms | max ms |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    );
    for shape in Shape::ALL {
        let mut first = Vec::new();
        let mut second = Vec::new();
        let (mut rows1, mut rows2) = (0usize, 0usize);
        for _ in 0..queries {
            let s = &samples[rng.gen_range(0..samples.len())];
            let mut f = RecordingFilter {
                limit: PAGE,
                ..Default::default()
            };
            match shape {
                Shape::Caller => {
                    // A withheld number cannot be searched for; take the next row with one.
                    f.caller_hash = s.caller_hash.or_else(|| {
                        samples
                            .iter()
                            .find(|x| x.tenant == s.tenant && x.caller_hash.is_some())
                            .and_then(|x| x.caller_hash)
                    });
                }
                Shape::DayAndQueue => {
                    let day = s.started_at - s.started_at.rem_euclid(DAY);
                    f.from = Some(day);
                    f.to = Some(day + DAY);
                    f.queue = Some(s.queue.clone());
                }
                Shape::Agent => f.agent_id = Some(s.agent.clone()),
                Shape::Week => {
                    let day = s.started_at - s.started_at.rem_euclid(DAY);
                    let from = day - rng.gen_range(0..7) * DAY;
                    f.from = Some(from);
                    f.to = Some(from + 7 * DAY);
                }
            }
            let tenant = &tenants[s.tenant];
            let t0 = Instant::now();
            let page = store.search_recordings(tenant, &f).await?;
            first.push(t0.elapsed());
            rows1 += page.len();
            let last = page.last().filter(|_| page.len() == PAGE as usize);
            if let Some(last) = last {
                let cursor = (last.started_at, last.id);
                f.after = Some(cursor);
                let t0 = Instant::now();
                let page2 = store.search_recordings(tenant, &f).await?;
                second.push(t0.elapsed());
                rows2 += page2.len();
                if page2
                    .first()
                    .is_some_and(|r| (r.started_at, r.id) >= cursor)
                {
                    bail!("second page does not continue after the first");
                }
            }
        }
        for (page, lat, n_rows) in [("1", &first, rows1), ("2", &second, rows2)] {
            if lat.is_empty() {
                println!("| {} | {page} | 0 | - | - | - | - |", shape.name());
                continue;
            }
            let s = summarize(lat);
            println!(
                "| {} | {page} | {} | {:.1} | {:.2} | {:.2} | {:.2} |",
                shape.name(),
                s.n,
                n_rows as f64 / s.n as f64,
                s.p50 / 1e3,
                s.p99 / 1e3,
                s.max / 1e3
            );
        }
    }
    println!("# {} at end", crate::setup::loadavg());

    drop(store);
    if let Some(dir) = sqlite_dir {
        if keep {
            println!("kept {}", dir.display());
        } else {
            std::fs::remove_dir_all(&dir)?;
        }
    }
    Ok(())
}
