//! The tamper-evident audit record (threat T6: an administrator edits the record to hide an
//! access).
//!
//! This crate owns the *format* of the record and its verification, nothing else: every entry is
//! bound to its predecessor by a SHA-256 hash chain ([`chain_hash`]), the chain head is
//! periodically signed ([`Checkpoint`]) and each signed checkpoint is also copied to an external,
//! append-only [`sink`] that the database administrator cannot rewrite. [`Verifier`] streams the
//! whole record and names the first entry that is wrong.
//!
//! It must not do I/O beyond the small file sink: the storage crate persists [`StoredEntry`] and
//! [`Checkpoint`] rows and calls [`chain_hash`] inside its own transaction, so that the hash and
//! the row commit together. The byte encoding is specified in `docs/audit-format.md`.

#![forbid(unsafe_code)]

mod checkpoint;
mod entry;
pub mod sink;
mod verify;

pub use checkpoint::Checkpoint;
pub use entry::{Entry, GENESIS, Hash, ParseHashError, StoredEntry, chain_hash, encode_canonical};
pub use verify::{Finding, Report, Verifier, verify};

/// A fresh checkpoint signing key from the operating system's random source, for `callvault init`.
/// Kept here so that callers need not pick an RNG themselves.
pub fn generate_signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng)
}
