//! Keyed hashes of caller numbers: equal numbers find each other in search, but the database
//! alone (without the master key) cannot be dictionary-searched for a number.

use crate::CryptoError;
use crate::master::{KeyProvider, SealContext};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

pub struct CallerHashKey(SecretBox<[u8; 32]>);

impl CallerHashKey {
    /// A fresh key, returned sealed for storage and opened for use.
    pub fn generate(kp: &KeyProvider, tenant: &str) -> Result<(Vec<u8>, Self), CryptoError> {
        let mut k = Box::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        let sealed = kp.seal(&SealContext::caller_hash_key(tenant), k.as_ref())?;
        Ok((sealed, Self(SecretBox::new(k))))
    }

    pub fn open(kp: &KeyProvider, tenant: &str, sealed: &[u8]) -> Result<Self, CryptoError> {
        let b = kp.open(&SealContext::caller_hash_key(tenant), sealed)?;
        let k = <[u8; 32]>::try_from(b.expose_secret().as_slice())
            .map_err(|_| CryptoError::Integrity)?;
        Ok(Self(SecretBox::new(Box::new(k))))
    }

    /// HMAC-SHA256 of the normalised E.164 number.
    pub fn hash(&self, e164: &str) -> [u8; 32] {
        // A 32-byte key is always a valid HMAC key.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.expose_secret()) else {
            unreachable!("HMAC accepts keys of any length")
        };
        mac.update(e164.as_bytes());
        mac.finalize().into_bytes().into()
    }
}
