//! One call's RTP on one timeline: each packet is placed by its RTP timestamp, what never
//! arrived stays silence, and the two recorded streams come out side by side (channel 0 left)
//! in 200 ms interleaved frames once they are older than the jitter allowance. Loss (RFC 3550
//! A.1/A.3), late packets and the SRC's pauses are counted on the way.
//!
//! No I/O and no clock: the caller says when each packet arrived and what time it is (as
//! `Instant`s it read), and decides where frames go. How an output sample is stored is the
//! caller's too ([`SampleFormat`]), so G.711 decoding stays out of this crate.

use crate::rtp;
use crate::sdp::Codec;
use std::time::Instant;

/// 8 kHz G.711: samples per millisecond of the timeline.
pub const PER_MS: i64 = 8;
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

/// How the output stores a sample. Runs for every packet, so implementations should copy
/// whole slices where they can rather than go sample by sample at runtime width.
pub trait SampleFormat: Copy {
    /// Bytes per sample.
    fn width(self) -> usize;
    /// Every byte of a silent sample (the same for both bytes of a 16-bit one).
    fn silence(self) -> u8;
    /// Writes `payload` (in `from`) into `out` (exactly its size in this format).
    fn convert(self, from: Codec, payload: &[u8], out: &mut [u8]);
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

/// One call's timeline, owned by whoever receives the call's packets.
pub struct Mixer<F> {
    tracks: Vec<Track>,
    output: F,
    /// Timeline sample index of `buffers[_][0]`.
    base: i64,
    /// One buffer per output channel (at most two), in output-format bytes.
    buffers: [Vec<u8>; 2],
    /// The instant of timeline sample 0: the first packet of any stream.
    start: Option<Instant>,
    late: u64,
    pauses: Vec<(i64, Option<i64>)>,
}

impl<F: SampleFormat> Mixer<F> {
    /// A mixer for streams of these (payload type, codec), in channel order: channels 0 and 1
    /// are recorded, any further one is tracked but not recorded.
    pub fn new(codecs: Vec<(u8, Codec)>, output: F) -> Self {
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
            late: 0,
            pauses: Vec::new(),
        }
    }

    /// The timeline position (in samples) of `at`.
    pub fn now(&self, at: Instant) -> i64 {
        self.start.map_or(0, |s| {
            at.saturating_duration_since(s).as_millis() as i64 * PER_MS
        })
    }

    /// Places the RTP packet `bytes` of `channel`, which arrived `at`.
    pub fn place(&mut self, channel: usize, bytes: &[u8], at: Instant) {
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
    pub fn take_frame(&mut self, now: i64, all: bool) -> Option<Vec<u8>> {
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

    /// Packets never received, by sequence number.
    pub fn lost(&self) -> u64 {
        self.tracks
            .iter()
            .filter_map(|t| {
                let first = t.first_seq?;
                Some((t.highest_seq + 1 - first).saturating_sub(t.received))
            })
            .sum()
    }

    /// Packets that came after their frame was taken, and were dropped.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Whether the SRC has paused every stream (so silence on the wire is on purpose).
    pub fn all_paused(&self) -> bool {
        self.tracks.iter().all(|t| t.paused)
    }

    /// Pauses or resumes `channel` at timeline position `now`. One interval runs from the
    /// first stream paused until no stream is.
    pub fn pause(&mut self, channel: usize, paused: bool, now: i64) {
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

    /// At the end of the call: an interval still open closes at `now`.
    pub fn end_pauses(&mut self, now: i64) {
        if let Some((_, end @ None)) = self.pauses.last_mut() {
            *end = Some(now);
        }
    }

    /// The intervals in which the SRC had paused a stream, in timeline samples (the end is
    /// `None` while still paused).
    pub fn pauses(&self) -> &[(i64, Option<i64>)] {
        &self.pauses
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// µ-law stored as it came, the format of a call whose streams agree.
    #[derive(Clone, Copy)]
    struct Ulaw;

    impl SampleFormat for Ulaw {
        fn width(self) -> usize {
            1
        }
        fn silence(self) -> u8 {
            0xFF
        }
        fn convert(self, _: Codec, payload: &[u8], out: &mut [u8]) {
            out.copy_from_slice(payload);
        }
    }

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
        let mut m = Mixer::new(vec![(0, Codec::Pcmu), (0, Codec::Pcmu)], Ulaw);
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
        let mut m = Mixer::new(vec![(0, Codec::Pcmu)], Ulaw);
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
        let mut m = Mixer::new(vec![(0, Codec::Pcmu)], Ulaw);
        let t0 = Instant::now();
        m.place(0, &packet(1, 0, 1, 1), t0);
        m.pause(0, true, 160);
        m.place(0, &packet(2, 160, 1, 9), t0);
        m.pause(0, false, 800);
        assert_eq!(m.pauses(), &[(160, Some(800))]);
        let f = m.take_frame(0, true).unwrap_or_default();
        assert!(!f.contains(&9));
    }

    #[test]
    fn sequence_numbers_extend_across_wrap() {
        assert_eq!(extend_seq(Some(0x1_FFFF), 2), 0x2_0002);
        assert_eq!(extend_seq(Some(0x2_0002), 0xFFFF), 0x1_FFFF);
    }
}
