//! RIFF/WAVE: validation of uploaded files and headers for files callvault writes itself.
//!
//! Accepted: format tag 1 (16-bit PCM), 6 (8-bit A-law), 7 (8-bit µ-law), or
//! WAVE_FORMAT_EXTENSIBLE wrapping one of those; mono or stereo; 8–48 kHz. Unknown chunks are
//! skipped (honouring the pad byte after odd-sized chunks); exactly one data chunk must be present
//! and complete. A missing pad byte at the very end of the file is tolerated because many writers
//! omit it and nothing is lost.

use crate::{Codec, Container, MediaError, MediaInfo, le_u16, le_u32};

const TAG_PCM: u16 = 0x0001;
const TAG_ALAW: u16 = 0x0006;
const TAG_MULAW: u16 = 0x0007;
const TAG_EXTENSIBLE: u16 = 0xFFFE;

/// The 14 trailing bytes shared by every `KSDATAFORMAT_SUBTYPE_*` GUID derived from a format tag
/// (`{tag}-0000-0010-8000-00AA00389B71` in mixed-endian byte order).
const SUBFORMAT_SUFFIX: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

const MIN_RATE: u32 = 8000;
const MAX_RATE: u32 = 48000;

/// Builds a RIFF/WAVE header for `data_len` bytes of interleaved samples that the caller appends
/// directly after it, so live telephony audio can be written as a standard file without a second
/// pass.
///
/// PCM16 gets the canonical 44-byte header. µ-law and A-law get an 18-byte fmt chunk
/// (cbSize = 0) and a `fact` chunk with the per-channel sample count, as the RIFF spec requires
/// for non-PCM formats. An odd `data_len` needs a pad byte after the samples for strict readers;
/// the RIFF size here does not count it, so the file is valid with or without it.
///
/// WAV cannot carry [`Codec::Mp3`] or [`Codec::Opus`] here; for those (or a data length too large
/// for RIFF) this returns an empty vector. Use [`try_header`] to get the reason instead.
pub fn header(codec: Codec, channels: u16, sample_rate: u32, data_len: u32) -> Vec<u8> {
    try_header(codec, channels, sample_rate, data_len).unwrap_or_default()
}

/// Like [`header`], but says why when the parameters cannot make a file that [`crate::probe`]
/// would accept (unsupported codec, channel count or rate, a partial frame, or a size overflow).
pub fn try_header(
    codec: Codec,
    channels: u16,
    sample_rate: u32,
    data_len: u32,
) -> Result<Vec<u8>, MediaError> {
    let (tag, bits): (u16, u16) = match codec {
        Codec::Pcm16 => (TAG_PCM, 16),
        Codec::Mulaw => (TAG_MULAW, 8),
        Codec::Alaw => (TAG_ALAW, 8),
        Codec::Mp3 | Codec::Opus => return Err(MediaError::WavHeaderCodec { codec }),
    };
    if !(1..=2).contains(&channels) {
        return Err(MediaError::UnsupportedChannels {
            container: Container::Wav,
            channels,
        });
    }
    if !(MIN_RATE..=MAX_RATE).contains(&sample_rate) {
        return Err(MediaError::WavSampleRate { rate: sample_rate });
    }
    let block_align = channels * (bits / 8);
    if !data_len.is_multiple_of(u32::from(block_align)) {
        return Err(MediaError::WavPartialFrame {
            len: u64::from(data_len),
            block_align,
        });
    }
    let byte_rate = sample_rate * u32::from(block_align);
    let pcm = codec == Codec::Pcm16;
    let header_len: u32 = if pcm { 44 } else { 58 };
    let riff_size = (header_len - 8)
        .checked_add(data_len)
        .ok_or(MediaError::WavTooLarge {
            data_len: u64::from(data_len),
        })?;

    let mut h = Vec::with_capacity(header_len as usize);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&riff_size.to_le_bytes());
    h.extend_from_slice(b"WAVE");
    h.extend_from_slice(b"fmt ");
    h.extend_from_slice(&(if pcm { 16u32 } else { 18 }).to_le_bytes());
    h.extend_from_slice(&tag.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&sample_rate.to_le_bytes());
    h.extend_from_slice(&byte_rate.to_le_bytes());
    h.extend_from_slice(&block_align.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    if !pcm {
        h.extend_from_slice(&0u16.to_le_bytes()); // cbSize
        h.extend_from_slice(b"fact");
        h.extend_from_slice(&4u32.to_le_bytes());
        h.extend_from_slice(&(data_len / u32::from(block_align)).to_le_bytes());
    }
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    Ok(h)
}

/// Names of format tags uploaders commonly send, so the refusal says what they sent.
pub(crate) fn format_tag_name(tag: u16) -> Option<&'static str> {
    Some(match tag {
        0x0001 => "PCM",
        0x0002 => "Microsoft ADPCM",
        0x0003 => "IEEE float",
        0x0006 => "A-law",
        0x0007 => "µ-law",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0040 => "G.721 ADPCM",
        0x0055 => "MPEG Layer III",
        0xFFFE => "WAVE_FORMAT_EXTENSIBLE",
        _ => return None,
    })
}

/// What the fmt chunk established.
struct Format {
    codec: Codec,
    channels: u16,
    sample_rate: u32,
    block_align: u16,
}

pub(crate) fn parse(bytes: &[u8]) -> Result<MediaInfo, MediaError> {
    let file_len = bytes.len() as u64;
    let riff = bytes
        .get(..12)
        .ok_or(MediaError::WavHeaderTruncated { len: bytes.len() })?;
    if !riff.starts_with(b"RIFF") {
        return Err(MediaError::ContainerMismatch {
            claimed: Container::Wav,
            detected: None,
        });
    }
    let form = riff.get(8..12).unwrap_or_default();
    if form != b"WAVE" {
        return Err(MediaError::WavNotWave {
            form: String::from_utf8_lossy(form).into_owned(),
        });
    }
    let riff_end = u64::from(le_u32(riff, 4)) + 8;
    // Walk what is actually present first, so a truncated upload is reported as a truncated data
    // chunk (the useful message) rather than only as a short RIFF.
    let end = riff_end.min(file_len);

    let mut format: Option<Format> = None;
    let mut data: Option<std::ops::Range<u64>> = None;
    let mut pos: u64 = 12;
    while pos < end {
        let offset = pos;
        let header = slice(bytes, pos, 8).filter(|_| pos + 8 <= end);
        let Some(header) = header else {
            return Err(MediaError::WavChunkTruncated {
                chunk: fourcc(bytes.get(pos as usize..).unwrap_or_default()),
                offset,
            });
        };
        let id: [u8; 4] = [header[0], header[1], header[2], header[3]];
        let size = u64::from(le_u32(header, 4));
        let body_start = pos + 8;
        let body_end = body_start + size;
        if body_end > end {
            if &id == b"data" {
                return Err(MediaError::WavDataTruncated {
                    declared: size,
                    available: end - body_start,
                });
            }
            return Err(MediaError::WavChunkTruncated {
                chunk: fourcc(&id),
                offset,
            });
        }
        match &id {
            b"fmt " => {
                if format.is_some() {
                    return Err(MediaError::WavDuplicateChunk { chunk: "fmt " });
                }
                let body = slice(bytes, body_start, size).unwrap_or_default();
                format = Some(parse_fmt(body)?);
            }
            b"data" => {
                if data.is_some() {
                    return Err(MediaError::WavDuplicateChunk { chunk: "data" });
                }
                let Some(fmt) = &format else {
                    return Err(MediaError::WavDataBeforeFmt);
                };
                if size % u64::from(fmt.block_align) != 0 {
                    return Err(MediaError::WavPartialFrame {
                        len: size,
                        block_align: fmt.block_align,
                    });
                }
                data = Some(body_start..body_end);
            }
            _ => {}
        }
        // Odd-sized chunks are followed by a pad byte; tolerate its absence only at the very end.
        pos = (body_end + (size & 1)).min(end);
    }

    if riff_end > file_len {
        return Err(MediaError::WavRiffSizeExceedsFile {
            declared: riff_end - 8,
            actual: file_len,
        });
    }
    let fmt = format.ok_or(MediaError::WavMissingFmt)?;
    let data = data.ok_or(MediaError::WavMissingData)?;
    let frames = (data.end - data.start) / u64::from(fmt.block_align);
    Ok(MediaInfo {
        container: Container::Wav,
        codec: fmt.codec,
        channels: fmt.channels,
        sample_rate: fmt.sample_rate,
        duration_ms: frames * 1000 / u64::from(fmt.sample_rate),
        data: Some(data),
    })
}

fn parse_fmt(body: &[u8]) -> Result<Format, MediaError> {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    if len < 16 {
        return Err(MediaError::WavFmtTooShort { len, needed: 16 });
    }
    let mut tag = le_u16(body, 0);
    let channels = le_u16(body, 2);
    let sample_rate = le_u32(body, 4);
    let byte_rate = le_u32(body, 8);
    let block_align = le_u16(body, 12);
    let bits = le_u16(body, 14);

    if tag == TAG_EXTENSIBLE {
        if len < 40 || le_u16(body, 16) < 22 {
            return Err(MediaError::WavFmtTooShort { len, needed: 40 });
        }
        let guid = body.get(24..40).unwrap_or_default();
        let sub_tag = le_u16(guid, 0);
        let known = matches!(sub_tag, TAG_PCM | TAG_ALAW | TAG_MULAW);
        if !known || guid.get(2..) != Some(&SUBFORMAT_SUFFIX[..]) {
            return Err(MediaError::WavUnsupportedSubformat {
                guid: guid_string(guid),
            });
        }
        let valid_bits = le_u16(body, 18);
        if valid_bits != bits {
            return Err(MediaError::WavBitsPerSample {
                format: codec_label(sub_tag),
                bits: valid_bits,
            });
        }
        tag = sub_tag;
    }

    let (codec, want_bits) = match tag {
        TAG_PCM => (Codec::Pcm16, 16),
        TAG_ALAW => (Codec::Alaw, 8),
        TAG_MULAW => (Codec::Mulaw, 8),
        _ => return Err(MediaError::WavUnsupportedFormat { tag }),
    };
    if bits != want_bits {
        return Err(MediaError::WavBitsPerSample {
            format: codec_label(tag),
            bits,
        });
    }
    if !(1..=2).contains(&channels) {
        return Err(MediaError::UnsupportedChannels {
            container: Container::Wav,
            channels,
        });
    }
    if !(MIN_RATE..=MAX_RATE).contains(&sample_rate) {
        return Err(MediaError::WavSampleRate { rate: sample_rate });
    }
    let want_align = channels * (bits / 8);
    if block_align != want_align {
        return Err(MediaError::WavInconsistentFmt {
            field: "block_align",
            declared: u32::from(block_align),
            expected: u64::from(want_align),
        });
    }
    let want_rate = u64::from(sample_rate) * u64::from(want_align);
    if u64::from(byte_rate) != want_rate {
        return Err(MediaError::WavInconsistentFmt {
            field: "byte_rate",
            declared: byte_rate,
            expected: want_rate,
        });
    }
    Ok(Format {
        codec,
        channels,
        sample_rate,
        block_align,
    })
}

fn codec_label(tag: u16) -> &'static str {
    match tag {
        TAG_ALAW => "A-law",
        TAG_MULAW => "µ-law",
        _ => "PCM",
    }
}

/// `len` bytes at `start`, or `None` if that runs past the end (or overflows).
fn slice(bytes: &[u8], start: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(start).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    bytes.get(start..end)
}

/// A chunk id for an error message, printable even if the bytes are not.
fn fourcc(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(4)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

fn guid_string(g: &[u8]) -> String {
    if g.len() != 16 {
        return "(missing)".to_owned();
    }
    let hex = |r: std::ops::Range<usize>, rev: bool| -> String {
        let mut part: Vec<u8> = g.get(r).unwrap_or_default().to_vec();
        if rev {
            part.reverse();
        }
        part.iter().map(|b| format!("{b:02X}")).collect()
    };
    format!(
        "{{{}-{}-{}-{}-{}}}",
        hex(0..4, true),
        hex(4..6, true),
        hex(6..8, true),
        hex(8..10, false),
        hex(10..16, false)
    )
}
