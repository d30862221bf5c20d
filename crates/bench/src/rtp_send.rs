//! `rtp-send`: the media half of `scripts/siprec-bench` with `RTP=sender`. SIPp drives the
//! SIPREC signalling (`crates/bench/sipp/siprec_signalling.xml`) and, once a call is answered,
//! writes `CALL PORT` to a FIFO; this plays the call's two PCMU streams to 127.0.0.1 (`--left`
//! to PORT, `--right` to PORT + 2) in real time, then forgets the call.
//!
//! Why not SIPp's own `play_pcap_audio`: it plays each call in a thread of its own, and at
//! 600 calls those threads saturate this machine's 2 cores, starving the server it measures.
//! Here every stream of every call is sent from ONE thread: a min-heap of packet deadlines, each
//! stream anchored at its own start (so calls spread over the 20 ms packet interval), woken at
//! most once per [`QUANTUM`]. The thread measures how late it is against its own schedule, so a
//! late sender is visible and not blamed on the server.
//!
//! Packets are laid out as the script's pcap was: RTP version 2, payload type 0, sequence from
//! 0, timestamp advancing by the samples sent, one SSRC per stream (distinct per call here).
//! The run ends when the FIFO reaches end of file (the script keeps a writer open until SIPp
//! exits) and every call has played out.

use anyhow::{Context, Result, bail};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, TryRecvError};
use std::time::{Duration, Instant};

/// The sender sleeps at least this long between rounds: with 2,000 streams a packet is due
/// every 10 µs, and waking for each would cost more than the sending.
const QUANTUM: Duration = Duration::from_millis(1);
/// G.711: 8 samples (bytes) per millisecond.
const PER_MS: usize = 8;

/// One direction of one call.
struct Stream {
    dest: SocketAddr,
    audio: Arc<[u8]>,
    ssrc: u32,
    /// Index of the next packet.
    n: usize,
    start: Instant,
}

/// A stream in the heap, ordered by when its next packet is due.
struct Due(Instant, Stream);

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

/// `rtp-send`: plays A to PORT and B to PORT+2 for each `CALL PORT` line read from the FIFO
/// until its end (scripts/siprec-bench with RTP=sender).
#[derive(clap::Args)]
pub struct Opts {
    /// The FIFO SIPp writes `CALL PORT` lines to.
    #[arg(long)]
    fifo: PathBuf,
    /// The caller's stream, raw µ-law.
    #[arg(long, value_name = "A.ul")]
    left: PathBuf,
    /// The agent's stream, raw µ-law.
    #[arg(long, value_name = "B.ul")]
    right: PathBuf,
    /// Audio per packet, 10 to 60.
    #[arg(long, default_value_t = 20)]
    ptime_ms: usize,
}

pub fn run(o: &Opts) -> Result<()> {
    let fifo = o.fifo.clone();
    let files: [Arc<[u8]>; 2] = [
        std::fs::read(&o.left)?.into(),
        std::fs::read(&o.right)?.into(),
    ];
    let ptime = o.ptime_ms;
    if !(10..=60).contains(&ptime) {
        bail!("--ptime-ms {ptime}: give 10 to 60");
    }
    let size = ptime * PER_MS;
    let interval = Duration::from_millis(ptime as u64);
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let calls = read_calls(&fifo);

    let cpu0 = cpu_seconds()?;
    let started = Instant::now();
    let mut heap = BinaryHeap::<Reverse<Due>>::new();
    let (mut packets, mut send_errors, mut answered) = (0u64, 0u64, 0u64);
    // Lateness against the sender's own schedule: the worst, and how many packets were later
    // than one packet interval.
    let (mut worst, mut late) = (Duration::ZERO, 0u64);
    let mut open = true;
    let mut packet = Vec::with_capacity(12 + size);
    loop {
        // New calls: wait for one while idle, otherwise only take what is there.
        let next = if heap.is_empty() {
            calls.recv().map_err(|_| TryRecvError::Disconnected)
        } else {
            calls.try_recv()
        };
        match next {
            Ok((call, port)) => {
                answered += 1;
                let now = Instant::now();
                for (i, audio) in files.iter().enumerate() {
                    let stream = Stream {
                        dest: SocketAddr::from((Ipv4Addr::LOCALHOST, port + 2 * i as u16)),
                        audio: audio.clone(),
                        ssrc: 0x5151_0000u32.wrapping_add(call.wrapping_mul(2) + i as u32),
                        n: 0,
                        start: now,
                    };
                    heap.push(Reverse(Due(now, stream)));
                }
                continue;
            }
            Err(TryRecvError::Disconnected) => open = false,
            Err(TryRecvError::Empty) => {}
        }
        if !open && heap.is_empty() {
            break;
        }
        let now = Instant::now();
        while let Some(Reverse(Due(at, _))) = heap.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse(Due(at, mut s))) = heap.pop() else {
                break;
            };
            worst = worst.max(now - at);
            late += u64::from(now - at > interval);
            let from = s.n * size;
            let chunk = &s.audio[from..(from + size).min(s.audio.len())];
            packet.clear();
            packet.extend_from_slice(&[0x80, 0]);
            packet.extend_from_slice(&(s.n as u16).to_be_bytes());
            packet.extend_from_slice(&((s.n * size) as u32).to_be_bytes());
            packet.extend_from_slice(&s.ssrc.to_be_bytes());
            packet.extend_from_slice(chunk);
            match socket.send_to(&packet, s.dest) {
                Ok(_) => packets += 1,
                Err(_) => send_errors += 1,
            }
            s.n += 1;
            if s.n * size < s.audio.len() {
                let at = s.start + interval * s.n as u32;
                heap.push(Reverse(Due(at, s)));
            }
        }
        if let Some(Reverse(Due(at, _))) = heap.peek() {
            let now = Instant::now();
            std::thread::sleep(at.saturating_duration_since(now).max(QUANTUM));
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu0;
    println!(
        "rtp-send: {answered} calls, {packets} packets sent ({send_errors} send errors), \
         worst lateness {:.1} ms against its own schedule, {late} packets later than {ptime} ms",
        worst.as_secs_f64() * 1e3
    );
    println!(
        "rtp-send: {cpu:.1} s CPU over {wall:.1} s wall (≈ {:.0} % of one core)",
        100.0 * cpu / wall
    );
    if send_errors > 0 {
        bail!("{send_errors} packets could not be sent");
    }
    Ok(())
}

/// A reader thread for the FIFO (reads block; the sending thread must not): one `(call, port)`
/// per line, until end of file.
fn read_calls(fifo: &Path) -> mpsc::Receiver<(u32, u16)> {
    let (tx, rx) = mpsc::channel();
    let fifo = fifo.to_owned();
    std::thread::spawn(move || {
        let lines = match std::fs::File::open(&fifo) {
            Ok(f) => std::io::BufReader::new(f).lines(),
            Err(e) => return eprintln!("rtp-send: opening {}: {e}", fifo.display()),
        };
        for line in lines.map_while(Result::ok) {
            let mut words = line.split_whitespace().map(str::parse::<u32>);
            match (words.next(), words.next()) {
                (Some(Ok(call)), Some(Ok(port))) if port < 65534 => {
                    if tx.send((call, port as u16)).is_err() {
                        return;
                    }
                }
                _ => eprintln!("rtp-send: ignoring {line:?}; expected \"CALL PORT\""),
            }
        }
    });
    rx
}

/// User + system CPU time of this process so far, from `/proc/self/stat` (in `USER_HZ` ticks,
/// which Linux fixes at 100 for user space).
fn cpu_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: state is field 3, utime 14, stime 15.
    let tick = |i: usize| -> Result<f64> {
        Ok(fields
            .get(i - 3)
            .context("short /proc/self/stat")?
            .parse::<f64>()?)
    };
    Ok((tick(14)? + tick(15)?) / 100.0)
}
