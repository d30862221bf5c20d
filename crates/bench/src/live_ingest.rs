//! Figure: concurrent live calls over HTTPS, stereo G.711 (16 KB/s each): ≥ 2,000 with p99
//! chunk ack < 50 ms and server RSS < 512 MB on one 2-core node.
//!
//! Starts the real `callvault serve` as a child process on a fresh data directory (SQLite +
//! local blobs), provisions a tenant and a recorder token with the CLI, then runs `--calls` calls
//! at real-time pace, each over its own TLS WebSocket: a `--frame-ms` chunk every `--frame-ms`,
//! for `--secs` seconds, call starts spread over `--ramp-secs`. Ack latency is the time from
//! sending a chunk to reading its acknowledgement (which the server sends only after the group
//! commit made it durable). The server's CPU and RSS are sampled from /proc once a second. At the
//! end every call is finished; once the server has stored them all it is stopped, and every
//! stored recording is decrypted straight from the stores with the master key and compared byte
//! for byte with what was sent.
//! The load generator runs on the same machine and competes for the same two cores.

use crate::setup::WorkDirArg;
use crate::stats::summarize;
use crate::stored::{G711_WAV_HEADER, Stored};
use anyhow::{Context, Result, bail};
use callvault_core::RecordingId;
use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const TENANT: &str = "bench";
/// µ-law stereo 8 kHz: bytes per millisecond.
const BYTES_PER_MS: usize = 16;

/// `live-ingest`: concurrent live calls over HTTPS WebSockets against a `callvault serve` child.
#[derive(clap::Args)]
pub struct Opts {
    /// Concurrent calls.
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    /// Length of each call.
    #[arg(long, default_value_t = 30)]
    secs: u64,
    /// Audio per chunk, and the time between chunks.
    #[arg(long, default_value_t = 200)]
    frame_ms: u64,
    /// Call starts are spread over this long.
    #[arg(long, default_value_t = 10)]
    ramp_secs: u64,
    /// The `callvault` binary to run (build it first). Default: `callvault` beside this binary.
    #[arg(long, value_name = "PATH")]
    bin: Option<PathBuf>,
    #[command(flatten)]
    work: WorkDirArg,
}

pub async fn run(o: &Opts) -> Result<()> {
    let (calls, secs, frame_ms, ramp_secs) = (o.calls, o.secs, o.frame_ms, o.ramp_secs);
    let bin: PathBuf = match &o.bin {
        None => std::env::current_exe()?
            .parent()
            .context("bench binary has no directory")?
            .join("callvault"),
        Some(p) => p.clone(),
    };
    let work = o.work.open()?;
    let root = work.sub("live")?;
    let server = ServerProc::start(&bin, &root)?;
    server.provision()?;
    let token = server.token("recorder")?;
    let auditor = server.token("auditor")?;
    println!(
        "{calls} calls × {secs} s of stereo G.711 µ-law, {frame_ms} ms chunks over TLS WebSockets, starts spread over {ramp_secs} s"
    );

    let tls = Arc::new(client_tls(&root.join("data/tls/cert.pem"))?);
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(
            root.join("data/tls/cert.pem"),
        )?)?)
        .build()?;
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (pid, on) = (server.child.id(), sampling.clone());
        std::thread::spawn(move || sample(pid, &on))
    };
    let chunks = secs * 1000 / frame_ms;
    let started = Instant::now();
    let load = Arc::new(Load {
        http,
        tls,
        base: server.base.clone(),
        token,
        chunks,
        frame_ms,
        started,
    });
    let mut tasks = Vec::with_capacity(calls);
    for n in 0..calls {
        let delay = Duration::from_millis(ramp_secs * 1000 * n as u64 / calls.max(1) as u64);
        let load = load.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            one_call(&load, n as u64).await
        }));
    }
    let mut latencies = Vec::new();
    let mut ids = Vec::new();
    let mut failed = 0;
    for t in tasks {
        match t.await? {
            Ok((id, l)) => {
                ids.push(id);
                latencies.extend(l);
            }
            Err(e) => {
                failed += 1;
                if failed <= 5 {
                    println!("call failed: {e:#}");
                }
            }
        }
    }
    let elapsed = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    let usage = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("sampler panicked"))?;
    let all: Vec<Duration> = latencies.iter().map(|(_, l)| *l).collect();
    report("ack latency over", &all);
    // Where the tail comes from: calls opening (TLS handshakes, key wrapping), every call
    // running, calls finishing (stored as recordings by the server beside the others).
    let ramp_end = Duration::from_secs(ramp_secs + 1);
    let windows = [
        ("calls opening", Duration::ZERO..ramp_end),
        ("all calls running", ramp_end..Duration::from_secs(secs)),
        ("calls finishing", Duration::from_secs(secs)..Duration::MAX),
    ];
    for (what, window) in windows {
        let part: Vec<Duration> = latencies
            .iter()
            .filter(|(at, _)| window.contains(at))
            .map(|(_, l)| *l)
            .collect();
        report(
            &format!(
                "  sent {:.0}–{:.0} s ({what}):",
                window.start.as_secs_f64(),
                window.end.as_secs_f64().min(elapsed.as_secs_f64())
            ),
            &part,
        );
    }
    println!(
        "server: CPU {:.0} % of one core on average while calls ran (peak 1-s sample {:.0} %), RSS peak {:.0} MB (VmHWM {:.0} MB); run took {:.1} s",
        usage.cpu_mean,
        usage.cpu_peak,
        usage.rss_peak_kb as f64 / 1024.0,
        usage.hwm_kb as f64 / 1024.0,
        elapsed.as_secs_f64()
    );
    println!("{} calls completed, {failed} failed", ids.len());
    // The server stores finished calls behind their finishes; stop it only once all are.
    let metrics = loop {
        let text = metrics(&load.http, &load.base, &auditor).await?;
        let stored = text
            .lines()
            .find_map(|l| l.strip_prefix("callvault_live_calls_stored_total "))
            .context("no callvault_live_calls_stored_total")?
            .parse::<usize>()?;
        if stored >= ids.len() || started.elapsed() > elapsed + Duration::from_secs(300) {
            println!(
                "{stored} calls stored as recordings {:.1} s after the last call finished",
                (started.elapsed() - elapsed).as_secs_f64()
            );
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "server group commits by duration (write + fdatasync, the floor of every ack): {}",
        group_commits(&metrics)?
    );
    drop(server); // stops the server: everything verified next was acknowledged durable
    let verified = verify(&root, &ids, chunks, frame_ms).await?;
    println!("verified {verified} stored recordings byte for byte against what was sent");
    if failed > 0 || verified != calls {
        bail!("{failed} calls failed, {verified} of {calls} verified");
    }
    Ok(())
}

fn report(what: &str, latencies: &[Duration]) {
    let s = summarize(latencies);
    println!(
        "{what} {} chunks: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        s.n,
        s.p50 / 1e3,
        s.p99 / 1e3,
        s.max / 1e3
    );
}

/// The server's `/metrics` page.
async fn metrics(http: &reqwest::Client, base: &str, token: &str) -> Result<String> {
    Ok(http
        .get(format!("{base}/metrics"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// The server's group-commit histogram, per bucket: `≤ 1 ms: 10123, ≤ 2.5 ms: …`. A commit the
/// disk holds up delays every chunk that arrives meanwhile, so this says how much of the ack
/// tail is the disk's.
fn group_commits(metrics: &str) -> Result<String> {
    let mut out = Vec::new();
    let mut below = 0u64;
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("callvault_live_group_commit_seconds_bucket{le=\"")
        else {
            continue;
        };
        let (bound, count) = rest
            .split_once("\"} ")
            .context("malformed histogram line")?;
        let count: u64 = count.parse()?;
        if count > below {
            let label = match bound.parse::<f64>() {
                Ok(secs) => format!("≤ {} ms", secs * 1e3),
                Err(_) => "longer".to_owned(),
            };
            out.push(format!("{label}: {}", count - below));
        }
        below = count;
    }
    Ok(out.join(", "))
}

/// Deterministic audio for chunk `seq` of call `n`.
fn audio(n: u64, seq: u64, len: usize) -> Vec<u8> {
    let mut x =
        (n + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (seq + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// What every simulated call shares.
struct Load {
    http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
    base: String,
    token: String,
    chunks: u64,
    frame_ms: u64,
    /// When the run started; each latency is kept with its send time relative to this.
    started: Instant,
}

/// Call `n`: open, stream `chunks` chunks at real-time pace, finish. Returns the recording id
/// and each chunk's (send time, ack latency).
async fn one_call(load: &Load, n: u64) -> Result<(RecordingId, Vec<(Duration, Duration)>)> {
    let Load {
        http,
        tls,
        base,
        token,
        chunks,
        frame_ms,
        started,
    } = load;
    let (chunks, frame_ms) = (*chunks, *frame_ms);
    let opened: serde_json::Value = http
        .post(format!("{base}/api/v1/live/calls"))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "started_at": "2026-11-28T09:00:00Z", "direction": "inbound",
            "codec": "mulaw", "sample_rate": 8000, "channels": 2, "frame_ms": frame_ms,
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = opened["id"].as_str().context("no id")?.to_owned();
    let addr = base.trim_start_matches("https://");
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(rustls_pki_types::ServerName::try_from("localhost")?, tcp)
        .await?;
    let mut req = format!("wss://{addr}/api/v1/live/calls/{id}/stream").into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    // Acks are tiny; tungstenite zero-fills its whole read buffer on every read, and at the
    // 128 KiB default that memset was the load generator's largest cost.
    let config =
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(req, stream, Some(config)).await?;
    let mut tick = tokio::time::interval(Duration::from_millis(frame_ms));
    let mut lat = Vec::with_capacity(chunks as usize);
    let frame = frame_ms as usize * BYTES_PER_MS;
    for seq in 0..chunks {
        tick.tick().await;
        let mut msg = seq.to_be_bytes().to_vec();
        msg.extend_from_slice(&audio(n, seq, frame));
        let t0 = Instant::now();
        ws.send(Message::Binary(msg.into())).await?;
        let reply = next_text(&mut ws).await?;
        lat.push((t0.duration_since(*started), t0.elapsed()));
        if reply["ack"] != seq {
            bail!("chunk {seq} not acknowledged: {reply}");
        }
    }
    ws.send(Message::Text(
        format!(r#"{{"finish":{{"chunks":{chunks}}}}}"#).into(),
    ))
    .await?;
    let done = next_text(&mut ws).await?;
    if done["state"] != "finished" {
        bail!("finish answered {done}");
    }
    Ok((RecordingId::parse(&id)?, lat))
}

async fn next_text<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Result<serde_json::Value>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => bail!("connection ended: {other:?}"),
        }
    }
}

fn client_tls(cert: &Path) -> Result<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls_pki_types::CertificateDer::from_pem_file(cert)?)?;
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Decrypts every recording from the stores with the master key and compares it with the audio
/// that was sent. Returns how many matched.
async fn verify(root: &Path, ids: &[RecordingId], chunks: u64, frame_ms: u64) -> Result<usize> {
    let stored = Stored::open(&root.join("data"), &root.join("master.key"), TENANT).await?;
    let frame = frame_ms as usize * BYTES_PER_MS;
    let mut ok = 0;
    for (n, id) in ids.iter().enumerate() {
        let file = stored.file(id).await?;
        let expected: Vec<u8> = (0..chunks)
            .flat_map(|s| audio(n as u64, s, frame))
            .collect();
        if file.get(G711_WAV_HEADER..) == Some(&expected[..]) {
            ok += 1;
        } else {
            println!("recording {id} differs from what was sent");
        }
    }
    Ok(ok)
}

struct Usage {
    cpu_mean: f64,
    cpu_peak: f64,
    rss_peak_kb: u64,
    hwm_kb: u64,
}

/// Samples the server's CPU time and RSS from /proc every second until told to stop.
fn sample(pid: u32, on: &AtomicBool) -> Usage {
    // Clock ticks per second: 100 on every Linux this runs on (USER_HZ).
    const HZ: f64 = 100.0;
    let ticks = || -> Option<f64> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = s.rsplit_once(')')?.1;
        let f: Vec<&str> = after.split_whitespace().collect();
        Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
    };
    let status = |key: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(key))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    };
    let (t0, c0) = (Instant::now(), ticks().unwrap_or(0.0));
    let (mut last_t, mut last_c) = (t0, c0);
    let mut u = Usage {
        cpu_mean: 0.0,
        cpu_peak: 0.0,
        rss_peak_kb: 0,
        hwm_kb: 0,
    };
    while on.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_secs(1));
        let (t, c) = (Instant::now(), ticks().unwrap_or(last_c));
        u.cpu_peak = u
            .cpu_peak
            .max((c - last_c) / HZ / (t - last_t).as_secs_f64() * 100.0);
        u.cpu_mean = (c - c0) / HZ / (t - t0).as_secs_f64() * 100.0;
        (last_t, last_c) = (t, c);
        u.rss_peak_kb = u.rss_peak_kb.max(status("VmRSS:"));
        u.hwm_kb = status("VmHWM:");
    }
    u
}

/// `callvault serve` as a child process on a fresh deployment under `root`.
struct ServerProc {
    child: Child,
    base: String,
    root: PathBuf,
    bin: PathBuf,
}

impl ServerProc {
    fn env(root: &Path) -> Vec<(String, String)> {
        vec![
            (
                "CALLVAULT_DATA_DIR".into(),
                root.join("data").display().to_string(),
            ),
            (
                "CALLVAULT_KEYS__MASTER_KEY_FILE".into(),
                root.join("master.key").display().to_string(),
            ),
            (
                "CALLVAULT_AUDIT__SINK_FILE".into(),
                root.join("sink.jsonl").display().to_string(),
            ),
            ("CALLVAULT_SERVER__LISTEN".into(), "127.0.0.1:0".into()),
            ("CALLVAULT_LOG".into(), "warn".into()),
        ]
    }

    fn start(bin: &Path, root: &Path) -> Result<Self> {
        let mut child = Command::new(bin)
            .arg("serve")
            .envs(Self::env(root))
            .env_remove("CALLVAULT_CONFIG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(root.join("server.log"))?)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (build it with cargo build --release -p callvault)",
                    bin.display()
                )
            })?;
        let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let base = loop {
            let line = lines
                .next()
                .context("the server exited before listening; see server.log")??;
            if let Some(url) = line.strip_prefix("callvault listening on ") {
                break url.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Self {
            child,
            base,
            root: root.to_owned(),
            bin: bin.to_owned(),
        })
    }

    fn cli(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin)
            .args(args)
            .envs(Self::env(&self.root))
            .env_remove("CALLVAULT_CONFIG")
            .output()?;
        if !out.status.success() {
            bail!(
                "callvault {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The bench tenant and its recording policy (without one, every call is refused).
    fn provision(&self) -> Result<()> {
        self.cli(&["tenant", "create", TENANT, "--name", "Bench"])?;
        self.cli(&[
            "policy",
            "recording",
            "--tenant",
            TENANT,
            "--class",
            "standard",
        ])?;
        Ok(())
    }

    /// A token of `role` for the bench tenant.
    fn token(&self, role: &str) -> Result<String> {
        let out = self.cli(&[
            "token", "create", "--name", role, "--role", role, "--tenant", TENANT, "--days", "1",
        ])?;
        out.lines()
            .find_map(|l| l.split_once('\t').map(|(_, s)| s.trim().to_owned()))
            .context("no token in the CLI's output")
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
