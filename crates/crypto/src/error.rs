use std::path::PathBuf;

/// Errors of the key hierarchy. Every failure of authenticated decryption collapses into
/// `Integrity`, which says nothing about which key or byte was wrong: an attacker probing
/// ciphertexts learns only "no".
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "integrity check failed: the data was altered, truncated, or encrypted under another key"
    )]
    Integrity,
    #[error("master key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("the master key file is sealed with a passphrase: set CALLVAULT_MASTER_PASSPHRASE")]
    PassphraseRequired,
    #[error("wrong passphrase for the master key file")]
    WrongPassphrase,
    #[error("invalid age recipient (public key): {0}")]
    BadRecipient(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
