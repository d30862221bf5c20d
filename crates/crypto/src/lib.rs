//! The key hierarchy and the at-rest format (docs/FORMAT.md).
//!
//! ```text
//! master key (KeyProvider: key file, optionally passphrase-sealed; KMS/HSM later)
//!   └─ seals each tenant's age X25519 identity, its caller-number hash key, the audit signing key
//!        └─ tenant recipient (public) wraps one random file key per recording (age)
//!             └─ file key encrypts the recording (age STREAM, ChaCha20-Poly1305, 64 KiB chunks)
//!        └─ tenant recipient also wraps one journal key per node and live call (age)
//!             └─ journal key seals each acknowledged chunk (XChaCha20-Poly1305)
//! ```
//!
//! This crate owns every cryptographic construction callvault uses, and invents none: recordings
//! are standard age files (split into header and payload), sealing under the master key is
//! XChaCha20-Poly1305 with the purpose bound as associated data, passphrases go through argon2id.
//! It knows nothing of HTTP, SQL or where bytes are stored.
#![forbid(unsafe_code)]

mod aead;
mod error;
mod journal;
mod master;
mod pseudonym;
mod recording;
mod tenant;

pub use error::CryptoError;
pub use journal::{CHUNK_OVERHEAD, JournalKey};
pub use master::{KeyProvider, SealContext, generate_key_file};
pub use pseudonym::CallerHashKey;
pub use recording::{
    Header, Joined, PayloadReader, RecordingWriter, decrypt_small, encrypt_small, open_recording,
};
pub use tenant::{TenantIdentity, TenantRecipient};

/// Re-exported so callers can name secret types without depending on `secrecy` directly.
pub use secrecy::{ExposeSecret, SecretBox, SecretString};
