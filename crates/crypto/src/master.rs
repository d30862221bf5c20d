//! The master key and the one extension point for where it lives (`KeyProvider`).
//!
//! Everything sealed under the master key goes through [`KeyProvider::seal`] with a
//! [`SealContext`] that is bound as AEAD associated data, so a sealed tenant identity cannot be
//! swapped in as another tenant's, or as the audit signing key.

use crate::CryptoError;
use crate::aead::{open_with, seal_with};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

const PLAIN_MAGIC: &str = "callvault-master-key-v1";
const SEALED_MAGIC: &str = "callvault-master-key-v1-argon2id";
/// argon2id parameters for the passphrase (RFC 9106 second recommendation, 64 MiB).
const KDF_M_KIB: u32 = 65536;
const KDF_T: u32 = 3;
const KDF_P: u32 = 1;

/// What a sealed value is for, bound into its authentication tag.
#[derive(Debug, Clone)]
pub struct SealContext(String);

impl SealContext {
    pub fn tenant_identity(tenant: &str, key_id: i64) -> Self {
        Self(format!("callvault/tenant-identity/v1/{tenant}/{key_id}"))
    }
    pub fn caller_hash_key(tenant: &str) -> Self {
        Self(format!("callvault/caller-hash-key/v1/{tenant}"))
    }
    pub fn audit_signing_key() -> Self {
        Self("callvault/audit-signing-key/v1".into())
    }
    pub fn totp_secret(user_id: &str) -> Self {
        Self(format!("callvault/totp-secret/v1/{user_id}"))
    }
}

/// The private extension point. A KMS or HSM provider implements `seal`/`open` with its own
/// encrypt/decrypt calls and passes the context as its encryption context.
trait Provider: Send + Sync {
    fn seal(&self, ctx: &SealContext, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError>;
    fn open(&self, ctx: &SealContext, sealed: &[u8]) -> Result<SecretBox<Vec<u8>>, CryptoError>;
}

/// Handle to the master key, wherever it lives.
#[derive(Clone)]
pub struct KeyProvider(Arc<dyn Provider>);

impl std::fmt::Debug for KeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyProvider(..)")
    }
}

impl KeyProvider {
    /// Loads the master key from a key file. The file must be a regular file readable by its
    /// owner only (0600 or 0400); anything looser is refused rather than used.
    pub fn from_file(path: &Path, passphrase: Option<&SecretString>) -> Result<Self, CryptoError> {
        let err = |reason: String| CryptoError::KeyFile {
            path: path.to_owned(),
            reason,
        };
        let meta = fs::metadata(path).map_err(|e| err(format!("cannot read it: {e}")))?;
        if !meta.is_file() {
            return Err(err("not a regular file".into()));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "permissions are {mode:04o}; it must be readable by its owner only: chmod 600 {}",
                path.display()
            )));
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
        let mut lines = text.lines();
        let key = match lines.next() {
            Some(PLAIN_MAGIC) => {
                decode_key(lines.next()).ok_or_else(|| err("malformed key line".into()))?
            }
            Some(SEALED_MAGIC) => {
                let pass = passphrase.ok_or(CryptoError::PassphraseRequired)?;
                let salt = lines.next().and_then(|l| B64.decode(l).ok());
                let sealed = lines.next().and_then(|l| B64.decode(l).ok());
                let (Some(salt), Some(sealed)) = (salt, sealed) else {
                    return Err(err("malformed sealed key file".into()));
                };
                let kek = passphrase_key(pass, &salt)?;
                let opened = open_with(&kek, PLAIN_MAGIC.as_bytes(), &sealed)
                    .map_err(|_| CryptoError::WrongPassphrase)?;
                let bytes = opened.expose_secret();
                <[u8; 32]>::try_from(bytes.as_slice())
                    .map(|k| SecretBox::new(Box::new(k)))
                    .map_err(|_| err("sealed key has the wrong length".into()))?
            }
            _ => {
                return Err(err(format!(
                    "not a callvault master key file (expected first line {PLAIN_MAGIC})"
                )));
            }
        };
        Ok(Self(Arc::new(FileProvider { key })))
    }

    pub fn seal(&self, ctx: &SealContext, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0.seal(ctx, plaintext)
    }

    pub fn open(
        &self,
        ctx: &SealContext,
        sealed: &[u8],
    ) -> Result<SecretBox<Vec<u8>>, CryptoError> {
        self.0.open(ctx, sealed)
    }
}

fn decode_key(line: Option<&str>) -> Option<SecretBox<[u8; 32]>> {
    let bytes = Zeroizing::new(B64.decode(line?.trim()).ok()?);
    let key = <[u8; 32]>::try_from(bytes.as_slice()).ok()?;
    Some(SecretBox::new(Box::new(key)))
}

fn passphrase_key(pass: &SecretString, salt: &[u8]) -> Result<SecretBox<[u8; 32]>, CryptoError> {
    let params =
        Params::new(KDF_M_KIB, KDF_T, KDF_P, Some(32)).map_err(|_| CryptoError::Integrity)?;
    let mut out = Box::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(pass.expose_secret().as_bytes(), salt, out.as_mut())
        .map_err(|_| CryptoError::Integrity)?;
    Ok(SecretBox::new(out))
}

struct FileProvider {
    key: SecretBox<[u8; 32]>,
}

impl Provider for FileProvider {
    fn seal(&self, ctx: &SealContext, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.key, ctx.0.as_bytes(), plaintext)
    }
    fn open(&self, ctx: &SealContext, sealed: &[u8]) -> Result<SecretBox<Vec<u8>>, CryptoError> {
        open_with(&self.key, ctx.0.as_bytes(), sealed)
    }
}

/// Creates a new master key file with mode 0600; never overwrites an existing file.
pub fn generate_key_file(
    path: &Path,
    passphrase: Option<&SecretString>,
) -> Result<(), CryptoError> {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    let body = Zeroizing::new(match passphrase {
        None => format!("{PLAIN_MAGIC}\n{}\n", B64.encode(key.as_ref())),
        Some(pass) => {
            let mut salt = [0u8; 16];
            rand::rngs::OsRng.fill_bytes(&mut salt);
            let kek = passphrase_key(pass, &salt)?;
            let sealed = seal_with(&kek, PLAIN_MAGIC.as_bytes(), key.as_ref())?;
            format!(
                "{SEALED_MAGIC}\n{}\n{}\n",
                B64.encode(salt),
                B64.encode(sealed)
            )
        }
    });
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CryptoError::KeyFile {
            path: path.to_owned(),
            reason: format!("cannot create it: {e}"),
        })?;
    f.write_all(body.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(dir: &Path, pass: Option<&SecretString>) -> KeyProvider {
        let path = dir.join("master.key");
        generate_key_file(&path, pass).unwrap();
        KeyProvider::from_file(&path, pass).unwrap()
    }

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let dir = tempfile::tempdir().unwrap();
        let kp = provider(dir.path(), None);
        let ctx = SealContext::tenant_identity("t1", 1);
        let sealed = kp.seal(&ctx, b"secret").unwrap();
        assert_eq!(
            kp.open(&ctx, &sealed).unwrap().expose_secret().as_slice(),
            b"secret"
        );
        let other = SealContext::tenant_identity("t2", 1);
        assert!(matches!(
            kp.open(&other, &sealed),
            Err(CryptoError::Integrity)
        ));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            kp.open(&ctx, &flipped),
            Err(CryptoError::Integrity)
        ));
    }

    #[test]
    fn passphrase_sealed_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let pass = SecretString::from("correct horse battery staple");
        let kp = provider(dir.path(), Some(&pass));
        let path = dir.path().join("master.key");
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(SEALED_MAGIC));
        let sealed = kp.seal(&SealContext::audit_signing_key(), b"k").unwrap();
        let again = KeyProvider::from_file(&path, Some(&pass)).unwrap();
        assert!(
            again
                .open(&SealContext::audit_signing_key(), &sealed)
                .is_ok()
        );
        assert!(matches!(
            KeyProvider::from_file(&path, None),
            Err(CryptoError::PassphraseRequired)
        ));
        let wrong = SecretString::from("wrong");
        assert!(matches!(
            KeyProvider::from_file(&path, Some(&wrong)),
            Err(CryptoError::WrongPassphrase)
        ));
    }

    #[test]
    fn refuses_loose_permissions_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        generate_key_file(&path, None).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(generate_key_file(&path, None).is_err());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = KeyProvider::from_file(&path, None).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }
}
