//! `callvault policy recording|retention`: what a tenant records and how long it keeps it.

use super::common::{ACTOR, open};
use anyhow::{Context, Result};
use callvault_core::TenantId;
use callvault_lifecycle::policy;
use callvault_server::Bootstrapped;
use callvault_service::audit_log::Event;
use callvault_service::clock::unix_now;
use callvault_service::config::Config;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Set what a tenant records on one queue, or by default. A tenant without a policy refuses
    /// every call. Audited as `policy.recording.set`.
    Recording {
        #[arg(long)]
        tenant: String,
        /// The queue; omit for the tenant's default.
        #[arg(long)]
        queue: Option<String>,
        /// Record calls on this queue at all.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        record: bool,
        /// both, caller or agent
        #[arg(long, default_value = "both")]
        parties: String,
        /// The retention class recordings get.
        #[arg(long)]
        class: String,
    },
    /// Keep a tenant's recordings (all, one queue's or one class's) DAYS days after they
    /// started; the longest matching rule wins. Audited as `policy.retention.set`.
    Retention {
        #[arg(long)]
        tenant: String,
        /// tenant, queue or class
        #[arg(long)]
        scope: String,
        /// The queue or class (not for scope tenant).
        #[arg(long)]
        value: Option<String>,
        #[arg(long)]
        days: i64,
    },
}

pub async fn run(cmd: PolicyCmd, cfg: &Config) -> Result<ExitCode> {
    let b = open(cfg).await?;
    let st = &b.state;
    let origin = Event {
        actor: ACTOR.into(),
        ..Event::default()
    };
    match cmd {
        PolicyCmd::Recording {
            tenant,
            queue,
            record,
            parties,
            class,
        } => {
            let tenant = existing_tenant(&b, &tenant).await?;
            let p = policy::checked_policy(tenant, queue, record, parties, class)?;
            let p = policy::set_policy(st, &origin, p, unix_now()).await?;
            println!(
                "tenant {} queue {:?}: record={} class={}",
                p.tenant, p.queue, p.record, p.retention_class
            );
        }
        PolicyCmd::Retention {
            tenant,
            scope,
            value,
            days,
        } => {
            let tenant = existing_tenant(&b, &tenant).await?;
            let r = policy::checked_rule(tenant, &scope, value, days)?;
            let r = policy::set_rule(st, &origin, r, unix_now()).await?;
            println!(
                "tenant {} {} {:?}: {} days",
                r.tenant,
                r.scope.as_str(),
                r.value,
                r.days
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn existing_tenant(b: &Bootstrapped, tenant: &str) -> Result<TenantId> {
    let tenant = TenantId::parse(tenant)?;
    b.state
        .meta
        .get_tenant(&tenant)
        .await
        .context("no such tenant")?;
    Ok(tenant)
}
