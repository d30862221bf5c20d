//! What the admin verbs share: opening the deployment, auditing as `operator:cli`, and
//! requiring the master key. The server's domain errors reach the operator whole, cause and
//! all, through `anyhow` (`main` prints the chain): the terminal is the CLI's log.

use anyhow::{Result, anyhow};
use callvault_server::{BootError, Bootstrapped};
use callvault_service::audit_log::Event;
use callvault_service::config::Config;
use callvault_service::keys::Keys;

/// The actor every CLI audit entry names.
pub const ACTOR: &str = "operator:cli";

/// Opens an initialised deployment without creating the first admin (only `init`/`serve` do).
pub async fn open(cfg: &Config) -> Result<Bootstrapped, BootError> {
    callvault_server::open(cfg, false).await
}

/// Records `action` on `target` before the verb acts: no audit entry, nothing done.
pub async fn audit(b: &Bootstrapped, action: &'static str, target: String) -> Result<()> {
    b.state
        .audit
        .record(Event {
            actor: ACTOR.into(),
            action,
            target: Some(target),
            result: "ok",
            ..Event::default()
        })
        .await
        .map_err(|e| anyhow!("the audit record could not be written, so nothing was done: {e}"))?;
    Ok(())
}

/// The opened master key's material, or why this node cannot do what was asked.
pub fn keys(b: &Bootstrapped) -> Result<&Keys> {
    b.state
        .keys
        .as_ref()
        .ok_or_else(|| anyhow!("this needs the master key (mode = full)"))
}
