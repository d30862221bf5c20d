//! Domain types shared by every callvault crate.
//!
//! Parse, don't validate: each type here has private fields and is built only through
//! `parse`/`TryFrom`, so code that holds one never re-checks a raw string. This crate knows
//! nothing of HTTP, SQL, files or crypto.
#![forbid(unsafe_code)]

mod ids;
mod number;
mod purpose;
mod role;

pub use ids::{BlobName, RecordingId, TenantId, UserId, Username};
pub use number::E164;
pub use purpose::{Purpose, PurposeCode};
pub use role::{Direction, Role};

/// Why a value was refused; the message tells the sender what a good value looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {why}")]
pub struct ParseError {
    what: &'static str,
    why: String,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, why: impl Into<String>) -> Self {
        Self {
            what,
            why: why.into(),
        }
    }
}
