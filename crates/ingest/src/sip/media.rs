//! RTP for one recorded call: one task per call reads the call's stream sockets itself (socket
//! → peer check → SRTP check) and feeds the call's [`Mixer`] (`callvault_sip::mixer`, which
//! places each packet by its RTP timestamp on the call's timeline and fills what never arrived
//! with silence), and hands its 200 ms stereo frames (caller left) to [`LiveCalls::append`].
//!
//! The task is the only owner of the call's audio state, so no locks: signalling talks to it
//! through [`Control`] messages (pause, resume, finish). Plaintext lives only in its buffers.
//! Reading the sockets in the same task (rather than a receiving task per stream and a channel
//! to the mixer) makes a packet cost one wake-up and no allocation: at 1,000 calls that is
//! 100,000 packets a second (BENCHMARKS.md §7).

use crate::Ingest;
use crate::audit_log::Event;
use crate::live::{LiveCalls, Paused, PausedBy};
use callvault_core::{RecordingId, TenantId};
pub use callvault_service::metrics::MediaCounters;
use callvault_sip::mixer::{Mixer, PER_MS, SampleFormat};
use callvault_sip::{sdp::Codec, srtp};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;
use std::time::Instant;
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

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
}

impl SampleFormat for Codec16 {
    fn width(self) -> usize {
        if self == Self::Pcm16 { 2 } else { 1 }
    }

    fn silence(self) -> u8 {
        match self {
            Self::G711(Codec::Pcmu) => 0xFF,
            Self::G711(Codec::Pcma) => 0xD5,
            Self::Pcm16 => 0,
        }
    }

    /// G.711 output is only chosen when the streams agree with it, so that case is a copy.
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
    st: Ingest,
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

async fn run(
    mut mixer: Mixer<Codec16>,
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
    // The live chunk sequence: one chunk per frame.
    let mut seq = 0;
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
            if let Err(e) = live.append(tenant, id, seq, &frame).await {
                append_failed = Some(e.to_string());
            }
            seq += 1;
        }
    };
    let now = mixer.now(Instant::now());
    mixer.end_pauses(now);
    while let Some(frame) = mixer.take_frame(now, true) {
        if let Err(e) = live.append(tenant, id, seq, &frame).await {
            append_failed = Some(e.to_string());
        }
        seq += 1;
    }
    let lost = mixer.lost();
    counters.lost_packets.fetch_add(lost, Ordering::Relaxed);
    counters
        .late_packets
        .fetch_add(mixer.late(), Ordering::Relaxed);
    let ms = |s: i64| s / PER_MS;
    let details = serde_json::json!({
        "protocol": "siprec",
        "ended_by": reason,
        "lost_packets": lost,
        "late_packets": mixer.late(),
        "paused_by_src_ms": mixer.pauses().iter().map(|(a, b)| [ms(*a), ms(b.unwrap_or(now))]).collect::<Vec<_>>(),
        "journal_error": append_failed,
    });
    (reply, details, paused(mixer.pauses(), now))
}

/// The intervals in which the SRC had paused a stream (closed at `end` if still open), for
/// the recording's outcome.
fn paused(pauses: &[(i64, Option<i64>)], end: i64) -> Vec<Paused> {
    let ms = |s: i64| u64::try_from(s / PER_MS).unwrap_or(0);
    pauses
        .iter()
        .map(|&(from, to)| Paused {
            offset_ms: ms(from),
            length_ms: ms(to.unwrap_or(end) - from),
            by: PausedBy::Src,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn src_pauses_become_the_recordings_paused_intervals() {
        assert_eq!(
            paused(&[(160, Some(800))], 2000),
            vec![Paused {
                offset_ms: 20,
                length_ms: 80,
                by: PausedBy::Src
            }]
        );
    }
}
