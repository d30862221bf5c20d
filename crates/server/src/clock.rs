//! The time retention, holds and erasure requests see. Every server runs on `System`; only
//! `callvault retention run --now T` (an operator at the database, audited with the time it
//! used) runs on `Fixed`. There is no switch that moves a running server's clock, so a test
//! clock cannot become a production hole: see docs/design/lifecycle.md.

use time::OffsetDateTime;

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
            Self::System => OffsetDateTime::now_utc().unix_timestamp(),
            Self::Fixed(t) => t,
        }
    }
}
