//! Figure: playback time to first byte p99 < 20 ms at any seek offset of a 1 h call, constant in
//! call length.
//!
//! Per sample: open the blob (local adapter), `open_recording` (age header: X25519 unwrap of the
//! file key, header MAC), seek to the offset, read 4096 plaintext bytes — the decryption on a
//! blocking thread, as the server does it. The age header is held in memory (the server reads it
//! from the metadata store's recording row; that query is not part of this figure). The blob files
//! are in the page cache after being written, so this is warm-cache latency.

use crate::setup::{Tenant, WorkDirArg};
use crate::stats::summarize;
use anyhow::{Result, bail};
use callvault_core::BlobName;
use callvault_crypto::{Header, RecordingWriter, TenantIdentity, open_recording};
use callvault_media::Codec;
use callvault_store::{BlobConfig, BlobStore};
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

const READ: usize = 4096;

struct Stored {
    name: BlobName,
    header: Header,
    plain: Arc<Vec<u8>>,
}

/// `playback-ttfb`: time to the first decrypted byte at seek offsets of a long call.
#[derive(clap::Args)]
pub struct Opts {
    /// Length of the call played.
    #[arg(long, default_value_t = 60)]
    minutes: usize,
    /// Samples per offset.
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    #[command(flatten)]
    work: WorkDirArg,
}

pub async fn run(o: &Opts) -> Result<()> {
    let (minutes, iterations) = (o.minutes, o.iterations);
    let work = o.work.open()?;
    let dir = work.sub("playback")?;
    let blobs = BlobStore::open(&BlobConfig::Local { path: dir.clone() }).await?;
    let tenant = Arc::new(Tenant::new()?);

    let mut lengths = vec![minutes];
    if minutes != 1 {
        lengths.push(1);
    }
    let mut results = Vec::new();
    for m in lengths {
        let rec = store(&blobs, &tenant, m).await?;
        let len = rec.plain.len() as u64;
        println!(
            "{m} min stereo G.711 µ-law WAV: {:.1} MB plaintext",
            len as f64 / 1e6
        );
        // One untimed pass so the first sample does not pay for thread and cache warm-up.
        ttfb(&blobs, &tenant, &rec, 0).await?;
        for (label, off) in [
            ("start", 0),
            ("middle", len / 2),
            ("end-4096", len - READ as u64),
        ] {
            let mut samples = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                samples.push(ttfb(&blobs, &tenant, &rec, off).await?);
            }
            let s = summarize(&samples);
            println!(
                "  offset {label:>8} ({off:>9}): n={} p50 {:7.0} µs  p99 {:7.0} µs  max {:7.0} µs",
                s.n, s.p50, s.p99, s.max
            );
            results.push((m, label, s));
        }
        blobs.delete(&rec.name).await?;
    }
    std::fs::remove_dir_all(&dir)?;

    let worst = results.iter().map(|r| r.2.p99).fold(0.0, f64::max);
    println!("== worst p99 over all offsets and lengths: {worst:.0} µs (target < 20000 µs)");
    println!("# {} at end", crate::setup::loadavg());
    Ok(())
}

async fn store(blobs: &BlobStore, tenant: &Tenant, minutes: usize) -> Result<Stored> {
    let wav = callvault_media::testgen::wav(Codec::Mulaw, 2, 8000, 8000 * 60 * minutes, 7);
    if wav.is_empty() {
        bail!("testgen produced no WAV for {minutes} minutes");
    }
    let mut w = RecordingWriter::new(std::slice::from_ref(&tenant.recipient), Vec::new())?;
    w.write_all(&wav)?;
    let (header, payload) = w.finish()?;
    let name = BlobName::random();
    blobs.put(&name, payload).await?;
    Ok(Stored {
        name,
        header,
        plain: Arc::new(wav),
    })
}

/// Time from "play at offset" to the first 4096 plaintext bytes in hand; checks they are right.
async fn ttfb(blobs: &BlobStore, tenant: &Arc<Tenant>, rec: &Stored, off: u64) -> Result<Duration> {
    let t = Instant::now();
    let payload = blobs.open(&rec.name).await?;
    let header = rec.header.clone();
    let id = tenant.clone();
    let buf =
        tokio::task::spawn_blocking(move || read_at(&header, payload, &id.identity, off)).await??;
    let d = t.elapsed();
    let start = usize::try_from(off)?;
    if rec.plain.get(start..start + READ) != Some(&buf[..]) {
        bail!("decrypted bytes at offset {off} differ from the plaintext");
    }
    Ok(d)
}

fn read_at(
    header: &Header,
    payload: Box<dyn callvault_store::BlobRead>,
    identity: &TenantIdentity,
    off: u64,
) -> Result<Vec<u8>> {
    let mut r = open_recording(header, payload, identity)?;
    r.seek(SeekFrom::Start(off))?;
    let mut buf = vec![0u8; READ];
    r.read_exact(&mut buf)?;
    Ok(buf)
}
