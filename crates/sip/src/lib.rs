//! SIPREC (RFC 7865/7866) protocol parsing, media crypto and RTP mixing for the recorder, with no I/O.
//!
//! Owns: the SIP message grammar (`message`), SDP offers and answers (`sdp`), `multipart/mixed`
//! bodies (`multipart`), recording metadata in the RFC's and the vendors' dialects (`metadata`),
//! RTP headers (`rtp`), SRTP unprotection (`srtp`), and the [`Mixer`] that places a call's RTP
//! packets by timestamp into stereo frames (`mixer`). Every parser takes bytes and returns a
//! typed value or a [`ParseError`]; none allocates without a bound, none panics on any input
//! (the fuzz targets under `fuzz/` hold them to that). Sockets, timers, clocks, transactions and
//! storage live in `callvault-server`; this crate must not learn about them.

pub mod error;
pub mod message;
pub mod metadata;
pub mod mixer;
pub mod multipart;
pub mod rtp;
pub mod sdp;
pub mod srtp;

pub use error::ParseError;
pub use mixer::Mixer;
