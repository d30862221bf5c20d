//! Ogg Opus (RFC 3533 framing, RFC 7845 mapping): every page is checked — capture pattern,
//! version, flags, CRC, single serial, consecutive sequence numbers, lacing continuity — and the
//! packets are reassembled only far enough to validate the two header packets and count audio.
//!
//! Deliberately stricter than RFC 7845 where the brief asks: OpusHead version must be exactly 1
//! (the RFC tolerates 0–15), only mapping family 0, and at least one audio packet.

use crate::{Codec, Container, MediaError, MediaInfo, le_u16, le_u32, le_u64};

const HEADER_LEN: usize = 27;
const FLAG_CONTINUED: u8 = 0x01;
const FLAG_BOS: u8 = 0x02;
const FLAG_EOS: u8 = 0x04;
/// Granule value meaning "no packet finishes on this page".
const NO_GRANULE: u64 = u64::MAX;
/// Opus always decodes at 48 kHz; granule positions count 48 kHz samples.
const OPUS_RATE: u64 = 48000;

/// CRC-32 as Ogg defines it: polynomial 0x04c11db7, initial value 0, no reflection, no final xor.
const CRC_TABLE: [u32; 256] = build_crc_table();

const fn build_crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ 0x04c1_1db7
            } else {
                r << 1
            };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
}

pub(crate) fn crc_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = (crc << 8) ^ CRC_TABLE[usize::from(((crc >> 24) as u8) ^ b)];
    }
    crc
}

/// CRC of a whole page with its checksum field (bytes 22..26) taken as zero.
pub(crate) fn page_crc(page: &[u8]) -> u32 {
    let head = page.get(..22).unwrap_or_default();
    let tail = page.get(26..).unwrap_or_default();
    crc_update(crc_update(crc_update(0, head), &[0; 4]), tail)
}

/// What the OpusHead packet told us.
struct Head {
    channels: u16,
    pre_skip: u16,
}

pub(crate) fn parse(bytes: &[u8]) -> Result<MediaInfo, MediaError> {
    let file_len = bytes.len() as u64;
    let mut pos: usize = 0;
    let mut page_index: u64 = 0;
    let mut serial: Option<u32> = None;
    let mut next_seq: u32 = 0;
    let mut head: Option<Head> = None;
    // Packet reassembly: how many packets are complete, and whether one is in progress.
    let mut packets: u64 = 0;
    let mut in_packet = false;
    let mut tags: Vec<u8> = Vec::new();
    let mut last_granule: Option<u64> = None;
    let mut end_granule = NO_GRANULE;
    let mut saw_eos = false;

    while pos < bytes.len() {
        let offset = pos as u64;
        if saw_eos {
            return Err(MediaError::OggDataAfterEos { offset });
        }
        let rest = bytes.get(pos..).unwrap_or_default();
        if !rest.starts_with(b"OggS") {
            // A cut-off capture pattern is truncation, anything else is junk.
            if b"OggS".starts_with(rest) {
                return Err(MediaError::OggPageTruncated { offset });
            }
            return Err(MediaError::OggExpectedPage { offset });
        }
        let header = rest
            .get(..HEADER_LEN)
            .ok_or(MediaError::OggPageTruncated { offset })?;
        let version = header.get(4).copied().unwrap_or_default();
        if version != 0 {
            return Err(MediaError::OggVersion { offset, version });
        }
        let flags = header.get(5).copied().unwrap_or_default();
        if flags & !(FLAG_CONTINUED | FLAG_BOS | FLAG_EOS) != 0 {
            return Err(MediaError::OggUnknownFlags { offset, flags });
        }
        let granule = le_u64(header, 6);
        let page_serial = le_u32(header, 14);
        let seq = le_u32(header, 18);
        let stored_crc = le_u32(header, 22);
        let nsegs = usize::from(header.get(26).copied().unwrap_or_default());
        let lacing = rest
            .get(HEADER_LEN..HEADER_LEN + nsegs)
            .ok_or(MediaError::OggPageTruncated { offset })?;
        let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        let page_len = HEADER_LEN + nsegs + body_len;
        let page = rest
            .get(..page_len)
            .ok_or(MediaError::OggPageTruncated { offset })?;
        let computed = page_crc(page);
        if computed != stored_crc {
            return Err(MediaError::OggCrc {
                offset,
                stored: stored_crc,
                computed,
            });
        }

        match serial {
            None => serial = Some(page_serial),
            Some(first) if first != page_serial => {
                return Err(MediaError::OggMultipleStreams {
                    first,
                    other: page_serial,
                });
            }
            Some(_) => {}
        }
        if page_index == 0 {
            if flags & FLAG_BOS == 0 {
                return Err(MediaError::OggFirstPageNotBos);
            }
        } else {
            if flags & FLAG_BOS != 0 {
                return Err(MediaError::OggUnexpectedBos { offset });
            }
            if seq != next_seq {
                return Err(MediaError::OggPageSequence {
                    offset,
                    expected: next_seq,
                    found: seq,
                });
            }
        }
        next_seq = seq.wrapping_add(1);
        if (flags & FLAG_CONTINUED != 0) != in_packet {
            return Err(MediaError::OggContinuation { offset });
        }

        let body = page.get(HEADER_LEN + nsegs..).unwrap_or_default();
        if page_index == 0 {
            // Exactly one packet, ending on this page's last segment.
            let ends = lacing.iter().filter(|&&l| l < 255).count();
            if ends != 1 || lacing.last().is_none_or(|&l| l == 255) {
                if !body.starts_with(b"OpusHead") {
                    return Err(MediaError::OggNotOpus);
                }
                return Err(MediaError::OpusHeadPage);
            }
            head = Some(parse_head(body)?);
            packets = 1;
        } else {
            let mut seg_start = 0usize;
            let mut completed = false;
            for &l in lacing {
                let seg_end = seg_start + usize::from(l);
                if packets == 1 {
                    tags.extend_from_slice(body.get(seg_start..seg_end).unwrap_or_default());
                }
                seg_start = seg_end;
                in_packet = l == 255;
                if !in_packet {
                    if packets == 1 {
                        check_tags(&tags)?;
                    }
                    packets += 1;
                    completed = true;
                }
            }
            if completed && packets > 2 && granule != NO_GRANULE {
                if let Some(previous) = last_granule.filter(|&p| granule < p) {
                    return Err(MediaError::OggGranuleBackwards {
                        offset,
                        previous,
                        granule,
                    });
                }
                last_granule = Some(granule);
            }
        }
        end_granule = granule;
        saw_eos = flags & FLAG_EOS != 0;
        page_index += 1;
        pos += page_len;
    }

    let head = head.ok_or(MediaError::OggPageTruncated { offset: file_len })?;
    if !saw_eos {
        return Err(MediaError::OggMissingEos);
    }
    if in_packet {
        return Err(MediaError::OggUnterminatedPacket);
    }
    if packets < 2 {
        return Err(MediaError::OpusTagsInvalid {
            reason: "the stream ends after OpusHead",
        });
    }
    if packets < 3 {
        return Err(MediaError::OpusNoAudio);
    }
    if end_granule == NO_GRANULE {
        return Err(MediaError::OpusEndGranuleMissing);
    }
    let played = end_granule.checked_sub(u64::from(head.pre_skip)).ok_or(
        MediaError::OpusGranuleBeforePreSkip {
            granule: end_granule,
            pre_skip: head.pre_skip,
        },
    )?;
    let duration_ms = u128::from(played) * 1000 / u128::from(OPUS_RATE);
    Ok(MediaInfo {
        container: Container::OggOpus,
        codec: Codec::Opus,
        channels: head.channels,
        sample_rate: OPUS_RATE as u32,
        duration_ms: u64::try_from(duration_ms).unwrap_or(u64::MAX),
        data: None,
    })
}

fn parse_head(p: &[u8]) -> Result<Head, MediaError> {
    if !p.starts_with(b"OpusHead") {
        return Err(MediaError::OggNotOpus);
    }
    if p.len() < 19 {
        return Err(MediaError::OpusHeadTooShort { len: p.len() });
    }
    let version = p.get(8).copied().unwrap_or_default();
    if version != 1 {
        return Err(MediaError::OpusVersion { version });
    }
    let channels = u16::from(p.get(9).copied().unwrap_or_default());
    let family = p.get(18).copied().unwrap_or_default();
    if family != 0 {
        return Err(MediaError::OpusMappingFamily { family });
    }
    if !(1..=2).contains(&channels) {
        return Err(MediaError::UnsupportedChannels {
            container: Container::OggOpus,
            channels,
        });
    }
    Ok(Head {
        channels,
        pre_skip: le_u16(p, 10),
    })
}

/// OpusTags: magic, vendor string, comment count, then that many length-prefixed comments that
/// must all fit in the packet (trailing data after them is allowed by RFC 7845).
fn check_tags(p: &[u8]) -> Result<(), MediaError> {
    let bad = |reason| Err(MediaError::OpusTagsInvalid { reason });
    if !p.starts_with(b"OpusTags") {
        return bad("it does not start with \"OpusTags\"");
    }
    let mut at: usize = 8;
    let field = |at: &mut usize| -> Option<usize> {
        let n = usize::try_from(le_u32(p.get(*at..*at + 4)?, 0)).ok()?;
        *at += 4;
        Some(n)
    };
    let Some(vendor) = field(&mut at) else {
        return bad("vendor length missing");
    };
    at = match at.checked_add(vendor).filter(|&e| e <= p.len()) {
        Some(e) => e,
        None => return bad("vendor string runs past the packet"),
    };
    let Some(count) = field(&mut at) else {
        return bad("comment count missing");
    };
    for _ in 0..count {
        let Some(n) = field(&mut at) else {
            return bad("a comment runs past the packet");
        };
        at = match at.checked_add(n).filter(|&e| e <= p.len()) {
            Some(e) => e,
            None => return bad("a comment runs past the packet"),
        };
    }
    Ok(())
}
