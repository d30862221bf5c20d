//! `multipart/mixed` bodies (RFC 2046 §5.1) as SIPREC uses them: an SDP part and a metadata
//! part. Only what a recorder needs: the boundary parameter, the parts' `Content-Type`, and
//! their bytes. Nested multiparts and transfer encodings other than identity are refused.

use crate::ParseError;
use crate::message::{find, media_type};

const MAX_PARTS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// Lower-cased media type without parameters, e.g. `application/sdp`.
    pub content_type: String,
    pub body: &'a [u8],
}

/// The parts of a SIP body with the given `Content-Type` header value. A body that is not
/// multipart is returned as its single part, so callers handle both shapes the same way.
pub fn parts<'a>(content_type: &str, body: &'a [u8]) -> Result<Vec<Part<'a>>, ParseError> {
    let kind = media_type(content_type);
    if !kind.starts_with("multipart/") {
        return Ok(vec![Part {
            content_type: kind,
            body,
        }]);
    }
    if kind != "multipart/mixed" && kind != "multipart/related" {
        return Err(ParseError::Multipart("only multipart/mixed is supported"));
    }
    let boundary = boundary(content_type)?;
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    // The first delimiter may open the body or follow a preamble after a line break.
    let mut at = if body.starts_with(delimiter) {
        0
    } else {
        find(body, &[b"\r\n", delimiter].concat())
            .map(|p| p + 2)
            .ok_or(bad("no opening boundary"))?
    };
    let mut out = Vec::new();
    loop {
        let after = &body[at + delimiter.len()..];
        if after.starts_with(b"--") {
            break; // closing delimiter; the epilogue is ignored
        }
        let after = after
            .strip_prefix(b"\r\n")
            .or_else(|| after.strip_prefix(b"\n"))
            .ok_or(bad("boundary not followed by a line break"))?;
        let start = body.len() - after.len();
        let next = find(after, &[b"\r\n", delimiter].concat())
            .map(|p| (p, 2))
            .or_else(|| find(after, &[b"\n", delimiter].concat()).map(|p| (p, 1)))
            .ok_or(bad("no closing boundary"))?;
        out.push(part(&after[..next.0])?);
        if out.len() > MAX_PARTS {
            return Err(bad("too many parts"));
        }
        at = start + next.0 + next.1;
    }
    Ok(out)
}

fn bad(why: &'static str) -> ParseError {
    ParseError::Multipart(why)
}

fn boundary(content_type: &str) -> Result<String, ParseError> {
    let value = content_type
        .split(';')
        .skip(1)
        .find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("boundary")
                .then_some(v.trim())
        })
        .ok_or(bad("no boundary parameter"))?;
    let value = value.trim_matches('"');
    // RFC 2046 §5.1.1: 1 to 70 characters.
    if value.is_empty() || value.len() > 70 || value.bytes().any(|b| b.is_ascii_control()) {
        return Err(bad("boundary must be 1 to 70 printable characters"));
    }
    Ok(value.to_owned())
}

fn part(raw: &[u8]) -> Result<Part<'_>, ParseError> {
    let (head, body) = if raw.starts_with(b"\r\n") {
        (&raw[..0], &raw[2..])
    } else if let Some(p) = find(raw, b"\r\n\r\n") {
        (&raw[..p], &raw[p + 4..])
    } else if let Some(p) = find(raw, b"\n\n") {
        (&raw[..p], &raw[p + 2..])
    } else {
        return Err(bad("a part has no blank line after its headers"));
    };
    let head = std::str::from_utf8(head).map_err(|_| bad("part headers are not UTF-8"))?;
    let mut content_type = "text/plain".to_owned();
    for line in head.lines() {
        let (name, value) = line
            .split_once(':')
            .ok_or(bad("a part header has no colon"))?;
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-type") {
            content_type = media_type(value);
        } else if name.eq_ignore_ascii_case("content-transfer-encoding")
            && !["binary", "8bit", "7bit"].contains(&value.trim().to_ascii_lowercase().as_str())
        {
            return Err(bad("only identity transfer encodings are supported"));
        }
    }
    if content_type.starts_with("multipart/") {
        return Err(bad("nested multipart bodies are not supported"));
    }
    Ok(Part { content_type, body })
}
