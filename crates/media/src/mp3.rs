//! MP3: an optional ID3v2 tag, then an unbroken run of MPEG-1/2/2.5 Layer III frames, then
//! optionally a 128-byte ID3v1 tag.
//!
//! Frames are located only by walking from one header to the next using the bitrate tables; we
//! never scan for a sync word, so junk between frames, a spliced stream or a cut-off last frame is
//! refused instead of being silently skipped. A Xing/Info/VBRI header frame is an ordinary frame
//! here. Free-format bitrates are refused because their frame length is not in the header.

use crate::{Codec, Container, MediaError, MediaInfo};

/// Layer III bitrates in kbit/s by index 1..=14, for MPEG-1 and for MPEG-2/2.5.
const BITRATES_V1: [u32; 14] = [
    32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];
const BITRATES_V2: [u32; 14] = [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    Mpeg1,
    Mpeg2,
    Mpeg25,
}

struct Frame {
    sample_rate: u32,
    mono: bool,
    len: u64,
    samples: u64,
}

pub(crate) fn parse(bytes: &[u8]) -> Result<MediaInfo, MediaError> {
    let len = bytes.len() as u64;
    let mut pos = id3v2_len(bytes)?;

    let mut frames: u64 = 0;
    let mut samples: u64 = 0;
    let mut first: Option<(u32, bool)> = None;
    while pos < len {
        let rest = bytes.get(pos as usize..).unwrap_or_default();
        if rest.len() == 128 && rest.starts_with(b"TAG") {
            break; // ID3v1 trailer
        }
        if rest.starts_with(b"APETAGEX") {
            return Err(MediaError::Mp3ApeTag { offset: pos });
        }
        let frame = frame_header(rest, pos)?;
        match first {
            None => first = Some((frame.sample_rate, frame.mono)),
            Some((rate, mono)) => {
                if rate != frame.sample_rate {
                    return Err(MediaError::Mp3InconsistentFrames {
                        offset: pos,
                        what: "sample rate",
                    });
                }
                if mono != frame.mono {
                    return Err(MediaError::Mp3InconsistentFrames {
                        offset: pos,
                        what: "channel mode (mono/stereo)",
                    });
                }
            }
        }
        let available = len - pos;
        if frame.len > available {
            return Err(MediaError::Mp3TruncatedFrame {
                offset: pos,
                frame_len: frame.len,
                available,
            });
        }
        frames += 1;
        samples += frame.samples;
        pos += frame.len;
    }

    let Some((sample_rate, mono)) = first.filter(|_| frames >= 2) else {
        return Err(MediaError::Mp3TooFewFrames { frames });
    };
    Ok(MediaInfo {
        container: Container::Mp3,
        codec: Codec::Mp3,
        channels: if mono { 1 } else { 2 },
        sample_rate,
        duration_ms: samples.saturating_mul(1000) / u64::from(sample_rate),
        data: None,
    })
}

/// Length of the ID3v2 tag at the start of `bytes` (header, body and optional footer), or 0.
fn id3v2_len(bytes: &[u8]) -> Result<u64, MediaError> {
    if !bytes.starts_with(b"ID3") {
        return Ok(0);
    }
    let Some(&[_, _, _, major, minor, flags, s0, s1, s2, s3]) = bytes.get(..10) else {
        return Err(MediaError::Id3Invalid {
            reason: "the 10-byte tag header is incomplete",
        });
    };
    if major == 0xFF || minor == 0xFF {
        return Err(MediaError::Id3Invalid {
            reason: "version byte is 0xFF",
        });
    }
    if [s0, s1, s2, s3].iter().any(|b| b & 0x80 != 0) {
        return Err(MediaError::Id3Invalid {
            reason: "size is not synchsafe",
        });
    }
    let size = (u64::from(s0) << 21) | (u64::from(s1) << 14) | (u64::from(s2) << 7) | u64::from(s3);
    // The footer flag exists only from ID3v2.4 on.
    let footer = if major >= 4 && flags & 0x10 != 0 {
        10
    } else {
        0
    };
    let total = 10 + size + footer;
    let len = bytes.len() as u64;
    if total > len {
        return Err(MediaError::Id3Truncated {
            declared: size + footer,
            available: len - 10,
        });
    }
    Ok(total)
}

/// Decodes the 4-byte header at the start of `b` (found at file offset `offset`).
fn frame_header(b: &[u8], offset: u64) -> Result<Frame, MediaError> {
    let Some(&[b0, b1, b2, b3]) = b.get(..4) else {
        // Fewer than four bytes left: if they start like a frame it was cut off, else it is junk.
        if b.first() == Some(&0xFF) {
            return Err(MediaError::Mp3TruncatedFrame {
                offset,
                frame_len: 4,
                available: b.len() as u64,
            });
        }
        return Err(MediaError::Mp3ExpectedFrame { offset });
    };
    if b0 != 0xFF || b1 & 0xE0 != 0xE0 {
        return Err(MediaError::Mp3ExpectedFrame { offset });
    }
    let reserved = |field| Err(MediaError::Mp3ReservedField { offset, field });
    let version = match (b1 >> 3) & 3 {
        0 => Version::Mpeg25,
        2 => Version::Mpeg2,
        3 => Version::Mpeg1,
        _ => return reserved("MPEG version"),
    };
    match (b1 >> 1) & 3 {
        1 => {}
        2 => {
            return Err(MediaError::Mp3UnsupportedLayer {
                offset,
                layer: "Layer II",
            });
        }
        3 => {
            return Err(MediaError::Mp3UnsupportedLayer {
                offset,
                layer: "Layer I",
            });
        }
        _ => {
            return Err(MediaError::Mp3UnsupportedLayer {
                offset,
                layer: "reserved layer bits",
            });
        }
    }
    let bitrate_index = usize::from(b2 >> 4);
    if bitrate_index == 0 {
        return Err(MediaError::Mp3FreeFormat { offset });
    }
    let table = if version == Version::Mpeg1 {
        &BITRATES_V1
    } else {
        &BITRATES_V2
    };
    let Some(&kbps) = table.get(bitrate_index - 1) else {
        return reserved("bitrate index");
    };
    let base_rate = match (b2 >> 2) & 3 {
        0 => 44100,
        1 => 48000,
        2 => 32000,
        _ => return reserved("sample rate index"),
    };
    let sample_rate = match version {
        Version::Mpeg1 => base_rate,
        Version::Mpeg2 => base_rate / 2,
        Version::Mpeg25 => base_rate / 4,
    };
    if b3 & 3 == 2 {
        return reserved("emphasis");
    }
    let padding = u64::from((b2 >> 1) & 1);
    // Layer III: 1152 samples per frame in MPEG-1, 576 in MPEG-2/2.5; bytes = samples/8 * bitrate / rate.
    let samples: u64 = if version == Version::Mpeg1 { 1152 } else { 576 };
    let len = (samples / 8) * u64::from(kbps) * 1000 / u64::from(sample_rate) + padding;
    Ok(Frame {
        sample_rate,
        mono: b3 >> 6 == 3,
        len,
        samples,
    })
}
