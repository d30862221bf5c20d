//! Identifiers. Random ids are 128-bit and hex; names chosen by people are short slugs.

use crate::ParseError;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::fmt;

fn is_slug(s: &str, max: usize, extra: &[char]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || extra.contains(&c))
}

macro_rules! slug_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $extra:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, ParseError> {
                if is_slug(s, $max, $extra) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(ParseError::new(
                        $what,
                        format!(
                            "must be 1 to {} characters of a-z, 0-9, '-'{} starting with a letter or digit",
                            $max,
                            $extra.iter().map(|c: &char| format!(", '{c}'")).collect::<String>()
                        ),
                    ))
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slug_type!(
    /// A tenant (one customer of the operator, e.g. one region's hotline). Never appears in blob names.
    TenantId, "tenant", 63, &[]
);
slug_type!(
    /// A login name.
    Username, "username", 64, &['.', '_']
);

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name([u8; 16]);

        impl $name {
            /// A fresh random id; 128 bits so ids can be neither guessed nor enumerated.
            pub fn random() -> Self {
                let mut b = [0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut b);
                Self(b)
            }
            pub fn parse(s: &str) -> Result<Self, ParseError> {
                let err = || ParseError::new($what, concat!("must be '", $prefix, "' followed by 32 lowercase hex digits"));
                let hex_part = s.strip_prefix($prefix).ok_or_else(err)?;
                if hex_part.len() != 32 || hex_part.chars().any(|c| c.is_ascii_uppercase()) {
                    return Err(err());
                }
                let mut b = [0u8; 16];
                hex::decode_to_slice(hex_part, &mut b).map_err(|_| err())?;
                Ok(Self(b))
            }
        }
        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.to_string()
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, hex::encode(self.0))
            }
        }
    };
}

random_id!(
    /// A recording. Shown to users; unrelated to where its audio is stored.
    RecordingId, "recording id", "rec_"
);
random_id!(
    /// A user account.
    UserId, "user id", "usr_"
);
random_id!(
    /// The name of one blob in the blob store: random, so a listing of the store reveals no
    /// tenant, date, number or recording id (T2).
    BlobName, "blob name", "b"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(TenantId::parse("region-skane").is_ok());
        for bad in ["", "-x", "Upper", "a b", "a/b", &"x".repeat(64)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Username::parse("anna.berg_2").is_ok());
    }

    #[test]
    fn random_ids_round_trip_and_reject_lookalikes() {
        let id = RecordingId::random();
        assert_eq!(RecordingId::parse(&id.to_string()), Ok(id));
        assert_ne!(RecordingId::random(), id);
        let s = id.to_string();
        assert!(RecordingId::parse(&s.to_uppercase()).is_err());
        assert!(RecordingId::parse(&s[..s.len() - 1]).is_err());
        assert!(UserId::parse(&s).is_err(), "prefix distinguishes kinds");
        assert!(BlobName::parse(&BlobName::random().to_string()).is_ok());
    }
}
