//! Command-line verbs: the clap definitions of the top level and the dispatcher; each verb
//! lives in its own module. Each admin verb works on the same stores a running server uses and
//! is audited with the actor `operator:cli`.

mod audit;
mod common;
mod doctor;
mod export;
mod keys;
mod policy;
mod probe;
mod retention;
mod serve;
mod tenant;
mod token;
mod user;

use anyhow::Result;
use callvault_service::config::Config;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// callvault — the recording store sensitive hotlines can trust.
///
/// Configuration comes from `--config FILE` (or $CALLVAULT_CONFIG), then CALLVAULT_… variables,
/// e.g. CALLVAULT_SERVER__LISTEN=127.0.0.1:8443. With no config at all, callvault runs the
/// embedded default: ./callvault-data (SQLite + local blobs), master key ./callvault-master.key,
/// HTTPS on 127.0.0.1:8443 with a self-signed certificate.
#[derive(Parser)]
#[command(name = "callvault", version)]
pub struct Cli {
    /// TOML config file.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the data directory, master key, TLS certificate and the first admin.
    Init,
    /// Run the server (initialising on first start).
    Serve,
    /// Check this deployment for unsafe settings; exits non-zero on a critical finding.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Look at a deployment from outside, without credentials, as a scanner would; exits 1 if
    /// anything is exposed.
    Probe {
        /// e.g. https://callvault.example.org:8443
        url: String,
        #[arg(long)]
        json: bool,
    },
    #[command(subcommand)]
    Tenant(tenant::TenantCmd),
    #[command(subcommand)]
    User(user::UserCmd),
    #[command(subcommand)]
    Token(token::TokenCmd),
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    #[command(subcommand)]
    Policy(policy::PolicyCmd),
    #[command(subcommand)]
    Retention(retention::RetentionCmd),
    #[command(subcommand)]
    Export(export::ExportCmd),
}

/// The validated config: what every verb but `probe` and `doctor` starts from.
fn load(file: Option<&Path>) -> Result<Config> {
    Ok(Config::load(file, std::env::vars())?)
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let file = cli.config.as_deref();
    match cli.cmd {
        // The probe looks at someone else's deployment: it needs no local config.
        Cmd::Probe { url, json } => probe::run(&url, json).await,
        // Doctor reports an unsafe configuration as a finding instead of refusing to look at it.
        Cmd::Doctor { json } => doctor::run(&Config::parse(file, std::env::vars())?, json).await,
        Cmd::Init => serve::init(&load(file)?).await,
        Cmd::Serve => serve::serve(&load(file)?).await,
        Cmd::Tenant(c) => tenant::run(c, &load(file)?).await,
        Cmd::User(c) => user::run(c, &load(file)?).await,
        Cmd::Token(c) => token::run(c, &load(file)?).await,
        Cmd::Keys(c) => keys::run(c, &load(file)?).await,
        Cmd::Audit(c) => audit::run(c, &load(file)?).await,
        Cmd::Policy(c) => policy::run(c, &load(file)?).await,
        Cmd::Retention(c) => retention::run(c, &load(file)?).await,
        Cmd::Export(c) => export::run(c, &load(file)?).await,
    }
}
