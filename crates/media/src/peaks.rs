//! Waveform peaks: for each channel, the loudest sample in each of up to [`BUCKETS`] equal
//! slices of the call, scaled to 0–255. Computed at ingest from WAV (16-bit PCM or G.711), where
//! the samples are plain; compressed formats get none, since this crate decodes no compressed
//! audio. The encoded form is small (under 1 KiB) and is stored encrypted like the caller
//! number, so a console can draw the call without decrypting the recording.
//!
//! Encoding (docs/FORMAT.md, "Waveform peaks"): `"CVPK"`, version `1`, channel count (1 byte),
//! bucket count (u16 big-endian), then each channel's buckets in order, one byte each.

use crate::{Codec, MediaInfo, g711};

/// Slices per channel: about one per pixel of a laptop-width waveform.
pub const BUCKETS: usize = 480;
const MAGIC: &[u8; 4] = b"CVPK";
const VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peaks {
    /// One vector per channel, all of the same length (the bucket count).
    pub channels: Vec<Vec<u8>>,
}

/// The peaks of a probed WAV file; `None` for other formats or a file with no samples.
pub fn compute(bytes: &[u8], info: &MediaInfo) -> Option<Peaks> {
    let sample_bytes = match info.codec {
        Codec::Pcm16 => 2,
        Codec::Mulaw | Codec::Alaw => 1,
        Codec::Mp3 | Codec::Opus => return None,
    };
    let range = info.data.clone()?;
    let data = bytes.get(usize::try_from(range.start).ok()?..usize::try_from(range.end).ok()?)?;
    let channels = usize::from(info.channels);
    let frame = sample_bytes * channels;
    let frames = data.len() / frame;
    let buckets = frames.min(BUCKETS);
    if buckets == 0 {
        return None;
    }
    let level = |s: &[u8]| -> u8 {
        let v = match info.codec {
            Codec::Pcm16 => i16::from_le_bytes([s[0], s[1]]),
            Codec::Mulaw => g711::ulaw_to_linear(s[0]),
            _ => g711::alaw_to_linear(s[0]),
        };
        // |v| ≤ 32768 → 0..=255
        (u32::from(v.unsigned_abs()) * 255 / 32768) as u8
    };
    let mut out = vec![Vec::with_capacity(buckets); channels];
    for b in 0..buckets {
        let (first, last) = (b * frames / buckets, (b + 1) * frames / buckets);
        let mut loudest = vec![0u8; channels];
        for f in data[first * frame..last * frame].chunks_exact(frame) {
            for (max, s) in loudest.iter_mut().zip(f.chunks_exact(sample_bytes)) {
                *max = (*max).max(level(s));
            }
        }
        for (lane, max) in out.iter_mut().zip(loudest) {
            lane.push(max);
        }
    }
    Some(Peaks { channels: out })
}

impl Peaks {
    pub fn encode(&self) -> Vec<u8> {
        let buckets = self.channels.first().map_or(0, Vec::len);
        let mut out = Vec::with_capacity(8 + buckets * self.channels.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.channels.len() as u8);
        out.extend_from_slice(&(buckets as u16).to_be_bytes());
        for c in &self.channels {
            out.extend_from_slice(c);
        }
        out
    }

    /// The inverse of [`Peaks::encode`]; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let rest = bytes.strip_prefix(MAGIC)?;
        let (&[version, channels, b0, b1], values) = rest.split_first_chunk::<4>()?;
        let buckets = usize::from(u16::from_be_bytes([b0, b1]));
        if version != VERSION
            || !(1..=2).contains(&channels)
            || buckets == 0
            || values.len() != buckets * usize::from(channels)
        {
            return None;
        }
        Some(Self {
            channels: values.chunks_exact(buckets).map(<[u8]>::to_vec).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{probe, testgen, wav};

    /// The test vector in docs/FORMAT.md: two channels of four 16-bit frames each.
    #[test]
    fn format_test_vector() {
        let samples: [i16; 8] = [1000, -32768, -2000, 0, 32767, 16384, 0, -8192];
        let mut file = wav::header(Codec::Pcm16, 2, 8000, 16);
        file.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
        let peaks = compute(&file, &probe(&file).unwrap()).unwrap();
        assert_eq!(
            peaks.channels,
            vec![vec![7, 15, 254, 0], vec![255, 0, 127, 63]]
        );
        assert_eq!(
            peaks.encode(),
            b"CVPK\x01\x02\x00\x04\x07\x0f\xfe\x00\xff\x00\x7f\x3f"
        );
        assert_eq!(Peaks::decode(&peaks.encode()), Some(peaks));
    }

    #[test]
    fn long_calls_fold_into_buckets_and_g711_is_decoded() {
        for codec in [Codec::Pcm16, Codec::Mulaw, Codec::Alaw] {
            let file = testgen::wav(codec, 1, 8000, 8000 * 60, 5);
            let p = compute(&file, &probe(&file).unwrap()).unwrap();
            assert_eq!(p.channels.len(), 1);
            assert_eq!(p.channels[0].len(), BUCKETS);
            assert!(
                p.channels[0].iter().any(|&v| v > 10),
                "{codec:?} looks silent"
            );
        }
    }

    #[test]
    fn compressed_formats_have_no_peaks() {
        let file = testgen::mp3(20, 1);
        assert_eq!(compute(&file, &probe(&file).unwrap()), None);
    }

    #[test]
    fn decode_refuses_malformed_input() {
        let good = Peaks {
            channels: vec![vec![1, 2], vec![3, 4]],
        }
        .encode();
        for bad in [
            &good[..good.len() - 1],
            &good[1..],
            b"CVPK\x02\x01\x00\x01\x00",
        ] {
            assert_eq!(Peaks::decode(bad), None);
        }
    }
}
