//! Figure: bulk encrypt-and-store throughput ≥ 80 % of raw sequential write of the same bytes to
//! the same disk.
//!
//! The same in-memory plaintext (pieces of one hour of stereo G.711 each) is
//! * written raw: `File::write_all` + `sync_all`, one file per piece;
//! * encrypted with [`RecordingWriter`] to the tenant recipient and stored with the local
//!   [`BlobStore`] adapter (temp file, fsync, link, directory fsync), one piece at a time;
//! * the same, with `--jobs` pieces in flight (default 2: what a bulk import with two workers
//!   does on two cores, one piece is encrypted while the previous one is being fsynced);
//! * and `dd if=/dev/zero ... conv=fsync` for an outside reference.
//!
//! Throughput is plaintext MiB per second of wall time, including every fsync.

use crate::setup::{Tenant, WorkDirArg};
use crate::stats::{MIB, mib_per_s};
use anyhow::{Context, Result, bail};
use callvault_core::BlobName;
use callvault_crypto::{RecordingWriter, TenantRecipient};
use callvault_media::Codec;
use callvault_store::{BlobConfig, BlobStore};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One hour of stereo G.711: 8000 samples/s × 2 channels × 1 byte × 3600 s.
const PIECE: usize = 8000 * 2 * 3600;

struct Timing {
    total: Duration,
    /// Time spent inside encryption (summed over workers) and inside `put`.
    encrypt: Duration,
    put: Duration,
}

/// `store-throughput`: encrypt-and-store versus raw sequential write, local disk.
#[derive(clap::Args)]
pub struct Opts {
    /// MiB of plaintext per round.
    #[arg(long, default_value_t = 512)]
    mb: usize,
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Pieces in flight in the concurrent run.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    #[command(flatten)]
    work: WorkDirArg,
}

pub async fn run(o: &Opts) -> Result<()> {
    let (mb, rounds, jobs) = (o.mb, o.rounds, o.jobs.max(1));
    let work = o.work.open()?;
    let bytes = mb * 1024 * 1024;

    let t = Instant::now();
    let pieces = Arc::new(make_pieces(bytes));
    println!(
        "generated {mb} MiB of speech-like G.711 µ-law in {} pieces of ≤ {:.1} MB in {:.1} s",
        pieces.len(),
        PIECE as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let tenant = Tenant::new()?;
    let total = bytes as u64;

    let mut raw_r = Vec::new();
    let mut seq_r = Vec::new();
    let mut par_r = Vec::new();
    let mut dd_r = Vec::new();
    let mut cpu_r = Vec::new();
    for round in 1..=rounds {
        println!("-- round {round}/{rounds} in {}", work.path().display());

        let dir = work.sub("raw")?;
        let d = raw_write(&dir, &pieces)?;
        std::fs::remove_dir_all(&dir)?;
        let raw = mib_per_s(total, d);
        println!(
            "raw write_all+sync_all       {raw:8.1} MiB/s  ({:.2} s)",
            d.as_secs_f64()
        );

        let dir = work.sub("blobs-seq")?;
        let tm = encrypt_and_store(&local(&dir).await?, &pieces, &tenant.recipient, 1).await?;
        std::fs::remove_dir_all(&dir)?;
        let seq = mib_per_s(total, tm.total);
        println!(
            "encrypt+put, 1 in flight     {seq:8.1} MiB/s  ({:.2} s: encrypt {:.2} s = {:.0} MiB/s, put {:.2} s)  ratio {:.2}",
            tm.total.as_secs_f64(),
            tm.encrypt.as_secs_f64(),
            mib_per_s(total, tm.encrypt),
            tm.put.as_secs_f64(),
            seq / raw
        );

        let dir = work.sub("blobs-par")?;
        let tm = encrypt_and_store(&local(&dir).await?, &pieces, &tenant.recipient, jobs).await?;
        std::fs::remove_dir_all(&dir)?;
        let par = mib_per_s(total, tm.total);
        println!(
            "encrypt+put, {jobs} in flight     {par:8.1} MiB/s  ({:.2} s)  ratio {:.2}",
            tm.total.as_secs_f64(),
            par / raw
        );

        let dd = dd(work.path(), mb)?;
        println!("dd bs=1M conv=fsync (zeros)  {dd:8.1} MiB/s");

        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let d = encrypt_only(&pieces, &tenant.recipient, threads).await?;
        let cpu = mib_per_s(total, d);
        println!("encrypt only, {threads} threads, no I/O {cpu:8.1} MiB/s  (the CPU ceiling)");
        println!("# {}", crate::setup::loadavg());

        raw_r.push(raw);
        seq_r.push(seq);
        par_r.push(par);
        dd_r.push(dd);
        cpu_r.push(cpu);
    }

    let (raw, seq, par, dd, cpu) = (
        median(&mut raw_r),
        median(&mut seq_r),
        median(&mut par_r),
        median(&mut dd_r),
        median(&mut cpu_r),
    );
    println!("== median of {rounds} round(s), {mb} MiB");
    println!("raw sequential write + fsync : {raw:.1} MiB/s");
    println!("dd conv=fsync                : {dd:.1} MiB/s");
    println!("encrypt only, all cores      : {cpu:.1} MiB/s");
    println!(
        "encrypt-and-store, 1 in flight: {seq:.1} MiB/s = {:.0} % of raw",
        100.0 * seq / raw
    );
    println!(
        "encrypt-and-store, {jobs} in flight: {par:.1} MiB/s = {:.0} % of raw (target ≥ 80 %)",
        100.0 * par / raw
    );
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `bytes` of µ-law audio in pieces of at most one hour each, every piece different.
fn make_pieces(bytes: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut left = bytes;
    let mut seed = 1;
    while left > 0 {
        let n = left.min(PIECE);
        let mut wav = callvault_media::testgen::wav(Codec::Mulaw, 2, 8000, n.div_ceil(2), seed);
        wav.truncate(n);
        wav.resize(n, 0x7f);
        out.push(wav);
        left -= n;
        seed += 1;
    }
    out
}

fn raw_write(dir: &Path, pieces: &[Vec<u8>]) -> Result<Duration> {
    let t = Instant::now();
    for (i, p) in pieces.iter().enumerate() {
        let mut f = std::fs::File::create_new(dir.join(format!("raw-{i}.bin")))?;
        f.write_all(p)?;
        f.sync_all()?;
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(t.elapsed())
}

fn encrypt(recipient: &TenantRecipient, plain: &[u8]) -> Result<Vec<u8>> {
    // Payload = 16-byte nonce + plaintext + one 16-byte tag per 64 KiB chunk.
    let cap = plain.len() + 16 + 16 * (plain.len() / 65536 + 1);
    let mut w = RecordingWriter::new(std::slice::from_ref(recipient), Vec::with_capacity(cap))?;
    w.write_all(plain)?;
    let (_header, payload) = w.finish()?;
    Ok(payload)
}

async fn local(dir: &Path) -> Result<BlobStore> {
    Ok(BlobStore::open(&BlobConfig::Local {
        path: dir.to_owned(),
    })
    .await?)
}

/// `s3-throughput`: encrypt-and-store into a 3-node Garage cluster on loopback versus into the
/// local directory adapter, same pieces, same number in flight.
/// `s3-throughput`: encrypt-and-store into a 3-node Garage cluster it starts, versus the local
/// directory.
#[derive(clap::Args)]
pub struct S3Opts {
    /// MiB of plaintext.
    #[arg(long, default_value_t = 256)]
    mb: usize,
    /// Pieces in flight.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    #[command(flatten)]
    work: WorkDirArg,
}

pub async fn run_s3(o: &S3Opts) -> Result<()> {
    let (mb, jobs) = (o.mb, o.jobs.max(1));
    let work = o.work.open()?;
    let pieces = Arc::new(make_pieces(mb * 1024 * 1024));
    let tenant = Tenant::new()?;
    let total = (mb * 1024 * 1024) as u64;
    let garage = callvault_testkit::garage::Garage::start();
    let s3 = BlobStore::open(&BlobConfig::S3 {
        endpoint: garage.endpoints[0].clone(),
        region: garage.region.clone(),
        bucket: garage.bucket.clone(),
        access_key_id: garage.access_key_id.clone(),
        secret_access_key: garage.secret_access_key.clone().into(),
        virtual_hosted: false,
        prefix: None,
    })
    .await?;
    let dir = work.sub("blobs-local")?;
    let tl = encrypt_and_store(&local(&dir).await?, &pieces, &tenant.recipient, jobs).await?;
    let ts = encrypt_and_store(&s3, &pieces, &tenant.recipient, jobs).await?;
    let (l, g) = (mib_per_s(total, tl.total), mib_per_s(total, ts.total));
    println!(
        "encrypt+put local dir, {jobs} in flight   {l:8.1} MiB/s  ({:.2} s)",
        tl.total.as_secs_f64()
    );
    println!(
        "encrypt+put Garage (3 nodes, rf 3)  {g:8.1} MiB/s  ({:.2} s)",
        ts.total.as_secs_f64()
    );
    println!("Garage / local = {:.2}", g / l);
    Ok(())
}

/// Encrypts and stores every piece with `jobs` pieces in flight at once.
async fn encrypt_and_store(
    blobs: &BlobStore,
    pieces: &Arc<Vec<Vec<u8>>>,
    recipient: &TenantRecipient,
    jobs: usize,
) -> Result<Timing> {
    let before = blobs.list().await?.len();
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..jobs {
        let (blobs, next, pieces, recipient) = (
            blobs.clone(),
            next.clone(),
            pieces.clone(),
            recipient.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut enc = Duration::ZERO;
            let mut put = Duration::ZERO;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= pieces.len() {
                    break;
                }
                let (p, r) = (pieces.clone(), recipient.clone());
                let t0 = Instant::now();
                let payload = tokio::task::spawn_blocking(move || encrypt(&r, &p[i])).await??;
                let t1 = Instant::now();
                blobs.put(&BlobName::random(), payload).await?;
                enc += t1 - t0;
                put += t1.elapsed();
            }
            anyhow::Ok((enc, put))
        }));
    }
    let mut timing = Timing {
        total: Duration::ZERO,
        encrypt: Duration::ZERO,
        put: Duration::ZERO,
    };
    for w in workers {
        let (e, p) = w.await??;
        timing.encrypt += e;
        timing.put += p;
    }
    timing.total = t.elapsed();
    let stored = blobs.list().await?.len() - before;
    if stored != pieces.len() {
        bail!("expected {} blobs, found {stored}", pieces.len());
    }
    Ok(timing)
}

/// Encrypts every piece into memory with `jobs` threads, no I/O: the most any disk can get.
async fn encrypt_only(
    pieces: &Arc<Vec<Vec<u8>>>,
    recipient: &TenantRecipient,
    jobs: usize,
) -> Result<Duration> {
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..jobs {
        let (next, pieces, r) = (next.clone(), pieces.clone(), recipient.clone());
        workers.push(tokio::task::spawn_blocking(move || {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = pieces.get(i) else { break };
                drop(encrypt(&r, p)?);
            }
            anyhow::Ok(())
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(t.elapsed())
}

/// Runs `dd if=/dev/zero of=DIR/dd.bin bs=1M count=N conv=fsync`, removes the file, and returns
/// MiB/s computed from the bytes and seconds dd reports (its own MB/s line is printed too).
fn dd(dir: &Path, mb: usize) -> Result<f64> {
    let out_file = dir.join("dd.bin");
    let out = std::process::Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", out_file.display()))
        .arg("bs=1M")
        .arg(format!("count={mb}"))
        .arg("conv=fsync")
        .output()
        .context("running dd")?;
    let _ = std::fs::remove_file(&out_file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("dd failed: {stderr}");
    }
    let line = stderr
        .lines()
        .find(|l| l.contains("copied"))
        .with_context(|| format!("no 'copied' line in dd output: {stderr}"))?;
    println!("dd says: {line}");
    parse_dd(line).with_context(|| format!("cannot parse dd line {line:?}"))
}

/// `536870912 bytes (537 MB, 512 MiB) copied, 1.2345 s, 435 MB/s` → MiB/s.
fn parse_dd(line: &str) -> Option<f64> {
    let bytes: f64 = line.split_whitespace().next()?.parse().ok()?;
    let after = line.split("copied,").nth(1)?;
    let secs: f64 = after
        .split_whitespace()
        .next()?
        .replace(',', ".")
        .parse()
        .ok()?;
    (secs > 0.0).then(|| bytes / MIB / secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dd() {
        let v = parse_dd("536870912 bytes (537 MB, 512 MiB) copied, 2 s, 268 MB/s");
        assert_eq!(v, Some(256.0));
        assert_eq!(parse_dd("garbage"), None);
    }
}
