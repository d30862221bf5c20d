//! `callvault user create|list`.

use super::common::{audit, open};
use anyhow::Result;
use callvault_core::{Role, TenantId, Username};
use callvault_crypto::ExposeSecret;
use callvault_service::config::Config;
use callvault_service::provisioning;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum UserCmd {
    /// Create a user; prints a one-time password to change at first sign-in.
    Create {
        username: String,
        /// listener, privacy_officer, auditor or admin
        #[arg(long)]
        role: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    List,
}

pub async fn run(cmd: UserCmd, cfg: &Config) -> Result<ExitCode> {
    let b = open(cfg).await?;
    match cmd {
        UserCmd::Create {
            username,
            role,
            tenant,
        } => {
            let username = Username::parse(&username)?;
            let role = Role::parse(&role)?;
            let tenant = tenant.as_deref().map(TenantId::parse).transpose()?;
            audit(&b, "user.create", username.to_string()).await?;
            let (_, secret) =
                provisioning::create_user(&b.state.meta, username.clone(), role, tenant).await?;
            println!(
                "created {username}; one-time password: {}",
                secret.expose_secret()
            );
        }
        UserCmd::List => {
            for u in b.state.meta.list_users(None).await? {
                let tenant = u
                    .tenant
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{}\t{}\t{}\ttotp={}",
                    u.username,
                    u.role,
                    tenant,
                    u.totp_sealed.is_some()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
