//! RTP fixed header (RFC 3550 §5.1): version, padding, extension, CSRCs, marker, payload type,
//! sequence number, timestamp, SSRC. The payload is a borrowed slice; nothing is copied.

use crate::ParseError;

pub const FIXED_HEADER: usize = 12;
/// RFC 3389 comfort noise: the recorder writes silence for the time it covers.
pub const PT_COMFORT_NOISE: u8 = 13;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Bytes before the payload: fixed header, CSRCs and extension.
    pub header_len: usize,
    /// Padding octets at the end (from the last octet when P is set).
    pub padding: usize,
}

/// Parses the header of `packet` (for SRTP: of the whole packet before unprotecting, since
/// the header is authenticated but not encrypted; padding is then read after decryption).
pub fn header(packet: &[u8]) -> Result<Header, ParseError> {
    if packet.len() < FIXED_HEADER {
        return Err(ParseError::Rtp("shorter than the 12-byte header"));
    }
    if packet[0] >> 6 != 2 {
        return Err(ParseError::Rtp("version is not 2"));
    }
    let csrc_count = usize::from(packet[0] & 0x0F);
    let mut header_len = FIXED_HEADER + 4 * csrc_count;
    if packet[0] & 0x10 != 0 {
        // Extension: 16-bit profile, 16-bit length in 32-bit words, then the words.
        let ext = packet
            .get(header_len..header_len + 4)
            .ok_or(ParseError::Rtp("truncated header extension"))?;
        header_len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    if header_len > packet.len() {
        return Err(ParseError::Rtp("header longer than the packet"));
    }
    let payload_type = packet[1] & 0x7F;
    // RTCP on a muxed port shows as payload types 72–76 (RFC 5761 §4); not media.
    if (72..=76).contains(&payload_type) {
        return Err(ParseError::Rtp("RTCP packet on the RTP port"));
    }
    Ok(Header {
        marker: packet[1] & 0x80 != 0,
        payload_type,
        sequence: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        header_len,
        padding: 0,
    })
}

/// A parsed plain RTP packet: header and payload without padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub header: Header,
    pub payload: &'a [u8],
}

pub fn parse(packet: &[u8]) -> Result<Packet<'_>, ParseError> {
    let mut header = header(packet)?;
    let payload = &packet[header.header_len..];
    let payload = if packet[0] & 0x20 != 0 {
        let pad = usize::from(
            *payload
                .last()
                .ok_or(ParseError::Rtp("padding without payload"))?,
        );
        if pad == 0 || pad > payload.len() {
            return Err(ParseError::Rtp("padding length exceeds the payload"));
        }
        header.padding = pad;
        &payload[..payload.len() - pad]
    } else {
        payload
    };
    Ok(Packet { header, payload })
}
