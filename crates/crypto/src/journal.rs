//! The live-call journal envelope (docs/FORMAT.md, "Live-call journal"): what a node writes
//! while a call is in progress, using only the tenant's public key.
//!
//! Each node that takes part in a call draws a fresh 32-byte journal key and stores it as a
//! small standard age file to the tenant recipient (`wrapped`); every acknowledged chunk is
//! sealed under that key with the same XChaCha20-Poly1305 envelope as values sealed under the
//! master key, with `callvault/live-chunk/v1/<call>/<seq>` as associated data, so a chunk cannot
//! be moved to another call or another place in the same call. Nothing here is new crypto: age
//! wraps a key, an AEAD seals each chunk. Reading back needs the tenant identity (to unwrap the
//! key), which ingest nodes never hold.

use crate::CryptoError;
use crate::aead::{open_with, seal_with};
use crate::recording::{decrypt_small, encrypt_small};
use crate::tenant::{TenantIdentity, TenantRecipient};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};

pub use crate::aead::SEAL_OVERHEAD as CHUNK_OVERHEAD;

/// A journal key in memory. Not `Debug`, never serialised except wrapped by age.
pub struct JournalKey(SecretBox<[u8; 32]>);

impl JournalKey {
    /// A fresh key and its age-wrapped form for the tenant.
    pub fn generate(recipients: &[TenantRecipient]) -> Result<(Self, Vec<u8>), CryptoError> {
        let mut key = Box::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        let wrapped = encrypt_small(recipients, key.as_ref())?;
        Ok((Self(SecretBox::new(key)), wrapped))
    }

    /// Unwraps a stored key with the tenant identity.
    pub fn unwrap(identity: &TenantIdentity, wrapped: &[u8]) -> Result<Self, CryptoError> {
        let plain = decrypt_small(identity, wrapped)?;
        let key = <[u8; 32]>::try_from(plain.expose_secret().as_slice())
            .map_err(|_| CryptoError::Integrity)?;
        Ok(Self(SecretBox::new(Box::new(key))))
    }

    pub fn seal_chunk(&self, call: &str, seq: u64, audio: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.0, chunk_context(call, seq).as_bytes(), audio)
    }

    pub fn open_chunk(
        &self,
        call: &str,
        seq: u64,
        sealed: &[u8],
    ) -> Result<SecretBox<Vec<u8>>, CryptoError> {
        open_with(&self.0, chunk_context(call, seq).as_bytes(), sealed)
    }
}

fn chunk_context(call: &str, seq: u64) -> String {
    format!("callvault/live-chunk/v1/{call}/{seq}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_chunk_opens_only_under_its_call_and_sequence_number() {
        let id = TenantIdentity::generate_unsealed_for_tests();
        let (key, wrapped) = JournalKey::generate(&[id.recipient()]).unwrap();
        let sealed = key.seal_chunk("rec_a", 7, b"audio").unwrap();
        assert_eq!(sealed.len(), 5 + CHUNK_OVERHEAD);
        let again = JournalKey::unwrap(&id, &wrapped).unwrap();
        assert_eq!(
            again
                .open_chunk("rec_a", 7, &sealed)
                .unwrap()
                .expose_secret(),
            b"audio"
        );
        assert!(again.open_chunk("rec_a", 8, &sealed).is_err());
        assert!(again.open_chunk("rec_b", 7, &sealed).is_err());
        let other = TenantIdentity::generate_unsealed_for_tests();
        assert!(JournalKey::unwrap(&other, &wrapped).is_err());
    }
}
