//! `callvault export verify|public-key`: subject access archives checked against the
//! deployment's signing key. `verify` exits 2 when an archive is not intact or not ours.

use super::common::{keys, open};
use anyhow::{Context, Result, anyhow};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use callvault_lifecycle::export;
use callvault_service::config::Config;
use clap::Subcommand;
use ed25519_dalek::VerifyingKey;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ExportCmd {
    /// Check a subject access archive's signature. Exits 0 if it is intact and was signed by
    /// the trusted key, 2 if not.
    Verify {
        file: PathBuf,
        /// The deployment's public key (`callvault export public-key`); without it, this
        /// deployment's own key is used.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print the public key that subject access archives are signed with, for recipients.
    PublicKey,
}

pub async fn run(cmd: ExportCmd, cfg: &Config) -> Result<ExitCode> {
    match cmd {
        ExportCmd::PublicKey => {
            let b = open(cfg).await?;
            println!("{}", B64.encode(keys(&b)?.audit_verifying.as_bytes()));
            Ok(ExitCode::SUCCESS)
        }
        ExportCmd::Verify { file, public_key } => {
            let trusted = match public_key {
                Some(k) => parse_public_key(&k)?,
                None => keys(&open(cfg).await?)?.audit_verifying,
            };
            verify(&file, &trusted)
        }
    }
}

fn parse_public_key(k: &str) -> Result<VerifyingKey> {
    let bytes: [u8; 32] = B64
        .decode(k.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            anyhow!(
                "--public-key must be the base64 of 32 bytes, as `callvault export public-key` prints it"
            )
        })?;
    Ok(VerifyingKey::from_bytes(&bytes)?)
}

fn verify(file: &Path, trusted: &VerifyingKey) -> Result<ExitCode> {
    let archive = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    match export::verify(&archive, trusted) {
        Ok(body) => {
            println!(
                "intact: signed by {}, {} bytes of content",
                B64.encode(trusted.as_bytes()),
                body.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("NOT VERIFIED: {e}");
            Ok(ExitCode::from(2))
        }
    }
}
