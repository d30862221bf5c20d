//! Generators of small, valid, deterministic media files for tests and benchmarks in other
//! crates (feature `testgen`). Output depends only on the arguments, so a failing test can be
//! reproduced from its seed. The payloads are pseudo-random: MP3 and Opus decoders may produce
//! noise from them, but every file passes [`crate::probe`].

use crate::{Codec, g711, ogg};

/// SplitMix64: tiny, deterministic, good enough to make non-repeating test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `lo..hi` (`hi > lo`).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

/// A complete WAV file of `samples_per_channel` frames of speech-like audio.
///
/// The signal is filtered noise shaped by a syllable-rate envelope (bursts and quieter gaps,
/// never digital silence), so compression and silence detection behave roughly as on speech and
/// there are no long runs of identical samples. µ-law and A-law are encoded with [`g711`].
/// Returns an empty vector for codecs WAV cannot carry (see [`crate::wav::header`]).
pub fn wav(
    codec: Codec,
    channels: u16,
    sample_rate: u32,
    samples_per_channel: usize,
    seed: u64,
) -> Vec<u8> {
    let bytes_per_sample = if codec == Codec::Pcm16 { 2 } else { 1 };
    let data_len = samples_per_channel
        .saturating_mul(usize::from(channels))
        .saturating_mul(bytes_per_sample);
    let Ok(data_len32) = u32::try_from(data_len) else {
        return Vec::new();
    };
    let mut out = crate::wav::header(codec, channels, sample_rate, data_len32);
    if out.is_empty() {
        return out;
    }
    out.reserve(data_len + 1);

    let mut rng = Rng::new(seed);
    let syllable = (u64::from(sample_rate) / 5).max(1) as usize; // ~200 ms
    let mut state = vec![0i32; usize::from(channels)];
    let mut target = 6000i32;
    let mut envelope = 0i32;
    for i in 0..samples_per_channel {
        if i % syllable == 0 {
            // Alternate loud syllables with quiet (but not silent) gaps.
            target = if rng.next().is_multiple_of(3) {
                300
            } else {
                rng.range(3000, 14000) as i32
            };
        }
        envelope += (target - envelope) / 64;
        for s in state.iter_mut() {
            let noise = (rng.next() >> 48) as i32 - 32768;
            // One-pole low-pass: energy concentrated in the low band, like voiced speech.
            *s += (noise - *s) / 3;
            let sample = (i64::from(*s) * i64::from(envelope.max(200)) / 16384)
                .clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16;
            match codec {
                Codec::Pcm16 => out.extend_from_slice(&sample.to_le_bytes()),
                Codec::Mulaw => out.push(g711::linear_to_ulaw(sample)),
                Codec::Alaw => out.push(g711::linear_to_alaw(sample)),
                Codec::Mp3 | Codec::Opus => {}
            }
        }
    }
    if data_len % 2 == 1 {
        out.push(0); // RIFF pad byte
    }
    out
}

/// An MP3 file: a minimal ID3v2.4 tag, then `frames` MPEG-1 Layer III frames at 128 kbit/s,
/// 44.1 kHz, joint stereo, with pseudo-random payloads.
///
/// The padding bit follows the encoder rule (a frame is padded when the running byte count
/// falls behind the exact 417.96 bytes per frame), so the file has a true constant bitrate.
pub fn mp3(frames: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(64 + frames * 418);

    // ID3v2.4 tag with one TSSE (encoder) text frame.
    let text = b"\x03callvault testgen";
    let frame_size = text.len() as u32;
    let body_size = 10 + frame_size;
    out.extend_from_slice(b"ID3\x04\x00\x00");
    out.extend_from_slice(&synchsafe(body_size));
    out.extend_from_slice(b"TSSE");
    out.extend_from_slice(&synchsafe(frame_size));
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(text);

    // bytes per frame = 1152/8 * 128000 / 44100 = 417.959...
    const NUM: u64 = 144 * 128_000;
    const DEN: u64 = 44_100;
    for i in 0..frames as u64 {
        let len = ((i + 1) * NUM / DEN - i * NUM / DEN) as usize;
        let padding: u8 = if len > 417 { 1 } else { 0 };
        // Sync, MPEG-1, Layer III, no CRC | 128 kbit/s, 44.1 kHz, padding | joint stereo, original.
        let start = out.len();
        out.extend_from_slice(&[0xFF, 0xFB, 0x90 | (padding << 1), 0x44]);
        out.resize(start + len, 0);
        if let Some(payload) = out.get_mut(start + 4..) {
            rng.fill(payload);
            // main_data_begin = 0 (first 9 bits of side info): no reference to earlier frames.
            if let Some(first) = payload.first_mut() {
                *first = 0;
            }
            if let Some(second) = payload.get_mut(1) {
                *second &= 0x7F;
            }
        }
    }
    out
}

fn synchsafe(n: u32) -> [u8; 4] {
    [
        ((n >> 21) & 0x7F) as u8,
        ((n >> 14) & 0x7F) as u8,
        ((n >> 7) & 0x7F) as u8,
        (n & 0x7F) as u8,
    ]
}

/// Pre-skip written into OpusHead: the value libopus encoders use.
pub const OPUS_PRE_SKIP: u16 = 312;

/// An Ogg Opus file: OpusHead, OpusTags, then `packets` 20 ms CELT fullband packets (code 0 TOC
/// plus 10–400 pseudo-random bytes), with correct granules, CRCs and an EOS page.
///
/// Pages are cut at about 4 KiB in the middle of packets, so files of more than a few dozen
/// packets exercise packets continued across pages. `channels` outside 1..=2 is written as
/// given (useful for negative tests). With `packets == 0` the file has headers only, which
/// [`crate::probe`] refuses as having no audio.
pub fn ogg_opus(packets: usize, channels: u16, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut w = OggWriter::new((rng.next() >> 32) as u32);

    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1); // version
    head.push(channels.min(255) as u8);
    head.extend_from_slice(&OPUS_PRE_SKIP.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes()); // input sample rate
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family
    w.packet(&head, 0);
    w.flush(false);

    let vendor = b"callvault testgen";
    let mut tags = Vec::new();
    tags.extend_from_slice(b"OpusTags");
    tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    tags.extend_from_slice(vendor);
    tags.extend_from_slice(&0u32.to_le_bytes());
    w.packet(&tags, 0);
    w.flush(packets == 0);

    // TOC: config 31 (CELT-only, fullband, 20 ms), stereo bit, frame-count code 0.
    let toc = (31 << 3) | if channels >= 2 { 0x04 } else { 0 };
    let mut granule: u64 = 0;
    let mut packet = Vec::new();
    for i in 0..packets {
        let len = rng.range(10, 400) as usize;
        packet.clear();
        packet.push(toc);
        packet.resize(len, 0);
        if let Some(payload) = packet.get_mut(1..) {
            rng.fill(payload);
        }
        granule += 960;
        w.packet(&packet, granule);
        if i + 1 == packets {
            w.flush(true);
        }
    }
    w.out
}

/// Minimal Ogg page writer: packets are laced into the current page, which is emitted when it
/// reaches ~4 KiB or 255 segments (splitting a packet across pages) or on an explicit flush.
struct OggWriter {
    out: Vec<u8>,
    serial: u32,
    seq: u32,
    segments: Vec<u8>,
    body: Vec<u8>,
    /// Granule of the last packet completed on the current page, if any.
    page_granule: Option<u64>,
    /// Whether the current page starts with the continuation of a packet.
    continued: bool,
}

impl OggWriter {
    const PAGE_BODY_TARGET: usize = 4096;

    fn new(serial: u32) -> Self {
        OggWriter {
            out: Vec::new(),
            serial,
            seq: 0,
            segments: Vec::new(),
            body: Vec::new(),
            page_granule: None,
            continued: false,
        }
    }

    fn packet(&mut self, data: &[u8], granule: u64) {
        let mut rest = data;
        loop {
            if self.segments.len() == 255 || self.body.len() >= Self::PAGE_BODY_TARGET {
                let mid_packet = rest.len() < data.len();
                self.emit(false, mid_packet);
            }
            let take = rest.len().min(255);
            let (seg, tail) = rest.split_at(take);
            self.segments.push(take as u8);
            self.body.extend_from_slice(seg);
            rest = tail;
            if take < 255 {
                self.page_granule = Some(granule);
                return;
            }
        }
    }

    fn flush(&mut self, eos: bool) {
        self.emit(eos, false);
    }

    /// Writes the current page; `mid_packet` says the next page continues a packet.
    fn emit(&mut self, eos: bool, mid_packet: bool) {
        let mut flags = 0u8;
        if self.continued {
            flags |= 0x01;
        }
        if self.seq == 0 {
            flags |= 0x02;
        }
        if eos {
            flags |= 0x04;
        }
        let start = self.out.len();
        self.out.extend_from_slice(b"OggS");
        self.out.push(0);
        self.out.push(flags);
        self.out
            .extend_from_slice(&self.page_granule.unwrap_or(u64::MAX).to_le_bytes());
        self.out.extend_from_slice(&self.serial.to_le_bytes());
        self.out.extend_from_slice(&self.seq.to_le_bytes());
        self.out.extend_from_slice(&[0; 4]);
        self.out.push(self.segments.len() as u8);
        self.out.extend_from_slice(&self.segments);
        self.out.extend_from_slice(&self.body);
        if let Some(page) = self.out.get_mut(start..) {
            let crc = ogg::page_crc(page).to_le_bytes();
            if let Some(field) = page.get_mut(22..26) {
                field.copy_from_slice(&crc);
            }
        }
        self.seq += 1;
        self.segments.clear();
        self.body.clear();
        self.page_granule = None;
        self.continued = mid_packet;
    }
}
