//! `callvault tenant create|list`.

use super::common::{audit, keys, open};
use anyhow::Result;
use callvault_core::TenantId;
use callvault_service::config::Config;
use callvault_service::provisioning;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum TenantCmd {
    /// Create a tenant and its key pair.
    Create {
        id: String,
        #[arg(long)]
        name: String,
    },
    List,
}

pub async fn run(cmd: TenantCmd, cfg: &Config) -> Result<ExitCode> {
    let b = open(cfg).await?;
    match cmd {
        TenantCmd::Create { id, name } => {
            let id = TenantId::parse(&id)?;
            audit(&b, "tenant.create", id.to_string()).await?;
            let t =
                provisioning::create_tenant(&b.state.meta, &keys(&b)?.provider, id, name).await?;
            println!("created tenant {}", t.id);
        }
        TenantCmd::List => {
            for t in b.state.meta.list_tenants().await? {
                println!("{}\t{}", t.id, t.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
