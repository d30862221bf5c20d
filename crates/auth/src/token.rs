//! Bearer secrets: API tokens, session tokens and playback grants.
//!
//! A token is a kind prefix (so a leaked one is recognisable, by people and by secret scanners)
//! followed by 32 random bytes in lowercase base32. Only its SHA-256 is stored: a slow hash
//! defends guessable passwords, and a 256-bit random secret is not guessable, while a fast hash
//! keeps per-request lookup cheap. The hash covers the whole string, prefix included, so a token
//! of one kind can never match a stored hash of another.

use std::fmt;

use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::TokenFormatError;

/// Random bytes per token.
const SECRET_BYTES: usize = 32;
/// Base32 characters for 32 bytes without padding: ceil(256 / 5).
const BODY_LEN: usize = 52;
const PREFIX_LEN: usize = 4;
/// Total length of every token, prefix included.
pub const TOKEN_LEN: usize = PREFIX_LEN + BODY_LEN;

/// What a token grants; the prefix says it at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Long-lived, for integrations (`cvt_`).
    Api,
    /// A logged-in console session (`cvs_`).
    Session,
    /// Permission to play one recording for a short time (`cvg_`).
    Grant,
}

impl Kind {
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Api => "cvt_",
            Kind::Session => "cvs_",
            Kind::Grant => "cvg_",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Api => "API",
            Kind::Session => "session",
            Kind::Grant => "playback grant",
        }
    }
}

/// SHA-256 of a token: what the database stores and looks up by.
///
/// Plain `==` is fine here: an attacker cannot choose hash bytes, so timing of the comparison
/// reveals nothing usable. `Debug` shows only the first 4 bytes, enough to correlate log lines.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }

    /// Parses 64 hex digits (either case), as written by `to_hex`.
    pub fn from_hex(s: &str) -> Result<Self, TokenFormatError> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .map_err(|_| TokenFormatError::BadHashHex)?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(Self)
            .map_err(|_| TokenFormatError::BadHashHex)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = data_encoding::HEXLOWER.encode(&self.0[..4]);
        write!(f, "TokenHash({head}…)")
    }
}

/// Lowercase RFC 4648 base32 alphabet.
fn is_body_char(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'2'..=b'7')
}

/// A fresh token of `kind`: the secret to hand out once, and the hash to store.
pub fn generate(kind: Kind) -> (SecretString, TokenHash) {
    let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
    OsRng.fill_bytes(bytes.as_mut());
    let mut body = Zeroizing::new([0u8; BODY_LEN]);
    data_encoding::BASE32_NOPAD.encode_mut(bytes.as_ref(), body.as_mut());
    // Exact capacity: `SecretString::from` then keeps this allocation instead of copying.
    let mut token = String::with_capacity(TOKEN_LEN);
    token.push_str(kind.prefix());
    token.extend(body.iter().map(|b| char::from(b.to_ascii_lowercase())));
    let hash = digest(&token);
    (SecretString::from(token), hash)
}

/// Checks the shape of a presented token and returns its hash for lookup.
///
/// Shape errors are reported before hashing so the user hears "you pasted half a token" rather
/// than "unknown token". Wrong kind, length or alphabet never match anything, so refusing them
/// early loses nothing.
pub fn hash(kind: Kind, presented: &str) -> Result<TokenHash, TokenFormatError> {
    let bytes = presented.as_bytes();
    if !bytes.starts_with(kind.prefix().as_bytes()) {
        return Err(TokenFormatError::WrongPrefix {
            expected: kind.prefix(),
            kind: kind.name(),
        });
    }
    if bytes.len() != TOKEN_LEN {
        return Err(TokenFormatError::WrongLength {
            expected: TOKEN_LEN,
            actual: presented.chars().count(),
        });
    }
    if !bytes[PREFIX_LEN..].iter().all(|&b| is_body_char(b)) {
        return Err(TokenFormatError::BadCharacter);
    }
    Ok(digest(presented))
}

fn digest(token: &str) -> TokenHash {
    TokenHash(Sha256::digest(token.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const KINDS: [Kind; 3] = [Kind::Api, Kind::Session, Kind::Grant];

    #[test]
    fn generate_then_hash_round_trip() {
        for kind in KINDS {
            let (secret, stored) = generate(kind);
            let s = secret.expose_secret();
            assert_eq!(s.len(), TOKEN_LEN);
            assert!(s.starts_with(kind.prefix()));
            assert!(s[4..].bytes().all(is_body_char), "{s}");
            assert_eq!(hash(kind, s), Ok(stored));
            let (other, other_hash) = generate(kind);
            assert_ne!(other.expose_secret(), s);
            assert_ne!(other_hash, stored);
        }
    }

    #[test]
    fn body_decodes_to_32_bytes() {
        let (secret, _) = generate(Kind::Api);
        let body = secret.expose_secret()[4..].to_ascii_uppercase();
        let raw = data_encoding::BASE32_NOPAD.decode(body.as_bytes()).unwrap();
        assert_eq!(raw.len(), 32);
    }

    #[test]
    fn hash_is_sha256_of_whole_token() {
        let token = format!("cvs_{}", "a".repeat(52));
        let h = hash(Kind::Session, &token).unwrap();
        assert_eq!(h.0, <[u8; 32]>::from(Sha256::digest(token.as_bytes())));
    }

    #[test]
    fn wrong_prefix_is_rejected() {
        let (secret, _) = generate(Kind::Api);
        let s = secret.expose_secret();
        assert_eq!(
            hash(Kind::Session, s),
            Err(TokenFormatError::WrongPrefix {
                expected: "cvs_",
                kind: "session"
            })
        );
        assert!(matches!(
            hash(Kind::Grant, s),
            Err(TokenFormatError::WrongPrefix { .. })
        ));
        let upper = format!("CVT_{}", &s[4..]);
        assert!(matches!(
            hash(Kind::Api, &upper),
            Err(TokenFormatError::WrongPrefix { .. })
        ));
        assert!(matches!(
            hash(Kind::Api, ""),
            Err(TokenFormatError::WrongPrefix { .. })
        ));
    }

    #[test]
    fn wrong_length_and_alphabet_are_rejected() {
        let (secret, _) = generate(Kind::Api);
        let s = secret.expose_secret();
        assert_eq!(
            hash(Kind::Api, &s[..TOKEN_LEN - 1]),
            Err(TokenFormatError::WrongLength {
                expected: 56,
                actual: 55
            })
        );
        assert!(matches!(
            hash(Kind::Api, &format!("{s}a")),
            Err(TokenFormatError::WrongLength { .. })
        ));
        assert!(matches!(
            hash(Kind::Api, &format!("{s}\n")),
            Err(TokenFormatError::WrongLength { .. })
        ));
        for bad in ['A', '0', '1', '8', '9', '=', ' ', '-'] {
            let t = format!("cvt_{bad}{}", &s[5..]);
            assert_eq!(
                hash(Kind::Api, &t),
                Err(TokenFormatError::BadCharacter),
                "{t}"
            );
        }
        // A multi-byte character keeps the byte length right but is still refused.
        let t = format!("cvt_é{}", &s[6..]);
        assert_eq!(t.len(), TOKEN_LEN);
        assert_eq!(hash(Kind::Api, &t), Err(TokenFormatError::BadCharacter));
    }

    #[test]
    fn errors_never_echo_the_token() {
        let (secret, _) = generate(Kind::Api);
        let s = secret.expose_secret();
        for presented in [s.to_string(), s[..30].to_string(), format!("{}A", &s[..55])] {
            if let Err(e) = hash(Kind::Session, &presented).and(hash(Kind::Api, &presented)) {
                let msg = format!("{e} {e:?}");
                assert!(!msg.contains(&s[4..12]), "{msg}");
            }
        }
    }

    #[test]
    fn debug_shows_only_a_hash_prefix() {
        let (secret, h) = generate(Kind::Grant);
        let shown = format!("{h:?}");
        let hex = h.to_hex();
        assert_eq!(shown, format!("TokenHash({}…)", &hex[..8]));
        assert!(!shown.contains(&hex[8..]));
        let shown_secret = format!("{secret:?}");
        assert!(!shown_secret.contains(&secret.expose_secret()[4..]));
        assert!(!shown_secret.contains("cvg_"));
    }

    #[test]
    fn hex_round_trip() {
        let (_, h) = generate(Kind::Api);
        let hex = h.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(TokenHash::from_hex(&hex), Ok(h));
        assert_eq!(TokenHash::from_hex(&hex.to_uppercase()), Ok(h));
        for bad in [
            "",
            "abc",
            &hex[..62],
            &format!("{hex}00"),
            &hex.replace(&hex[..1], "g"),
        ] {
            assert_eq!(
                TokenHash::from_hex(bad),
                Err(TokenFormatError::BadHashHex),
                "{bad}"
            );
        }
    }
}
