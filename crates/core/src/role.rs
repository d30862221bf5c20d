//! Roles (BRIEF "Who uses it") and call direction.

use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a principal may do. Separation of duties is encoded here once: only `Listener` and
/// `PrivacyOfficer` may ever hear audio; admins and auditors never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A machine that sends calls in and can never read anything back (T3).
    Recorder,
    Listener,
    PrivacyOfficer,
    Auditor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Recorder,
        Role::Listener,
        Role::PrivacyOfficer,
        Role::Auditor,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Recorder => "recorder",
            Role::Listener => "listener",
            Role::PrivacyOfficer => "privacy_officer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                ParseError::new(
                    "role",
                    "must be one of recorder, listener, privacy_officer, auditor, admin",
                )
            })
    }

    /// May this role hear audio at all (separation of duties)?
    pub fn may_play(self) -> bool {
        matches!(self, Role::Listener | Role::PrivacyOfficer)
    }

    /// Humans log in with password + TOTP; recorders are machines and use tokens only.
    pub fn is_human(self) -> bool {
        !matches!(self, Role::Recorder)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way the call went, as seen from the hotline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
    Internal,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s {
            "inbound" => Ok(Self::Inbound),
            "outbound" => Ok(Self::Outbound),
            "internal" => Ok(Self::Internal),
            _ => Err(ParseError::new(
                "direction",
                "must be inbound, outbound or internal",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listeners_and_privacy_officers_play() {
        let players: Vec<_> = Role::ALL.into_iter().filter(|r| r.may_play()).collect();
        assert_eq!(players, [Role::Listener, Role::PrivacyOfficer]);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
    }
}
