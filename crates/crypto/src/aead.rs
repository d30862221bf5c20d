//! The one sealing construction callvault uses for small values under a symmetric key:
//! `0x01 || nonce(24) || XChaCha20-Poly1305(key, nonce, plaintext, aad)`, the tag at the end.
//! Used under the master key (`master.rs`) and under a live call's journal key (`journal.rs`);
//! the associated data names what the value is for, so one can never stand in for another.

use crate::CryptoError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};

/// Version byte in front of everything sealed.
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;
/// Bytes a sealed value adds to its plaintext: version, nonce, tag.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + 16;

pub(crate) fn seal_with(
    key: &SecretBox<[u8; 32]>,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = XChaCha20Poly1305::new(key.expose_secret().into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Integrity)?;
    let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
    out.push(SEALED_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

pub(crate) fn open_with(
    key: &SecretBox<[u8; 32]>,
    aad: &[u8],
    sealed: &[u8],
) -> Result<SecretBox<Vec<u8>>, CryptoError> {
    let (&version, rest) = sealed.split_first().ok_or(CryptoError::Integrity)?;
    if version != SEALED_V1 || rest.len() < NONCE_LEN {
        return Err(CryptoError::Integrity);
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.expose_secret().into());
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .map(|pt| SecretBox::new(Box::new(pt)))
        .map_err(|_| CryptoError::Integrity)
}
