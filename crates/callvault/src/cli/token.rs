//! `callvault token create|list|revoke`: API tokens for recorders and auditors.

use super::common::{ACTOR, audit, open};
use anyhow::{Context, Result};
use callvault_core::{Role, TenantId};
use callvault_crypto::ExposeSecret;
use callvault_service::clock::unix_now;
use callvault_service::config::Config;
use callvault_service::provisioning;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create an API token (recorder or auditor); prints the secret once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
    List,
    Revoke {
        id: String,
    },
}

pub async fn run(cmd: TokenCmd, cfg: &Config) -> Result<ExitCode> {
    let b = open(cfg).await?;
    match cmd {
        TokenCmd::Create {
            name,
            role,
            tenant,
            days,
        } => {
            let role = Role::parse(&role)?;
            let tenant = tenant.as_deref().map(TenantId::parse).transpose()?;
            audit(&b, "token.create", name.clone()).await?;
            let (tok, secret) =
                provisioning::create_token(&b.state.meta, name, role, tenant, days, ACTOR.into())
                    .await?;
            println!("{}\t{}", tok.id, secret.expose_secret());
        }
        TokenCmd::List => {
            for t in b.state.meta.list_tokens(None).await? {
                println!(
                    "{}\t{}\t{}\trevoked={}",
                    t.id,
                    t.name,
                    t.role,
                    t.revoked_at.is_some()
                );
            }
        }
        TokenCmd::Revoke { id } => {
            audit(&b, "token.revoke", id.clone()).await?;
            b.state
                .meta
                .revoke_token(&id, unix_now())
                .await
                .context("revoking")?;
            println!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
