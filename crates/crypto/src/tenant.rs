//! Per-tenant age X25519 key pairs. The recipient (public key) is all an ingest node needs; the
//! identity exists in clear only in memory, after being opened with the master key.

use crate::CryptoError;
use crate::master::{KeyProvider, SealContext};
use secrecy::ExposeSecret;
use std::str::FromStr;

/// A tenant's public key: encrypts, never decrypts (T3).
#[derive(Clone)]
pub struct TenantRecipient(age::x25519::Recipient);

impl TenantRecipient {
    pub fn parse(s: &str) -> Result<Self, CryptoError> {
        age::x25519::Recipient::from_str(s)
            .map(Self)
            .map_err(|e| CryptoError::BadRecipient(e.to_string()))
    }

    pub(crate) fn inner(&self) -> &age::x25519::Recipient {
        &self.0
    }
}

impl std::fmt::Display for TenantRecipient {
    /// The standard `age1…` form, usable with `rage -r`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A tenant's private key. Not `Debug`, not `Display`: exporting it is an explicit, audited act.
pub struct TenantIdentity(age::x25519::Identity);

impl TenantIdentity {
    /// A fresh key pair: the identity sealed under the master key, and the recipient.
    pub fn generate(
        kp: &KeyProvider,
        tenant: &str,
        key_id: i64,
    ) -> Result<(Vec<u8>, TenantRecipient), CryptoError> {
        let id = age::x25519::Identity::generate();
        let sealed = kp.seal(
            &SealContext::tenant_identity(tenant, key_id),
            id.to_string().expose_secret().as_bytes(),
        )?;
        Ok((sealed, TenantRecipient(id.to_public())))
    }

    pub fn open(
        kp: &KeyProvider,
        tenant: &str,
        key_id: i64,
        sealed: &[u8],
    ) -> Result<Self, CryptoError> {
        let bytes = kp.open(&SealContext::tenant_identity(tenant, key_id), sealed)?;
        let text =
            std::str::from_utf8(bytes.expose_secret()).map_err(|_| CryptoError::Integrity)?;
        age::x25519::Identity::from_str(text)
            .map(Self)
            .map_err(|_| CryptoError::Integrity)
    }

    pub fn recipient(&self) -> TenantRecipient {
        TenantRecipient(self.0.to_public())
    }

    /// The standard `AGE-SECRET-KEY-1…` form, for disaster recovery with `rage -d -i`.
    pub fn export(&self) -> secrecy::SecretString {
        self.0.to_string()
    }

    pub(crate) fn inner(&self) -> &age::x25519::Identity {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn generate_unsealed_for_tests() -> Self {
        Self(age::x25519::Identity::generate())
    }
}
