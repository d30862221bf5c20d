//! One audit entry, its canonical byte encoding and the hash chain over it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Domain separation: these bytes can never be mistaken for a checkpoint message or any other
/// SHA-256 input in callvault, and bumping the version changes every hash.
const DOMAIN: &[u8] = b"callvault-audit-v1\0";

/// One access or administrative action. Fields are plain strings rather than the newtypes of
/// other crates so that the record can always be read back and verified, even if those types
/// later become stricter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When it happened, in UTC. Only the instant is hashed, so an offset cannot change a hash.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Who acted: `"user:alice"`, `"token:<id>"` or `"system"`.
    pub actor: String,
    /// The tenant whose data was touched, if any.
    pub tenant: Option<String>,
    /// What was done: `"recording.upload"`, `"recording.play"`, `"auth.login"`, ...
    pub action: String,
    /// What it was done to, e.g. a recording id.
    pub target: Option<String>,
    /// The purpose the actor declared, required for access to recordings.
    pub purpose: Option<String>,
    /// `"ok"`, `"denied"` or `"error"`: refusals are recorded as carefully as grants.
    pub result: String,
    /// Client IP address.
    pub client: Option<String>,
    /// Small JSON text; never personal data, because the record is kept longer than recordings.
    pub details: Option<String>,
}

/// A SHA-256 value: a chain link or a checkpointed chain head. Printed and serialized as
/// lowercase hex so that it can be compared by eye and stored in text columns.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hash(pub [u8; 32]);

/// The "previous hash" of entry 1, so that the first entry is chained like every other.
pub const GENESIS: Hash = Hash([0; 32]);

impl Hash {
    /// The chain head before any entry exists.
    pub const GENESIS: Hash = GENESIS;
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The text was not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 hash: expected 64 hexadecimal digits")]
pub struct ParseHashError;

impl FromStr for Hash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ParseHashError)?;
        Ok(Hash(out))
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An entry as the database keeps it. `seq` starts at 1 and has no gaps, so that a deleted row
/// is visible as a gap and not only as a broken link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEntry {
    pub seq: u64,
    pub entry: Entry,
    /// `chain_hash(previous entry's hash, seq, entry)`.
    pub hash: Hash,
}

/// Appends the canonical encoding of entry `seq` to `out` (it does not clear `out`, so one
/// buffer can be reused). Every field is length-prefixed and `None` is distinct from `Some("")`,
/// so two different entries never encode to the same bytes. Layout: `docs/audit-format.md`.
pub fn encode_canonical(seq: u64, entry: &Entry, out: &mut Vec<u8>) {
    encode_into(seq, entry, &mut |bytes| out.extend_from_slice(bytes));
}

/// `SHA-256(prev || encode_canonical(seq, entry))`: the link that makes any edit, deletion or
/// reordering change every later hash. Streams into the hasher, allocating nothing.
pub fn chain_hash(prev: &Hash, seq: u64, entry: &Entry) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(prev.0);
    encode_into(seq, entry, &mut |bytes| hasher.update(bytes));
    Hash(hasher.finalize().into())
}

/// The single definition of the encoding, written to any byte consumer so that hashing and
/// `encode_canonical` cannot drift apart.
fn encode_into(seq: u64, e: &Entry, put: &mut dyn FnMut(&[u8])) {
    put(DOMAIN);
    put(&seq.to_be_bytes());
    put(&e.time.unix_timestamp_nanos().to_be_bytes());
    let fields: [Option<&str>; 8] = [
        Some(&e.actor),
        e.tenant.as_deref(),
        Some(&e.action),
        e.target.as_deref(),
        e.purpose.as_deref(),
        Some(&e.result),
        e.client.as_deref(),
        e.details.as_deref(),
    ];
    for field in fields {
        match field {
            None => put(&[0]),
            Some(s) => {
                put(&[1]);
                put_len(s.len(), put);
                put(s.as_bytes());
            }
        }
    }
}

/// `u32` BE; a length of 2^32-1 or more (never seen in practice, but it must not collide) is
/// written as the marker `ffffffff` followed by the length as `u64` BE.
fn put_len(len: usize, put: &mut dyn FnMut(&[u8])) {
    match u32::try_from(len) {
        Ok(n) if n != u32::MAX => put(&n.to_be_bytes()),
        _ => {
            put(&u32::MAX.to_be_bytes());
            put(&(len as u64).to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    pub(crate) fn vector_entry() -> Entry {
        Entry {
            time: datetime!(2025-01-02 03:04:05.123456789 UTC),
            actor: "user:alice".into(),
            tenant: Some("acme".into()),
            action: "recording.play".into(),
            target: Some("rec_01".into()),
            purpose: Some("quality review".into()),
            result: "ok".into(),
            client: Some("192.0.2.7".into()),
            details: None,
        }
    }

    const VECTOR_HEX: &str = concat!(
        "63616c6c7661756c742d61756469742d763100", // "callvault-audit-v1\0"
        "0000000000000007",                       // seq 7
        "00000000000000001816c11ef64eff15",       // time 1735787045123456789 ns
        "010000000a757365723a616c696365",         // actor "user:alice"
        "010000000461636d65",                     // tenant "acme"
        "010000000e7265636f7264696e672e706c6179", // action "recording.play"
        "01000000067265635f3031",                 // target "rec_01"
        "010000000e7175616c69747920726576696577", // purpose "quality review"
        "01000000026f6b",                         // result "ok"
        "01000000093139322e302e322e37",           // client "192.0.2.7"
        "00",                                     // details: absent
    );

    const VECTOR_HASH: &str = "c9a3f86127cf3f097317228645b41fa4ec6d938c6a8a75dc73df6a9b0c055e00";

    #[test]
    fn canonical_encoding_test_vector() {
        let mut buf = Vec::new();
        encode_canonical(7, &vector_entry(), &mut buf);
        assert_eq!(hex::encode(&buf), VECTOR_HEX);
        let h = chain_hash(&GENESIS, 7, &vector_entry());
        assert_eq!(h.to_string(), VECTOR_HASH);
        // chain_hash is exactly SHA-256(prev || canonical).
        let mut pre = GENESIS.0.to_vec();
        pre.extend_from_slice(&buf);
        assert_eq!(h.0, <[u8; 32]>::from(Sha256::digest(&pre)));
    }

    #[test]
    fn none_differs_from_empty_string() {
        let a = vector_entry();
        let mut b = vector_entry();
        b.details = Some(String::new());
        assert_ne!(chain_hash(&GENESIS, 1, &a), chain_hash(&GENESIS, 1, &b));
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = vector_entry();
        a.actor = "ab".into();
        a.tenant = Some("c".into());
        let mut b = vector_entry();
        b.actor = "a".into();
        b.tenant = Some("bc".into());
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        encode_canonical(1, &a, &mut ea);
        encode_canonical(1, &b, &mut eb);
        assert_eq!(ea.len(), eb.len());
        assert_ne!(ea, eb);
        assert_ne!(chain_hash(&GENESIS, 1, &a), chain_hash(&GENESIS, 1, &b));
    }

    #[test]
    fn seq_prev_and_offset() {
        let e = vector_entry();
        assert_ne!(chain_hash(&GENESIS, 1, &e), chain_hash(&GENESIS, 2, &e));
        assert_ne!(
            chain_hash(&GENESIS, 1, &e),
            chain_hash(&Hash([1; 32]), 1, &e)
        );
        // Same instant written with another offset: same hash.
        let mut shifted = e.clone();
        shifted.time = e.time.to_offset(time::macros::offset!(+2));
        assert_eq!(
            chain_hash(&GENESIS, 1, &e),
            chain_hash(&GENESIS, 1, &shifted)
        );
    }

    #[test]
    fn encode_appends() {
        let mut buf = b"xy".to_vec();
        encode_canonical(1, &vector_entry(), &mut buf);
        assert!(buf.starts_with(b"xycallvault-audit-v1\0"));
    }

    #[test]
    fn hash_text_forms() {
        let h = Hash([0xab; 32]);
        let s = "ab".repeat(32);
        assert_eq!(h.to_string(), s);
        assert_eq!(format!("{h:?}"), s);
        assert_eq!(s.parse::<Hash>(), Ok(h));
        assert_eq!("ab".parse::<Hash>(), Err(ParseHashError));
        assert_eq!("zz".repeat(32).parse::<Hash>(), Err(ParseHashError));
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{s}\""));
        assert_eq!(serde_json::from_str::<Hash>(&json).unwrap(), h);
    }

    #[test]
    fn entry_json_round_trip() {
        let e = vector_entry();
        let back: Entry = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
}
