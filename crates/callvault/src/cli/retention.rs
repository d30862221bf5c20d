//! `callvault retention run`: the retention job by hand. `--now` is the only way to judge
//! expiry at another time than the clock's (`Clock::Fixed` is built nowhere else).

use super::common::{ACTOR, keys, open};
use anyhow::{Result, anyhow};
use callvault_lifecycle::retention;
use callvault_service::clock::Clock;
use callvault_service::config::Config;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum RetentionCmd {
    /// Erase every recording whose retention has ended and that no legal hold covers, in
    /// batches of `retention.batch`. Audited as `retention.run` with the counts.
    Run {
        /// Only count what would be erased.
        #[arg(long)]
        dry_run: bool,
        /// Judge expiry as of this time (RFC 3339) instead of now; recorded in the audit entry.
        /// For rehearsals and tests: a time in the future erases early.
        #[arg(long)]
        now: Option<String>,
    },
}

pub async fn run(cmd: RetentionCmd, cfg: &Config) -> Result<ExitCode> {
    let RetentionCmd::Run { dry_run, now } = cmd;
    let b = open(cfg).await?;
    keys(&b)?;
    let clock = match now.as_deref() {
        Some(t) => Clock::Fixed(callvault_service::clock::parse_rfc3339(t).ok_or_else(|| {
            anyhow!("`--now` must be an RFC 3339 time, e.g. 2026-11-28T14:05:00Z")
        })?),
        None => Clock::System,
    };
    let r = retention::run(&b.state, ACTOR, clock.now(), dry_run).await?;
    println!("{}", serde_json::to_string(&r)?);
    Ok(ExitCode::SUCCESS)
}
