//! SIP messages (RFC 3261 §7, §25) as a recorder meets them: a strict parser and a response
//! builder. Strict means: CRLF line ends, `SIP/2.0` only, token methods, a Request-URI with a
//! scheme, every mandatory header present once, `CSeq` naming the request's method, and a
//! `Content-Length` that agrees with the bytes. What RFC 3261 lets a receiver tolerate and SBCs
//! do send — header folding, compact header names, any header-name case — is accepted.

use crate::ParseError;

/// The largest message we accept. A SIPREC INVITE with two streams, SRTP keys and metadata is
/// a few KiB; 64 KiB is the UDP datagram ceiling and bounds a TCP peer's buffer too.
pub const MAX_MESSAGE: usize = 65_535;
/// More headers than this is an attack or a bug, not a SIPREC client.
const MAX_HEADERS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Update,
    /// Any other token (REGISTER, INFO, …): the recorder answers 405 or 501.
    Other(String),
}

impl Method {
    fn parse(token: &str) -> Result<Self, ParseError> {
        if token.is_empty() || !token.bytes().all(is_token_char) {
            return Err(ParseError::StartLine("method is not a token"));
        }
        Ok(match token {
            "INVITE" => Self::Invite,
            "ACK" => Self::Ack,
            "BYE" => Self::Bye,
            "CANCEL" => Self::Cancel,
            "OPTIONS" => Self::Options,
            "UPDATE" => Self::Update,
            other => Self::Other(other.to_owned()),
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Bye => "BYE",
            Self::Cancel => "CANCEL",
            Self::Options => "OPTIONS",
            Self::Update => "UPDATE",
            Self::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: Method, uri: String },
    Response { code: u16, reason: String },
}

/// A parsed SIP message. Header names are stored in their canonical long form so lookups
/// need not know about compact forms (`i` → `Call-ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Where a message ends in a byte stream (TCP/TLS), or `Incomplete` if it does not yet.
/// Stream transports require `Content-Length` (RFC 3261 §18.3).
pub fn frame_len(buf: &[u8]) -> Result<usize, ParseError> {
    // Keepalive CRLFs between messages (RFC 5626 §3.5.1) are skipped by the caller.
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_MESSAGE {
            Err(ParseError::TooLarge(buf.len(), MAX_MESSAGE))
        } else {
            Err(ParseError::Incomplete)
        };
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| ParseError::Header("headers are not UTF-8"))?;
    let mut length = None;
    for line in unfold(head).skip(1) {
        let (name, value) = split_header(&line)?;
        if canonical_name(name) == "Content-Length" {
            length = Some(parse_content_length(value)?);
        }
    }
    let length = length.ok_or(ParseError::MissingHeader("Content-Length"))?;
    let total = head_end + 4 + length;
    if total > MAX_MESSAGE {
        return Err(ParseError::TooLarge(total, MAX_MESSAGE));
    }
    if buf.len() < total {
        return Err(ParseError::Incomplete);
    }
    Ok(total)
}

impl Message {
    /// Parses one complete message (one UDP datagram, or one frame cut by [`frame_len`]).
    pub fn parse(buf: &[u8]) -> Result<Self, ParseError> {
        let message = Self::parse_unchecked(buf)?;
        message.check()?;
        Ok(message)
    }

    /// A 400 answer to a request the strict parser refused, when enough of it survives to
    /// address one (RFC 3261 §8.2.6 needs its Via, From, To, Call-ID and CSeq); `None` for a
    /// response or anything too broken, which is then dropped silently.
    pub fn bad_request(buf: &[u8], why: &ParseError) -> Option<Vec<u8>> {
        let message = Self::parse_unchecked(buf).ok()?;
        message.method()?;
        if ["Via", "From", "To", "Call-ID", "CSeq"]
            .iter()
            .any(|h| message.header(h).is_none())
        {
            return None;
        }
        let mut reply = message.response(400, "Bad Request", None);
        // The reason goes in a Warning (RFC 3261 §20.43), quoted without quotes of its own.
        let text = why.to_string().replace(['"', '\\'], "'");
        reply.push_header("Warning", format!("399 callvault \"{text}\""));
        Some(reply.to_bytes())
    }

    fn parse_unchecked(buf: &[u8]) -> Result<Self, ParseError> {
        if buf.len() > MAX_MESSAGE {
            return Err(ParseError::TooLarge(buf.len(), MAX_MESSAGE));
        }
        let head_end = find(buf, b"\r\n\r\n").ok_or(ParseError::Incomplete)?;
        let head = std::str::from_utf8(&buf[..head_end])
            .map_err(|_| ParseError::Header("headers are not UTF-8"))?;
        let body = &buf[head_end + 4..];
        let mut lines = unfold(head);
        let start = parse_start_line(&lines.next().ok_or(ParseError::StartLine("empty"))?)?;
        let mut headers = Vec::new();
        for line in lines {
            if headers.len() == MAX_HEADERS {
                return Err(ParseError::Header("too many headers"));
            }
            let (name, value) = split_header(&line)?;
            headers.push((canonical_name(name), value.to_owned()));
        }
        Ok(Self {
            start,
            headers,
            body: body.to_vec(),
        })
    }

    fn check(&self) -> Result<(), ParseError> {
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if self.header(name).is_none() {
                return Err(ParseError::MissingHeader(name));
            }
        }
        for name in [
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Content-Length",
            "Content-Type",
        ] {
            if self.headers_named(name).count() > 1 {
                return Err(ParseError::Header("a single-valued header appears twice"));
            }
        }
        let (_, cseq_method) = self.cseq()?;
        if let StartLine::Request { method, .. } = &self.start {
            // RFC 3261 §8.2.6.2: CANCEL and ACK carry the INVITE's number with their own method.
            if &cseq_method != method {
                return Err(ParseError::Header(
                    "CSeq method differs from the request method",
                ));
            }
        }
        if let Some(value) = self.header("Content-Length")
            && parse_content_length(value)? != self.body.len()
        {
            return Err(ParseError::ContentLength);
        }
        if self.top_via_branch().is_none() {
            return Err(ParseError::Header("Via has no branch parameter"));
        }
        Ok(())
    }

    /// The first value of a header (by canonical or compact name, any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).next()
    }

    /// Every value of a header, in order, with comma-separated list headers left whole.
    pub fn headers_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = canonical_name(name);
        self.headers
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether an option-tag list header (`Require`, `Supported`) names `tag`.
    pub fn has_option_tag(&self, header: &str, tag: &str) -> bool {
        self.option_tags(header)
            .any(|t| t.eq_ignore_ascii_case(tag))
    }

    pub fn option_tags<'a>(&'a self, header: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers_named(header)
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    pub fn call_id(&self) -> &str {
        self.header("Call-ID").unwrap_or_default()
    }

    pub fn cseq(&self) -> Result<(u32, Method), ParseError> {
        let value = self
            .header("CSeq")
            .ok_or(ParseError::MissingHeader("CSeq"))?;
        let mut parts = value.split_whitespace();
        let number = parts
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or(ParseError::Header("CSeq number"))?;
        let method = Method::parse(parts.next().ok_or(ParseError::Header("CSeq method"))?)?;
        if parts.next().is_some() {
            return Err(ParseError::Header("CSeq has trailing text"));
        }
        Ok((number, method))
    }

    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The branch of the topmost Via: the transaction key (RFC 3261 §17.2.3).
    pub fn top_via_branch(&self) -> Option<&str> {
        let via = self.header("Via")?.split(',').next()?;
        param(via, "branch")
    }

    pub fn from_tag(&self) -> Option<&str> {
        param(self.header("From")?, "tag")
    }

    pub fn to_tag(&self) -> Option<&str> {
        param(self.header("To")?, "tag")
    }

    /// The media type of the body without parameters, lower-cased.
    pub fn content_type(&self) -> Option<String> {
        self.header("Content-Type").map(media_type)
    }

    /// Serialises with CRLF line ends and a correct `Content-Length`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        match &self.start {
            StartLine::Request { method, uri } => {
                out.push_str(&format!("{} {uri} SIP/2.0\r\n", method.as_str()));
            }
            StartLine::Response { code, reason } => {
                out.push_str(&format!("SIP/2.0 {code} {reason}\r\n"));
            }
        }
        for (name, value) in &self.headers {
            if name != "Content-Length" {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// A request built by a client (tests, the SRTP test client); headers in the given order.
    pub fn request(
        method: Method,
        uri: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Self {
        Self {
            start: StartLine::Request {
                method,
                uri: uri.to_owned(),
            },
            headers,
            body,
        }
    }

    /// A response to `self` (a request) per RFC 3261 §8.2.6: Via, From, Call-ID and CSeq copied,
    /// To copied with `to_tag` added unless it already has one (and never on 100 Trying).
    pub fn response(&self, code: u16, reason: &str, to_tag: Option<&str>) -> Self {
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            match name.as_str() {
                "Via" | "From" | "Call-ID" | "CSeq" => headers.push((name.clone(), value.clone())),
                "To" => {
                    let value = match to_tag {
                        Some(tag) if code > 100 && self.to_tag().is_none() => {
                            format!("{value};tag={tag}")
                        }
                        _ => value.clone(),
                    };
                    headers.push((name.clone(), value));
                }
                _ => {}
            }
        }
        Self {
            start: StartLine::Response {
                code,
                reason: reason.to_owned(),
            },
            headers,
            body: Vec::new(),
        }
    }

    pub fn push_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push((canonical_name(name), value.into()));
    }

    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        self.headers.retain(|(n, _)| n != "Content-Type");
        self.headers
            .push(("Content-Type".to_owned(), content_type.to_owned()));
        self.body = body;
    }
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let code: u16 = code
            .parse()
            .ok()
            .filter(|c| (100..700).contains(c) && code.len() == 3)
            .ok_or(ParseError::StartLine("status code"))?;
        return Ok(StartLine::Response {
            code,
            reason: reason.to_owned(),
        });
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::StartLine("expected `METHOD URI SIP/2.0`"));
    };
    if version != "SIP/2.0" {
        return Err(ParseError::StartLine("only SIP/2.0 is supported"));
    }
    let method = Method::parse(method)?;
    let scheme_ok = uri.split_once(':').is_some_and(|(s, rest)| {
        !rest.is_empty() && ["sip", "sips", "tel"].contains(&s.to_ascii_lowercase().as_str())
    });
    if !scheme_ok || uri.bytes().any(|b| b.is_ascii_control()) {
        return Err(ParseError::StartLine(
            "Request-URI must be a sip:, sips: or tel: URI",
        ));
    }
    Ok(StartLine::Request {
        method,
        uri: uri.to_owned(),
    })
}

/// Splits the head on CRLF and joins continuation lines (RFC 3261 §7.3.1 folding).
fn unfold(head: &str) -> impl Iterator<Item = String> + '_ {
    let mut lines = head.split("\r\n").peekable();
    std::iter::from_fn(move || {
        let mut line = lines.next()?.to_owned();
        while let Some(next) = lines.peek() {
            if next.starts_with([' ', '\t']) {
                line.push(' ');
                line.push_str(next.trim_start());
                lines.next();
            } else {
                break;
            }
        }
        Some(line)
    })
}

fn split_header(line: &str) -> Result<(&str, &str), ParseError> {
    let (name, value) = line
        .split_once(':')
        .ok_or(ParseError::Header("a header line has no colon"))?;
    let name = name.trim_end_matches([' ', '\t']);
    if name.is_empty() || !name.bytes().all(is_token_char) {
        return Err(ParseError::Header("header name is not a token"));
    }
    let value = value.trim_matches([' ', '\t']);
    if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
        return Err(ParseError::Header("control character in a header value"));
    }
    Ok((name, value))
}

fn parse_content_length(value: &str) -> Result<usize, ParseError> {
    if value.is_empty() || value.len() > 6 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Header("Content-Length is not a number"));
    }
    value
        .parse()
        .map_err(|_| ParseError::Header("Content-Length is not a number"))
}

/// Long form of a header name, with the case RFC 3261 uses; unknown names keep their spelling
/// lower-cased so that lookups are case-insensitive.
fn canonical_name(name: &str) -> String {
    const KNOWN: &[(&str, &str)] = &[
        ("i", "Call-ID"),
        ("call-id", "Call-ID"),
        ("m", "Contact"),
        ("contact", "Contact"),
        ("l", "Content-Length"),
        ("content-length", "Content-Length"),
        ("c", "Content-Type"),
        ("content-type", "Content-Type"),
        ("f", "From"),
        ("from", "From"),
        ("k", "Supported"),
        ("supported", "Supported"),
        ("t", "To"),
        ("to", "To"),
        ("v", "Via"),
        ("via", "Via"),
        ("cseq", "CSeq"),
        ("require", "Require"),
        ("max-forwards", "Max-Forwards"),
        ("record-route", "Record-Route"),
        ("content-disposition", "Content-Disposition"),
        ("user-agent", "User-Agent"),
        ("allow", "Allow"),
        ("accept", "Accept"),
        ("unsupported", "Unsupported"),
        ("warning", "Warning"),
        ("retry-after", "Retry-After"),
    ];
    let lower = name.to_ascii_lowercase();
    KNOWN
        .iter()
        .find(|(k, _)| *k == lower)
        .map_or(lower, |(_, canonical)| (*canonical).to_owned())
}

/// A `;name=value` parameter of a header value (names compared case-insensitively).
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    // Parameters after the closing `>` of a name-addr, or after the URI of an addr-spec.
    let tail = value.rsplit_once('>').map_or(value, |(_, t)| t);
    tail.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// `multipart/mixed;boundary=x` → `multipart/mixed`.
pub fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Substring search in linear time (a naive window scan is O(n·m), which a 64 KiB body with a
/// 70-byte multipart boundary turns into a cost an attacker can choose).
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}
