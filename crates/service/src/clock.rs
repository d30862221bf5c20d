//! The one clock. Everything that asks "what time is it" asks here: [`unix_now`] for the unix
//! seconds stored in rows and compared with expiries, [`utc_now`] where a calendar time is
//! formatted (audit entries, certificates).
//!
//! [`Clock`] is the time retention, holds and erasure requests see. Every server runs on
//! `System`; only `callvault retention run --now T` (an operator at the database, audited with
//! the time it used) runs on `Fixed`. There is no switch that moves a running server's clock, so
//! a test clock cannot become a production hole: see docs/design/lifecycle.md.
//!
//! This module imports nothing from the crate, so every layer may use it without a cycle.

use time::OffsetDateTime;

/// The wall clock, UTC.
pub fn utc_now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The wall clock in unix seconds, UTC.
pub fn unix_now() -> i64 {
    utc_now().unix_timestamp()
}

/// Unix seconds as an RFC 3339 time (empty if out of range), as the API and archives show it.
pub fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// An RFC 3339 time as unix seconds; `None` if it is not one.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|d| d.unix_timestamp())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    System,
    /// Always this unix time.
    Fixed(i64),
}

impl Clock {
    /// Unix seconds, UTC.
    pub fn now(self) -> i64 {
        match self {
            Self::System => unix_now(),
            Self::Fixed(t) => t,
        }
    }
}
