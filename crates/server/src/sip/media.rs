//! RTP for one recorded call: one task per call reads the call's stream sockets itself (socket
//! → peer check → SRTP check → parse) and feeds the mixer, which places each packet by its RTP
//! timestamp on the call's timeline, fills what never arrived with silence, and hands 200 ms
//! stereo frames (caller left) to [`LiveCalls::append`] once they are older than the jitter
//! allowance.
//!
//! The task is the only owner of the call's audio state, so no locks: signalling talks to it
//! through [`Control`] messages (pause, resume, finish). Plaintext lives only in its buffers.
//! Reading the sockets in the same task (rather than a receiving task per stream and a channel
//! to the mixer) makes a packet cost one wake-up and no allocation: at 1,000 calls that is
//! 100,000 packets a second (BENCHMARKS.md §7).

use crate::audit_log::Event;
use crate::live::{LiveCalls, Paused, PausedBy};
use crate::state::AppState;
use callvault_core::{RecordingId, TenantId};
use callvault_sip::{rtp, sdp::Codec, srtp};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// 8 kHz G.711: samples per millisecond.
const PER_MS: i64 = 8;
/// One live chunk: 200 ms.
const FRAME: i64 = 200 * PER_MS;
/// A frame is stored once it is this old by the wall clock (so a stream starting a little after
/// the other still gets its first packets in) and every sending stream has written `MARGIN`
/// past its end (so a packet or two reordered across the boundary still lands)…
const MIN_WAIT: i64 = 300 * PER_MS;
const MARGIN: i64 = 40 * PER_MS;
/// …or, for a stream that stalls or stopped, once the frame is this old by the wall clock:
/// how late a packet may arrive and still be placed.
const MAX_WAIT: i64 = 2_000 * PER_MS;
/// A packet further than this from where its stream is expected re-anchors the stream (an
/// SRC that restarted its timestamps); otherwise one bad timestamp could stretch the call.
const MAX_JUMP: i64 = 10_000 * PER_MS;
/// A stream whose first packet comes within this of the other's starts at the same sample.
const ALIGN: i64 = 160;

/// Counters shared by every call, for `/metrics`.
#[derive(Default)]
pub struct MediaCounters {
    pub packets: AtomicU64,
    pub srtp_auth_failures: AtomicU64,
    pub foreign_packets: AtomicU64,
    pub late_packets: AtomicU64,
    pub lost_packets: AtomicU64,
}

pub enum Control {
    /// `a=inactive` in a re-INVITE: the SRC stopped the stream on purpose.
    Pause(usize),
    Resume(usize),
    /// BYE (or giving up on a missing ACK): finalise, recording why as `ended_by`; the
    /// sender is told once the recording is journalled.
    Finish(tokio::sync::oneshot::Sender<()>, &'static str),
}

enum Input {
    /// A datagram of `len` bytes from `from` is in [`Receivers::buf`].
    Datagram {
        channel: usize,
        len: usize,
        from: SocketAddr,
    },
    Control(Control),
    /// Every [`MediaHandle`] is gone without a Finish.
    SignallingGone,
    /// Every 20 ms: time to emit frames or notice a timeout.
    Tick,
}

/// What one channel of the output needs to know about its stream.
pub struct StreamSpec {
    pub socket: UdpSocket,
    pub payload_type: u8,
    pub codec: Codec,
    /// SRTP keys when the stream is RTP/SAVP.
    pub srtp: Option<srtp::Context>,
}

pub struct CallSpec {
    pub tenant: TenantId,
    pub id: RecordingId,
    /// Packets from other addresses are dropped and counted.
    pub peers: Vec<IpAddr>,
    pub channels: Vec<StreamSpec>,
    /// The output codec: the streams' own when they agree (lossless), else 16-bit PCM.
    pub output: Codec16,
    pub rtp_timeout: Duration,
    pub finish_event: Event,
}

/// The stored sample format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec16 {
    G711(Codec),
    Pcm16,
}

impl Codec16 {
    pub fn live_name(self) -> &'static str {
        match self {
            Self::G711(Codec::Pcmu) => "mulaw",
            Self::G711(Codec::Pcma) => "alaw",
            Self::Pcm16 => "pcm16",
        }
    }

    fn width(self) -> usize {
        if self == Self::Pcm16 { 2 } else { 1 }
    }

    /// Every byte of a silent sample (the same for both bytes of a 16-bit one).
    fn silence(self) -> u8 {
        match self {
            Self::G711(Codec::Pcmu) => 0xFF,
            Self::G711(Codec::Pcma) => 0xD5,
            Self::Pcm16 => 0,
        }
    }

    /// Writes `payload` (in `from`) into `out` (exactly its size in this format). G.711 output
    /// is only chosen when the streams agree with it, so that case is a copy; this runs for
    /// every packet, hence no per-sample copies of runtime width.
    fn convert(self, from: Codec, payload: &[u8], out: &mut [u8]) {
        match self {
            Self::G711(_) => out.copy_from_slice(payload),
            Self::Pcm16 => {
                for (o, &b) in out.chunks_exact_mut(2).zip(payload) {
                    let linear = match from {
                        Codec::Pcmu => callvault_media::g711::ulaw_to_linear(b),
                        Codec::Pcma => callvault_media::g711::alaw_to_linear(b),
                    };
                    o.copy_from_slice(&linear.to_le_bytes());
                }
            }
        }
    }
}

/// Handle the signalling side keeps for a running call.
#[derive(Clone)]
pub struct MediaHandle(mpsc::Sender<Control>);

impl MediaHandle {
    pub async fn control(&self, c: Control) {
        let _ = self.0.send(c).await;
    }
}

/// Starts the call's media task; it ends the call on Finish or RTP timeout.
pub fn start(
    st: AppState,
    counters: Arc<MediaCounters>,
    spec: CallSpec,
    on_end: impl FnOnce() + Send + 'static,
) -> MediaHandle {
    let (tx, rx) = mpsc::channel(64);
    let codecs = spec
        .channels
        .iter()
        .map(|s| (s.payload_type, s.codec))
        .collect();
    let mixer = Mixer::new(codecs, spec.output);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let inputs = Inputs {
        control: rx,
        receivers: Receivers::new(spec.channels, spec.peers),
        tick,
    };
    let handle = MediaHandle(tx);
    tokio::spawn(async move {
        let live = &st.live;
        let outcome = run(
            mixer,
            inputs,
            live,
            &spec.tenant,
            &spec.id,
            spec.rtp_timeout,
            &counters,
        )
        .await;
        // The dialog (and with it the RTP port lease) goes now; storing may take a while. The
        // sockets closed with `run`.
        on_end();
        let (reply, details, paused) = outcome;
        // What the SRC did to the media (pauses, loss, why it ended) is its own audit entry
        // on the call, just before the live pipeline's finish entry.
        let mut ended = spec.finish_event.clone();
        ended.action = "siprec.media";
        ended.target = Some(spec.id.to_string());
        ended.details = Some(details);
        if let Err(e) = st.audit.record(ended).await {
            tracing::error!(error = %e, call = %spec.id, "auditing the end of a SIPREC call failed");
        }
        // A full node's assembler stores the call soon after; it is safe in the journal meanwhile.
        if let Err(e) = live
            .finish(&spec.tenant, &spec.id, None, &paused, spec.finish_event)
            .await
        {
            tracing::error!(error = %e, call = %spec.id, "finishing a SIPREC call failed");
        }
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
    });
    handle
}

/// Everything the call's task waits for.
struct Inputs {
    control: mpsc::Receiver<Control>,
    receivers: Receivers,
    tick: tokio::time::Interval,
}

impl Inputs {
    async fn next(&mut self) -> Input {
        std::future::poll_fn(|cx| {
            // Signalling first: a Finish must not wait behind a stream of packets.
            if let Poll::Ready(c) = self.control.poll_recv(cx) {
                return Poll::Ready(c.map_or(Input::SignallingGone, Input::Control));
            }
            if let Poll::Ready(datagram) = self.receivers.poll_datagram(cx) {
                return Poll::Ready(datagram);
            }
            self.tick.poll_tick(cx).map(|_| Input::Tick)
        })
        .await
    }
}

/// The call's stream sockets, read by the call's own task.
struct Receivers {
    streams: Vec<StreamSpec>,
    /// A socket that failed is not polled again (it would fail at once, for ever).
    failed: Vec<bool>,
    /// Packets from other addresses are dropped and counted.
    peers: Vec<IpAddr>,
    /// The stream polled first next time, so that one busy stream cannot starve another.
    next: usize,
    buf: Vec<u8>,
}

impl Receivers {
    fn new(streams: Vec<StreamSpec>, peers: Vec<IpAddr>) -> Self {
        Self {
            failed: vec![false; streams.len()],
            streams,
            peers,
            next: 0,
            buf: vec![0u8; 2048],
        }
    }

    /// The next datagram of any stream, left in `buf`.
    fn poll_datagram(&mut self, cx: &mut Context<'_>) -> Poll<Input> {
        let n = self.streams.len();
        for k in (0..n).map(|i| (self.next + i) % n) {
            if self.failed[k] {
                continue;
            }
            let mut read = ReadBuf::new(&mut self.buf);
            match self.streams[k].socket.poll_recv_from(cx, &mut read) {
                Poll::Ready(Ok(from)) => {
                    let len = read.filled().len();
                    self.next = (k + 1) % n;
                    return Poll::Ready(Input::Datagram {
                        channel: k,
                        len,
                        from,
                    });
                }
                Poll::Ready(Err(e)) => {
                    tracing::warn!(error = %e, "an RTP socket failed; its stream is no longer read");
                    self.failed[k] = true;
                }
                Poll::Pending => {}
            }
        }
        Poll::Pending
    }

    /// The RTP packet in the datagram just read, if it came from a peer and (with SRTP)
    /// authenticates; counted either way.
    fn packet(
        &mut self,
        channel: usize,
        len: usize,
        from: SocketAddr,
        counters: &MediaCounters,
    ) -> Option<Cow<'_, [u8]>> {
        if !self.peers.contains(&from.ip()) {
            counters.foreign_packets.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let datagram = &self.buf[..len];
        let bytes = match &mut self.streams.get_mut(channel)?.srtp {
            Some(ctx) => match ctx.unprotect(datagram) {
                Ok(plain) => Cow::Owned(plain),
                Err(_) => {
                    counters.srtp_auth_failures.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            },
            None => Cow::Borrowed(datagram),
        };
        counters.packets.fetch_add(1, Ordering::Relaxed);
        Some(bytes)
    }
}

/// Per-stream placement state.
struct Track {
    payload_type: u8,
    codec: Codec,
    paused: bool,
    /// (SSRC, RTP timestamp of the anchor packet, its sample position on the call timeline).
    anchor: Option<(u32, u32, i64)>,
    /// Sequence accounting for loss (RFC 3550 A.3): first and highest extended sequence.
    first_seq: Option<u64>,
    highest_seq: u64,
    received: u64,
    /// Timeline position just past the last sample written.
    end: i64,
}

struct Mixer {
    tracks: Vec<Track>,
    output: Codec16,
    /// Timeline sample index of `buffers[_][0]`.
    base: i64,
    /// One buffer per output channel (at most two), in output-format bytes.
    buffers: [Vec<u8>; 2],
    /// The instant of timeline sample 0: the first packet of any stream.
    start: Option<Instant>,
    seq: u64,
    late: u64,
    pauses: Vec<(i64, Option<i64>)>,
}

impl Mixer {
    fn new(codecs: Vec<(u8, Codec)>, output: Codec16) -> Self {
        Self {
            tracks: codecs
                .into_iter()
                .map(|(payload_type, codec)| Track {
                    payload_type,
                    codec,
                    paused: false,
                    anchor: None,
                    first_seq: None,
                    highest_seq: 0,
                    received: 0,
                    end: 0,
                })
                .collect(),
            output,
            base: 0,
            buffers: [Vec::new(), Vec::new()],
            start: None,
            seq: 0,
            late: 0,
            pauses: Vec::new(),
        }
    }

    fn now(&self, at: Instant) -> i64 {
        self.start.map_or(0, |s| {
            at.saturating_duration_since(s).as_millis() as i64 * PER_MS
        })
    }

    fn place(&mut self, channel: usize, bytes: &[u8], at: Instant) {
        let Ok(packet) = rtp::parse(bytes) else {
            return;
        };
        let h = packet.header;
        self.start.get_or_insert(at);
        let now = self.now(at);
        let Some(track) = self.tracks.get_mut(channel) else {
            return;
        };
        if track.paused {
            return;
        }
        // Telephone events and unknown payloads are not audio; comfort noise is silence,
        // which the buffer already holds.
        if h.payload_type != track.payload_type {
            return;
        }
        let ext = extend_seq(track.first_seq.map(|_| track.highest_seq), h.sequence);
        if track.first_seq.is_none() {
            track.first_seq = Some(ext);
        }
        track.highest_seq = track.highest_seq.max(ext);
        track.received += 1;
        let pos = match track.anchor {
            Some((ssrc, ts, at_pos)) if ssrc == h.ssrc => {
                let pos = at_pos + i64::from(h.timestamp.wrapping_sub(ts) as i32);
                if (pos - now).abs() > MAX_JUMP {
                    None
                } else {
                    Some(pos)
                }
            }
            _ => None,
        };
        let pos = pos.unwrap_or_else(|| {
            // New stream, new SSRC, or a timestamp jump: start here, aligned to a packet
            // boundary so that streams starting together stay sample-aligned, and never before
            // what this stream already wrote.
            let aligned = (now + ALIGN / 2) / ALIGN * ALIGN;
            let pos = aligned.max(track.end);
            track.anchor = Some((h.ssrc, h.timestamp, pos));
            track.first_seq = Some(ext);
            pos
        });
        if channel >= 2 {
            return;
        }
        if pos < self.base {
            self.late += 1;
            return;
        }
        let codec = track.codec;
        let output = self.output;
        let width = output.width();
        let buf = &mut self.buffers[channel];
        let offset = (pos - self.base) as usize * width;
        let needed = offset + packet.payload.len() * width;
        if buf.len() < needed {
            buf.resize(needed, output.silence());
        }
        output.convert(codec, packet.payload, &mut buf[offset..needed]);
        track.end = track.end.max(pos + packet.payload.len() as i64);
    }

    /// The next interleaved frame if its time has passed (or `all`, at the end of the call).
    fn take_frame(&mut self, now: i64, all: bool) -> Option<Vec<u8>> {
        let end = self.tracks.iter().map(|t| t.end).max().unwrap_or(0);
        let frame_end = self.base + FRAME;
        let len = if all {
            (end - self.base).clamp(0, FRAME)
        } else if self.start.is_some()
            && (frame_end + MAX_WAIT <= now
                || (frame_end + MIN_WAIT <= now && self.all_past(frame_end + MARGIN)))
        {
            FRAME
        } else {
            0
        };
        if len <= 0 {
            return None;
        }
        let width = self.output.width();
        let silence = self.output.silence();
        let mut out = Vec::with_capacity(len as usize * width * 2);
        for i in 0..len as usize {
            for buf in &self.buffers {
                for at in i * width..(i + 1) * width {
                    out.push(buf.get(at).copied().unwrap_or(silence));
                }
            }
        }
        for buf in &mut self.buffers {
            buf.drain(..(len as usize * width).min(buf.len()));
        }
        self.base += len;
        Some(out)
    }

    /// Whether every stream that is sending has written up to `pos`.
    fn all_past(&self, pos: i64) -> bool {
        let mut sending = self
            .tracks
            .iter()
            .take(2)
            .filter(|t| t.anchor.is_some() && !t.paused)
            .peekable();
        sending.peek().is_some() && sending.all(|t| t.end >= pos)
    }

    fn lost(&self) -> u64 {
        self.tracks
            .iter()
            .filter_map(|t| {
                let first = t.first_seq?;
                Some((t.highest_seq + 1 - first).saturating_sub(t.received))
            })
            .sum()
    }

    fn all_paused(&self) -> bool {
        self.tracks.iter().all(|t| t.paused)
    }

    /// The intervals in which the SRC had paused a stream (closed at `end` if still open), for
    /// the recording's outcome.
    fn paused(&self, end: i64) -> Vec<Paused> {
        let ms = |s: i64| u64::try_from(s / PER_MS).unwrap_or(0);
        self.pauses
            .iter()
            .map(|&(from, to)| Paused {
                offset_ms: ms(from),
                length_ms: ms(to.unwrap_or(end) - from),
                by: PausedBy::Src,
            })
            .collect()
    }

    fn pause(&mut self, channel: usize, paused: bool, now: i64) {
        if let Some(t) = self.tracks.get_mut(channel) {
            if t.paused == paused {
                return;
            }
            t.paused = paused;
            // The next packet after a resume re-anchors: the SRC's timestamps kept running.
            t.anchor = None;
        }
        match (paused, self.pauses.last_mut()) {
            (true, Some((_, None))) => {}
            (true, _) => self.pauses.push((now, None)),
            (false, Some((_, end @ None))) if !self.tracks.iter().any(|t| t.paused) => {
                *end = Some(now);
            }
            _ => {}
        }
    }
}

/// RFC 3550 A.1: the extended sequence number closest to the highest seen.
fn extend_seq(highest: Option<u64>, seq: u16) -> u64 {
    let Some(highest) = highest else {
        return u64::from(seq) + (1 << 16);
    };
    let cycles = highest & !0xFFFF;
    let candidates = [cycles.saturating_sub(1 << 16), cycles, cycles + (1 << 16)];
    candidates
        .into_iter()
        .map(|c| c | u64::from(seq))
        .min_by_key(|c| c.abs_diff(highest))
        .unwrap_or(u64::from(seq))
}

async fn run(
    mut mixer: Mixer,
    mut inputs: Inputs,
    live: &LiveCalls,
    tenant: &TenantId,
    id: &RecordingId,
    rtp_timeout: Duration,
    counters: &MediaCounters,
) -> (
    Option<tokio::sync::oneshot::Sender<()>>,
    serde_json::Value,
    Vec<Paused>,
) {
    let mut last_packet = Instant::now();
    let mut append_failed = None;
    let (reply, reason) = loop {
        let input = inputs.next().await;
        let now = Instant::now();
        match input {
            Input::SignallingGone => break (None, "signalling_gone"),
            Input::Datagram { channel, len, from } => {
                if let Some(bytes) = inputs.receivers.packet(channel, len, from, counters) {
                    last_packet = now;
                    mixer.place(channel, &bytes, now);
                }
            }
            Input::Control(Control::Finish(reply, why)) => break (Some(reply), why),
            Input::Control(Control::Pause(ch)) => mixer.pause(ch, true, mixer.now(now)),
            Input::Control(Control::Resume(ch)) => {
                mixer.pause(ch, false, mixer.now(now));
                last_packet = now;
            }
            Input::Tick => {}
        }
        // While the SRC has paused every stream it sends nothing on purpose.
        let limit = if mixer.all_paused() {
            rtp_timeout * 120
        } else {
            rtp_timeout
        };
        if now.duration_since(last_packet) > limit {
            break (None, "rtp_timeout");
        }
        while let Some(frame) = mixer.take_frame(mixer.now(now), false) {
            if let Err(e) = live.append(tenant, id, mixer.seq, &frame).await {
                append_failed = Some(e.to_string());
            }
            mixer.seq += 1;
        }
    };
    let now = mixer.now(Instant::now());
    if let Some((_, end @ None)) = mixer.pauses.last_mut() {
        *end = Some(now);
    }
    while let Some(frame) = mixer.take_frame(now, true) {
        if let Err(e) = live.append(tenant, id, mixer.seq, &frame).await {
            append_failed = Some(e.to_string());
        }
        mixer.seq += 1;
    }
    let lost = mixer.lost();
    counters.lost_packets.fetch_add(lost, Ordering::Relaxed);
    counters
        .late_packets
        .fetch_add(mixer.late, Ordering::Relaxed);
    let ms = |s: i64| s / PER_MS;
    let details = serde_json::json!({
        "protocol": "siprec",
        "ended_by": reason,
        "lost_packets": lost,
        "late_packets": mixer.late,
        "paused_by_src_ms": mixer.pauses.iter().map(|(a, b)| [ms(*a), ms(b.unwrap_or(now))]).collect::<Vec<_>>(),
        "journal_error": append_failed,
    });
    (reply, details, mixer.paused(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16, ts: u32, ssrc: u32, fill: u8) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p.extend(std::iter::repeat_n(fill, 160));
        p
    }

    fn left(frames: &[Vec<u8>]) -> Vec<u8> {
        frames
            .iter()
            .flat_map(|f| f.iter().step_by(2).copied())
            .collect()
    }

    #[test]
    fn reordered_lost_and_ssrc_changed_packets_land_in_place() {
        let mut m = Mixer::new(
            vec![(0, Codec::Pcmu), (0, Codec::Pcmu)],
            Codec16::G711(Codec::Pcmu),
        );
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        m.place(0, &packet(10, 1000, 1, 1), at(0));
        m.place(0, &packet(12, 1320, 1, 3), at(40)); // 11 arrives late
        m.place(0, &packet(11, 1160, 1, 2), at(45));
        // 13 lost; then the SRC switches SSRC with unrelated timestamps
        m.place(0, &packet(500, 90_000, 2, 5), at(80));
        m.place(1, &packet(7, 5, 9, 7), at(3)); // right channel starts within the alignment
        let mut frames = Vec::new();
        while let Some(f) = m.take_frame(0, true) {
            frames.push(f);
        }
        let l = left(&frames);
        assert_eq!(&l[..160], &[1; 160]);
        assert_eq!(&l[160..320], &[2; 160]);
        assert_eq!(&l[320..480], &[3; 160]);
        assert_eq!(&l[480..640], &[0xFF; 160], "the lost packet is silence");
        assert_eq!(
            &l[640..800],
            &[5; 160],
            "the new SSRC starts at its arrival time"
        );
        let r: Vec<u8> = frames
            .iter()
            .flat_map(|f| f.iter().skip(1).step_by(2).copied())
            .collect();
        assert_eq!(&r[..160], &[7; 160], "aligned with the left channel");
        assert_eq!(
            &r[160..800],
            &[0xFF; 640],
            "silence after the right stream ended"
        );
        assert_eq!(m.lost(), 0, "an SSRC change restarts loss accounting");
    }

    #[test]
    fn loss_is_silence_and_counted() {
        let mut m = Mixer::new(vec![(0, Codec::Pcmu)], Codec16::G711(Codec::Pcmu));
        let t0 = Instant::now();
        m.place(0, &packet(1, 0, 1, 1), t0);
        m.place(0, &packet(3, 320, 1, 3), t0);
        let f = m.take_frame(0, true).unwrap_or_default();
        let l: Vec<u8> = f.iter().step_by(2).copied().collect();
        assert_eq!(&l[160..320], &[0xFF; 160]);
        assert_eq!(m.lost(), 1);
    }

    #[test]
    fn paused_streams_drop_packets_and_record_the_interval() {
        let mut m = Mixer::new(vec![(0, Codec::Pcmu)], Codec16::G711(Codec::Pcmu));
        let t0 = Instant::now();
        m.place(0, &packet(1, 0, 1, 1), t0);
        m.pause(0, true, 160);
        m.place(0, &packet(2, 160, 1, 9), t0);
        m.pause(0, false, 800);
        assert_eq!(m.pauses, vec![(160, Some(800))]);
        assert_eq!(
            m.paused(2000),
            vec![Paused {
                offset_ms: 20,
                length_ms: 80,
                by: PausedBy::Src
            }]
        );
        let f = m.take_frame(0, true).unwrap_or_default();
        assert!(!f.contains(&9));
    }

    #[test]
    fn sequence_numbers_extend_across_wrap() {
        assert_eq!(extend_seq(Some(0x1_FFFF), 2), 0x2_0002);
        assert_eq!(extend_seq(Some(0x2_0002), 0xFFFF), 0x1_FFFF);
    }
}
