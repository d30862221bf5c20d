//! Command-line verbs. Each admin verb works on the same stores a running server uses and is
//! audited with the actor `operator:cli`.

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use callvault_audit::sink::FileSink;
use callvault_core::{Role, TenantId, Username};
use callvault_crypto::{ExposeSecret, TenantIdentity};
use callvault_server::audit_log::{Event, Verification, checkpoint_now, verify_all};
use callvault_server::clock::Clock;
use callvault_server::clock::unix_now;
use callvault_server::config::Config;
use callvault_server::lifecycle::{export, policy, retention};
use callvault_server::{Bootstrapped, provisioning};
use clap::{Parser, Subcommand};
use ed25519_dalek::VerifyingKey;
use std::io::Write;
use std::path::PathBuf;
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
    Tenant(TenantCmd),
    #[command(subcommand)]
    User(UserCmd),
    #[command(subcommand)]
    Token(TokenCmd),
    #[command(subcommand)]
    Keys(KeysCmd),
    #[command(subcommand)]
    Audit(AuditCmd),
    #[command(subcommand)]
    Policy(PolicyCmd),
    #[command(subcommand)]
    Retention(RetentionCmd),
    #[command(subcommand)]
    Export(ExportCmd),
}

#[derive(Subcommand)]
enum PolicyCmd {
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

#[derive(Subcommand)]
enum RetentionCmd {
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

#[derive(Subcommand)]
enum ExportCmd {
    /// Check a subject access archive's signature. Exits 0 if it is intact and was signed by
    /// the trusted key, 2 if not.
    Verify {
        file: PathBuf,
        /// The deployment's public key (`callvault export public-key`); without it, this
        /// deployment's own key is used.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print the public key that subject access archives are signed with, for recipients.
    PublicKey,
}

#[derive(Subcommand)]
enum TenantCmd {
    /// Create a tenant and its key pair.
    Create {
        id: String,
        #[arg(long)]
        name: String,
    },
    List,
}

#[derive(Subcommand)]
enum UserCmd {
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

#[derive(Subcommand)]
enum TokenCmd {
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

#[derive(Subcommand)]
enum KeysCmd {
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

#[derive(Subcommand)]
enum AuditCmd {
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

fn load(cli: &Cli) -> Result<Config> {
    Ok(Config::load(cli.config.as_deref(), std::env::vars())?)
}

fn print_first_admin(b: &Bootstrapped) {
    if let Some((name, secret)) = &b.first_admin {
        // Printed once to the terminal, never through the logger.
        println!(
            "first admin created: username `{name}`, one-time password `{}`",
            secret.expose_secret()
        );
        println!("sign in and change it now; it is not shown again");
    }
}

async fn cli_audit(b: &Bootstrapped, action: &'static str, target: String) -> Result<()> {
    b.state
        .audit
        .record(Event {
            actor: "operator:cli".into(),
            action,
            target: Some(target),
            result: "ok",
            ..Event::default()
        })
        .await
        .map_err(|e| anyhow!("the audit record could not be written, so nothing was done: {e}"))?;
    Ok(())
}

fn keys(b: &Bootstrapped) -> Result<&callvault_server::keys::Keys> {
    b.state
        .keys
        .as_ref()
        .ok_or_else(|| anyhow!("this needs the master key (mode = full)"))
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    // The probe looks at someone else's deployment: it needs no local config.
    if let Cmd::Probe { url, json } = &cli.cmd {
        return crate::probe::run(url, *json).await;
    }
    // Doctor reports an unsafe configuration as a finding instead of refusing to look at it.
    if let Cmd::Doctor { json } = &cli.cmd {
        let cfg = Config::parse(cli.config.as_deref(), std::env::vars())?;
        return crate::doctor::run(&cfg, *json).await;
    }
    let cfg = load(&cli)?;
    match cli.cmd {
        Cmd::Init => {
            let b = callvault_server::init(&cfg).await?;
            print_first_admin(&b);
            println!("initialised {}", cfg.data_dir.display());
        }
        Cmd::Serve => {
            let b = callvault_server::init(&cfg).await?;
            print_first_admin(&b);
            callvault_server::serve(b, |addr, tls, sip| {
                for (scheme, bound) in [("udp", sip.udp), ("tcp", sip.tcp), ("tls", sip.tls)] {
                    if let Some(bound) = bound {
                        println!("callvault sip listening on {scheme}://{bound}");
                    }
                }
                println!(
                    "callvault listening on {}://{addr}",
                    if tls { "https" } else { "http" }
                );
                let _ = std::io::stdout().flush();
            })
            .await?;
        }
        Cmd::Probe { .. } | Cmd::Doctor { .. } => unreachable!("handled above"),
        Cmd::Tenant(c) => {
            let b = callvault_server::open(&cfg, false).await?;
            match c {
                TenantCmd::Create { id, name } => {
                    let id = TenantId::parse(&id)?;
                    cli_audit(&b, "tenant.create", id.to_string()).await?;
                    let t =
                        provisioning::create_tenant(&b.state.meta, &keys(&b)?.provider, id, name)
                            .await?;
                    println!("created tenant {}", t.id);
                }
                TenantCmd::List => {
                    for t in b.state.meta.list_tenants().await? {
                        println!("{}\t{}", t.id, t.name);
                    }
                }
            }
        }
        Cmd::User(c) => {
            let b = callvault_server::open(&cfg, false).await?;
            match c {
                UserCmd::Create {
                    username,
                    role,
                    tenant,
                } => {
                    let username = Username::parse(&username)?;
                    let role = Role::parse(&role)?;
                    let tenant = tenant.as_deref().map(TenantId::parse).transpose()?;
                    cli_audit(&b, "user.create", username.to_string()).await?;
                    let (_, secret) =
                        provisioning::create_user(&b.state.meta, username.clone(), role, tenant)
                            .await?;
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
        }
        Cmd::Token(c) => {
            let b = callvault_server::open(&cfg, false).await?;
            match c {
                TokenCmd::Create {
                    name,
                    role,
                    tenant,
                    days,
                } => {
                    let role = Role::parse(&role)?;
                    let tenant = tenant.as_deref().map(TenantId::parse).transpose()?;
                    cli_audit(&b, "token.create", name.clone()).await?;
                    let (tok, secret) = provisioning::create_token(
                        &b.state.meta,
                        name,
                        role,
                        tenant,
                        days,
                        "operator:cli".into(),
                    )
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
                    cli_audit(&b, "token.revoke", id.clone()).await?;
                    b.state
                        .meta
                        .revoke_token(&id, unix_now())
                        .await
                        .context("revoking")?;
                    println!("revoked {id}");
                }
            }
        }
        Cmd::Keys(c) => {
            let b = callvault_server::open(&cfg, false).await?;
            let kp = &keys(&b)?.provider;
            match c {
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
                    cli_audit(
                        &b,
                        "keys.export_identity",
                        format!("{tenant}/{}", key.key_id),
                    )
                    .await?;
                    let id = TenantIdentity::open(
                        kp,
                        tenant.as_str(),
                        key.key_id,
                        &key.identity_sealed,
                    )?;
                    println!("{}", id.export().expose_secret());
                }
                KeysCmd::Rotate { tenant } => {
                    let tenant = TenantId::parse(&tenant)?;
                    cli_audit(&b, "tenant.key_rotate", tenant.to_string()).await?;
                    let k = provisioning::rotate_tenant_key(&b.state.meta, kp, &tenant).await?;
                    println!("tenant {tenant} now uses key {k}");
                }
            }
        }
        Cmd::Audit(c) => {
            let b = callvault_server::open(&cfg, false).await?;
            let sink = FileSink::new(cfg.sink_path());
            match c {
                AuditCmd::Verify => {
                    let key = keys(&b)?.audit_verifying;
                    match verify_all(&b.state.meta, key, &sink)
                        .await
                        .map_err(|e| anyhow!(e))?
                    {
                        Verification::Intact(r) => {
                            println!(
                                "audit record intact: {} entries, {} checkpoints, {} sink checkpoints",
                                r.entries, r.checkpoints, r.sink_checkpoints
                            );
                        }
                        Verification::Broken(f) => {
                            println!("AUDIT RECORD BROKEN: {f}");
                            return Ok(ExitCode::from(2));
                        }
                    }
                }
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
                AuditCmd::Export { after } => {
                    let mut after = after;
                    let mut out = std::io::stdout().lock();
                    loop {
                        let page = b.state.meta.audit_range(after, 10_000).await?;
                        let Some(last) = page.last() else { break };
                        after = last.seq;
                        for e in &page {
                            writeln!(out, "{}", serde_json::to_string(e)?)?;
                        }
                    }
                }
            }
        }
        Cmd::Policy(c) => {
            let b = callvault_server::open(&cfg, false).await?;
            let st = &b.state;
            let origin = Event {
                actor: "operator:cli".into(),
                ..Event::default()
            };
            match c {
                PolicyCmd::Recording {
                    tenant,
                    queue,
                    record,
                    parties,
                    class,
                } => {
                    let tenant = TenantId::parse(&tenant)?;
                    st.meta
                        .get_tenant(&tenant)
                        .await
                        .context("no such tenant")?;
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
                    let tenant = TenantId::parse(&tenant)?;
                    st.meta
                        .get_tenant(&tenant)
                        .await
                        .context("no such tenant")?;
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
        }
        Cmd::Retention(RetentionCmd::Run { dry_run, now }) => {
            let b = callvault_server::open(&cfg, false).await?;
            keys(&b)?;
            let clock =
                match now.as_deref() {
                    Some(t) => Clock::Fixed(callvault_server::clock::parse_rfc3339(t).ok_or_else(
                        || anyhow!("`--now` must be an RFC 3339 time, e.g. 2026-11-28T14:05:00Z"),
                    )?),
                    None => Clock::System,
                };
            let r = retention::run(&b.state, "operator:cli", clock.now(), dry_run).await?;
            println!("{}", serde_json::to_string(&r)?);
        }
        Cmd::Export(ExportCmd::PublicKey) => {
            let b = callvault_server::open(&cfg, false).await?;
            println!("{}", B64.encode(keys(&b)?.audit_verifying.as_bytes()));
        }
        Cmd::Export(ExportCmd::Verify { file, public_key }) => {
            let trusted = match public_key {
                Some(k) => {
                    let bytes: [u8; 32] = B64
                        .decode(k.trim())
                        .ok()
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| anyhow!("--public-key must be the base64 of 32 bytes, as `callvault export public-key` prints it"))?;
                    VerifyingKey::from_bytes(&bytes)?
                }
                None => keys(&callvault_server::open(&cfg, false).await?)?.audit_verifying,
            };
            let archive =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            match export::verify(&archive, &trusted) {
                Ok(body) => println!(
                    "intact: signed by {}, {} bytes of content",
                    B64.encode(trusted.as_bytes()),
                    body.len()
                ),
                Err(e) => {
                    println!("NOT VERIFIED: {e}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
