//! `callvault audit verify|checkpoint|export`: the audit record checked, signed and read out.
//! `verify` exits 2 when the record is broken.

use super::common::{keys, open};
use anyhow::{Result, anyhow};
use callvault_audit::sink::FileSink;
use callvault_server::Bootstrapped;
use callvault_service::audit_log::{Verification, checkpoint_now, verify_all};
use callvault_service::config::Config;
use clap::Subcommand;
use std::io::Write;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Verify the hash chain, the signed checkpoints and the external sink.
    Verify,
    /// Sign a checkpoint of the current head now.
    Checkpoint,
    /// Print entries as JSON lines.
    Export {
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
}

pub async fn run(cmd: AuditCmd, cfg: &Config) -> Result<ExitCode> {
    let b = open(cfg).await?;
    let sink = FileSink::new(cfg.sink_path());
    match cmd {
        AuditCmd::Verify => return verify(&b, &sink).await,
        AuditCmd::Checkpoint => {
            let sk = b
                .signing_key
                .as_ref()
                .ok_or_else(|| anyhow!("this needs the master key"))?;
            match checkpoint_now(&b.state.meta, sk, &sink)
                .await
                .map_err(|e| anyhow!(e))?
            {
                Some(cp) => println!("signed checkpoint at entry {}", cp.seq),
                None => println!("nothing new to sign"),
            }
        }
        AuditCmd::Export { after } => export(&b, after).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify(b: &Bootstrapped, sink: &FileSink) -> Result<ExitCode> {
    let key = keys(b)?.audit_verifying;
    match verify_all(&b.state.meta, key, sink)
        .await
        .map_err(|e| anyhow!(e))?
    {
        Verification::Intact(r) => {
            println!(
                "audit record intact: {} entries, {} checkpoints, {} sink checkpoints",
                r.entries, r.checkpoints, r.sink_checkpoints
            );
            Ok(ExitCode::SUCCESS)
        }
        Verification::Broken(f) => {
            println!("AUDIT RECORD BROKEN: {f}");
            Ok(ExitCode::from(2))
        }
    }
}

/// Every entry after `after`, a page at a time, as JSON lines on stdout.
async fn export(b: &Bootstrapped, mut after: u64) -> Result<()> {
    let mut out = std::io::stdout().lock();
    loop {
        let page = b.state.meta.audit_range(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            writeln!(out, "{}", serde_json::to_string(e)?)?;
        }
    }
    Ok(())
}
