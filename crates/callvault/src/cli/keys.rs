//! `callvault keys export-identity|rotate`: a tenant's key pair, taken out for disaster recovery
//! or replaced.

use super::common::{audit, keys, open};
use anyhow::{Result, bail};
use callvault_core::TenantId;
use callvault_crypto::{ExposeSecret, TenantIdentity};
use callvault_service::config::Config;
use callvault_service::provisioning;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum KeysCmd {
    /// Disaster recovery: print a tenant's age identity (AGE-SECRET-KEY-1…). Audited.
    ///
    /// With it, `rage -d -i identity.txt` decrypts header||payload of any recording of that
    /// tenant (docs/FORMAT.md). Store the output as you would the master key.
    ExportIdentity {
        #[arg(long)]
        tenant: String,
        /// Key generation; default: the active one.
        #[arg(long)]
        key_id: Option<i64>,
        /// Required: you confirm that you are taking the tenant's private key out of the vault.
        #[arg(long)]
        confirm: bool,
    },
    /// New key pair for a tenant; new recordings use it.
    Rotate {
        #[arg(long)]
        tenant: String,
    },
}

pub async fn run(cmd: KeysCmd, cfg: &Config) -> Result<ExitCode> {
    let b = open(cfg).await?;
    let kp = &keys(&b)?.provider;
    match cmd {
        KeysCmd::ExportIdentity {
            tenant,
            key_id,
            confirm,
        } => {
            if !confirm {
                bail!(
                    "exporting a tenant's private key takes it out of the vault: run again with --confirm"
                );
            }
            let tenant = TenantId::parse(&tenant)?;
            let key = match key_id {
                Some(k) => b.state.meta.get_key(&tenant, k).await?,
                None => b.state.meta.active_key(&tenant).await?,
            };
            audit(
                &b,
                "keys.export_identity",
                format!("{tenant}/{}", key.key_id),
            )
            .await?;
            let id = TenantIdentity::open(kp, tenant.as_str(), key.key_id, &key.identity_sealed)?;
            println!("{}", id.export().expose_secret());
        }
        KeysCmd::Rotate { tenant } => {
            let tenant = TenantId::parse(&tenant)?;
            audit(&b, "tenant.key_rotate", tenant.to_string()).await?;
            let k = provisioning::rotate_tenant_key(&b.state.meta, kp, &tenant).await?;
            println!("tenant {tenant} now uses key {k}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
