//! `callvault retention run`: the retention job by hand. `--now` is the only way to judge
//! expiry at another time than the clock's (`Clock::Fixed` is built nowhere else).

use super::common::{ACTOR, keys, open, server_error, server_error_with_detail};
use anyhow::Result;
use callvault_server::clock::Clock;
use callvault_server::config::Config;
use callvault_server::lifecycle::retention;
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
        Some(t) => {
            Clock::Fixed(callvault_server::api::parse_rfc3339("--now", t).map_err(server_error)?)
        }
        None => Clock::System,
    };
    let r = retention::run(&b.state, ACTOR, clock.now(), dry_run)
        .await
        .map_err(server_error_with_detail)?;
    println!("{}", serde_json::to_string(&r)?);
    Ok(ExitCode::SUCCESS)
}
