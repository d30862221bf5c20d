//! The one error type of the parsers. Each variant says what was wrong in words a SIP peer's
//! administrator can act on; the server copies it into the reason phrase or a `Warning` header.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    #[error("message incomplete: more bytes needed")]
    Incomplete,
    #[error("message too large: {0} bytes exceeds the limit of {1}")]
    TooLarge(usize, usize),
    #[error("malformed start line: {0}")]
    StartLine(&'static str),
    #[error("malformed header: {0}")]
    Header(&'static str),
    #[error("missing mandatory header {0}")]
    MissingHeader(&'static str),
    #[error("Content-Length disagrees with the body")]
    ContentLength,
    #[error("malformed SDP: {0}")]
    Sdp(&'static str),
    #[error("malformed multipart body: {0}")]
    Multipart(&'static str),
    #[error("malformed recording metadata: {0}")]
    Metadata(&'static str),
    #[error("malformed RTP packet: {0}")]
    Rtp(&'static str),
    #[error("malformed SRTP crypto attribute: {0}")]
    Crypto(&'static str),
}
