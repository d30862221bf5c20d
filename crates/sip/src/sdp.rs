//! SDP (RFC 8866) offers from a recording client and the recorder's answers. Only the lines a
//! recorder acts on are interpreted (`c=`, `m=`, `a=label`, `a=rtpmap`, `a=crypto`, the
//! direction attributes); others are checked for shape and skipped.

use std::net::IpAddr;

use crate::ParseError;

const MAX_MEDIA: usize = 16;
const MAX_LINES: usize = 512;

/// G.711, the only codecs SIPREC clients are expected to fork; anything else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn encoding_name(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn parse(attr: &str) -> Option<Self> {
        Some(match attr {
            "sendrecv" => Self::SendRecv,
            "sendonly" => Self::SendOnly,
            "recvonly" => Self::RecvOnly,
            "inactive" => Self::Inactive,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// Whether the client will send media on a stream with this (offered) direction.
    pub fn client_sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    RtpAvp,
    RtpSavp,
}

/// One `a=crypto` line (RFC 4568 §9.1). Only the master key and salt are kept; session
/// parameters are refused rather than ignored, since they change the packet format.
#[derive(Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: String,
    /// The 30-byte master key || master salt of `inline:`; zeroised with the session.
    pub key_salt: Vec<u8>,
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("key_salt", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtpmap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, … (a recorder answers port 0 to anything but audio).
    pub kind: String,
    pub port: u16,
    /// `None` for a profile we cannot receive (e.g. `UDP/TLS/RTP/SAVPF`).
    pub transport: Option<Transport>,
    pub formats: Vec<u8>,
    pub rtpmaps: Vec<Rtpmap>,
    pub label: Option<String>,
    pub direction: Direction,
    pub connection: Option<IpAddr>,
    pub crypto: Vec<Crypto>,
}

impl Media {
    /// The first offered format we can record (PCMU/PCMA, static or mapped by `a=rtpmap`),
    /// skipping `telephone-event` and comfort noise.
    pub fn audio_codec(&self) -> Option<(u8, Codec)> {
        self.formats.iter().find_map(|&pt| {
            let mapped = self.rtpmaps.iter().find(|m| m.payload_type == pt);
            let codec = match mapped {
                Some(m) if m.clock_rate != 8000 => None,
                Some(m) if m.encoding.eq_ignore_ascii_case("PCMU") => Some(Codec::Pcmu),
                Some(m) if m.encoding.eq_ignore_ascii_case("PCMA") => Some(Codec::Pcma),
                Some(_) => None,
                None if pt == 0 => Some(Codec::Pcmu),
                None if pt == 8 => Some(Codec::Pcma),
                None => None,
            };
            codec.map(|c| (pt, c))
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub origin_address: Option<IpAddr>,
    pub media: Vec<Media>,
}

impl Session {
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ParseError::Sdp("not UTF-8"))?;
        let mut lines = text.lines().filter(|l| !l.is_empty()).peekable();
        if lines.next() != Some("v=0") {
            return Err(ParseError::Sdp("must begin with v=0"));
        }
        let mut session = Self {
            origin_address: None,
            media: Vec::new(),
        };
        let mut session_connection = None;
        let mut session_direction = Direction::SendRecv;
        for (n, line) in lines.enumerate() {
            if n > MAX_LINES {
                return Err(ParseError::Sdp("too many lines"));
            }
            let bytes = line.as_bytes();
            if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
                return Err(ParseError::Sdp("a line is not of the form x=value"));
            }
            let value = &line[2..];
            match (bytes[0], session.media.last_mut()) {
                (b'o', None) => session.origin_address = origin_address(value)?,
                (b'c', None) => session_connection = Some(connection(value)?),
                (b'c', Some(m)) => m.connection = Some(connection(value)?),
                (b'a', None) => {
                    if let Some(d) = Direction::parse(value) {
                        session_direction = d;
                    }
                }
                (b'a', Some(m)) => media_attribute(m, value)?,
                (b'm', _) => {
                    if session.media.len() == MAX_MEDIA {
                        return Err(ParseError::Sdp("too many m= lines"));
                    }
                    session.media.push(media_line(value, session_direction)?);
                }
                _ => {}
            }
        }
        for m in &mut session.media {
            m.connection = m.connection.or(session_connection);
            if m.connection.is_none() && m.port != 0 {
                return Err(ParseError::Sdp("a stream has no c= line"));
            }
        }
        Ok(session)
    }
}

fn origin_address(value: &str) -> Result<Option<IpAddr>, ParseError> {
    let fields: Vec<&str> = value.split(' ').collect();
    if fields.len() != 6 {
        return Err(ParseError::Sdp("o= needs six fields"));
    }
    Ok(fields[5].parse().ok())
}

fn connection(value: &str) -> Result<IpAddr, ParseError> {
    let mut fields = value.split(' ');
    let (Some("IN"), Some(kind @ ("IP4" | "IP6")), Some(addr), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(ParseError::Sdp("c= must be `IN IP4|IP6 address`"));
    };
    // A multicast TTL suffix (`/127`) is not something a recorder can use.
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| ParseError::Sdp("c= address is not a unicast IP address"))?;
    if (kind == "IP4") != addr.is_ipv4() {
        return Err(ParseError::Sdp(
            "c= address family disagrees with its address",
        ));
    }
    Ok(addr)
}

fn media_line(value: &str, direction: Direction) -> Result<Media, ParseError> {
    let mut fields = value.split(' ');
    let kind = fields.next().unwrap_or_default();
    let port = fields
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or(ParseError::Sdp(
            "m= port is not a number (port/count is not supported)",
        ))?;
    let transport = match fields.next() {
        Some("RTP/AVP") => Some(Transport::RtpAvp),
        Some("RTP/SAVP") => Some(Transport::RtpSavp),
        Some(p) if !p.is_empty() => None,
        _ => return Err(ParseError::Sdp("m= has no transport")),
    };
    let formats = fields
        .map(|f| f.parse::<u8>().ok().filter(|pt| *pt < 128))
        .collect::<Option<Vec<u8>>>();
    let formats = match (transport, formats) {
        (Some(_), Some(f)) if !f.is_empty() => f,
        (Some(_), _) => return Err(ParseError::Sdp("m= formats must be RTP payload types")),
        (None, _) => Vec::new(),
    };
    if kind.is_empty() {
        return Err(ParseError::Sdp("m= has no media type"));
    }
    Ok(Media {
        kind: kind.to_owned(),
        port,
        transport,
        formats,
        rtpmaps: Vec::new(),
        label: None,
        direction,
        connection: None,
        crypto: Vec::new(),
    })
}

fn media_attribute(m: &mut Media, value: &str) -> Result<(), ParseError> {
    let (name, arg) = value.split_once(':').unwrap_or((value, ""));
    if let Some(d) = Direction::parse(name) {
        m.direction = d;
    }
    match name {
        "label" => {
            if arg.is_empty() || arg.len() > 64 {
                return Err(ParseError::Sdp(
                    "a=label needs a value of at most 64 characters",
                ));
            }
            m.label = Some(arg.to_owned());
        }
        "rtpmap" => m.rtpmaps.push(rtpmap(arg)?),
        "crypto" => {
            // Unknown suites are skipped, not refused: the offer may list several.
            if let Some(c) = crypto(arg)? {
                m.crypto.push(c);
            }
        }
        _ => {}
    }
    Ok(())
}

fn rtpmap(arg: &str) -> Result<Rtpmap, ParseError> {
    let bad = ParseError::Sdp("a=rtpmap must be `pt name/rate[/channels]`");
    let (pt, encoding) = arg.split_once(' ').ok_or(bad.clone())?;
    let mut enc = encoding.split('/');
    let name = enc.next().filter(|n| !n.is_empty()).ok_or(bad.clone())?;
    let rate = enc.next().and_then(|r| r.parse().ok()).ok_or(bad.clone())?;
    Ok(Rtpmap {
        payload_type: pt.parse().ok().filter(|pt| *pt < 128).ok_or(bad)?,
        encoding: name.to_owned(),
        clock_rate: rate,
    })
}

/// `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<base64 key||salt>[|lifetime][|MKI:len]`.
/// `Ok(None)` for a well-formed line we cannot use (another suite, an MKI, session parameters).
fn crypto(arg: &str) -> Result<Option<Crypto>, ParseError> {
    use base64::Engine as _;
    let mut fields = arg.split_whitespace();
    let (Some(tag), Some(suite), Some(params)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(ParseError::Crypto("needs `tag suite inline:key`"));
    };
    let tag = tag
        .parse()
        .map_err(|_| ParseError::Crypto("tag is not a number"))?;
    if suite != crate::srtp::SUITE {
        return Ok(None);
    }
    // Session parameters change the packet format; such an offer line is skipped, not refused,
    // so that another line of the same offer can still be chosen.
    if fields.next().is_some() {
        return Ok(None);
    }
    let inline = params
        .strip_prefix("inline:")
        .ok_or(ParseError::Crypto("key method must be inline"))?;
    let mut key_parts = inline.split('|');
    let key = key_parts.next().unwrap_or_default();
    for extra in key_parts {
        // A lifetime is harmless (we rekey never and calls are short); an MKI changes the
        // packet layout, which we do not support.
        if extra.contains(':') {
            return Ok(None);
        }
    }
    let key_salt = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| ParseError::Crypto("inline key is not base64"))?;
    if key_salt.len() != crate::srtp::MASTER_LEN {
        return Err(ParseError::Crypto(
            "inline key must be 30 bytes (16 key + 14 salt)",
        ));
    }
    Ok(Some(Crypto {
        tag,
        suite: suite.to_owned(),
        key_salt,
    }))
}

/// One stream of the recorder's answer, in the offer's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerMedia {
    /// 0 rejects the stream (RFC 3264 §6).
    pub port: u16,
    pub kind: String,
    pub transport: Transport,
    pub payload_type: u8,
    pub codec: Option<Codec>,
    pub label: Option<String>,
    pub direction: Direction,
    /// Our own key for SDES (`a=crypto` in the answer), echoing the offer's tag.
    pub crypto: Option<(u32, String)>,
}

/// Writes an answer SDP. `session_version` must grow with every re-offer answered.
pub fn answer(
    address: IpAddr,
    session_id: u64,
    session_version: u64,
    media: &[AnswerMedia],
) -> String {
    let family = if address.is_ipv4() { "IP4" } else { "IP6" };
    let mut out = format!(
        "v=0\r\no=callvault {session_id} {session_version} IN {family} {address}\r\ns=callvault\r\nc=IN {family} {address}\r\nt=0 0\r\n"
    );
    for m in media {
        let proto = match m.transport {
            Transport::RtpAvp => "RTP/AVP",
            Transport::RtpSavp => "RTP/SAVP",
        };
        out.push_str(&format!(
            "m={} {} {proto} {}\r\n",
            m.kind, m.port, m.payload_type
        ));
        if let Some(codec) = m.codec {
            out.push_str(&format!(
                "a=rtpmap:{} {}/8000\r\n",
                m.payload_type,
                codec.encoding_name()
            ));
        }
        if let Some(label) = &m.label {
            out.push_str(&format!("a=label:{label}\r\n"));
        }
        if let Some((tag, key)) = &m.crypto {
            out.push_str(&format!(
                "a=crypto:{tag} {} inline:{key}\r\n",
                crate::srtp::SUITE
            ));
        }
        out.push_str(&format!("a={}\r\n", m.direction.as_str()));
    }
    out
}
