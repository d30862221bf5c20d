//! Posture: what makes this deployment unsafe, found by the same checks wherever they run —
//! `callvault doctor`, at `serve` start (a critical finding refuses to start), periodically in
//! the server (metrics `callvault_posture_findings{severity}`, an audit entry when the findings
//! change) and on demand for admins (`GET /api/v1/posture`).

pub mod certificate;
mod freshness;

pub use callvault_service::posture::{Finding, Severity, counts};

use crate::clock::unix_now;
use crate::config::{Config, ConfigError, MetadataBackend, Mode};
use callvault_store::MetadataStore;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(p: &Path) -> Option<u32> {
    std::fs::metadata(p)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

/// Checks of configuration and files: what `serve` can see before it opens anything.
pub fn static_checks(cfg: &Config) -> Vec<Finding> {
    let mut f = Vec::new();
    // The rules `Config::load` enforces, reported rather than refused (doctor looks at any config).
    if let Err(ConfigError::Unsafe { id, message }) = cfg.validate() {
        f.push(Finding {
            id,
            severity: Severity::Critical,
            explanation: message,
            fix: "change the configuration as the explanation says; `serve` refuses to start until then".into(),
        });
    }
    if cfg.server.metrics_public() {
        f.push(Finding {
            id: "metrics_unauthenticated",
            severity: Severity::High,
            explanation: "/metrics answers without credentials (server.insecure_test_public_metrics, a test-only switch): anyone who reaches the port learns recording counts and posture findings".into(),
            fix: "remove server.insecure_test_public_metrics; give Prometheus a token (docs/operations.md)".into(),
        });
    }
    let now = unix_now();
    if !cfg.server.insecure_plaintext {
        let (cert, _) = cfg.tls_paths();
        let shown = cert.display().to_string();
        f.extend(certificate::validity(&cert).and_then(|v| certificate::judge(&shown, v, now)));
    }
    f.extend(freshness::software_age(
        freshness::source_epoch(),
        now,
        cfg.posture.max_software_age_days,
    ));
    f.extend(file_modes(cfg));
    if cfg.tls.cert.is_none()
        && !cfg.server.insecure_plaintext
        && !cfg.server.listen.ip().is_loopback()
    {
        f.push(Finding {
            id: "tls_self_signed",
            severity: Severity::High,
            explanation: format!(
                "{} is reachable beyond loopback with the self-signed certificate from `callvault init`: clients cannot authenticate the server",
                cfg.server.listen
            ),
            fix: "set tls.cert and tls.key to a certificate from your CA".into(),
        });
    }
    if cfg.server.insecure_plaintext {
        f.push(Finding {
            id: "insecure_plaintext",
            severity: Severity::Medium,
            explanation:
                "server.insecure_plaintext is on: traffic on the loopback listener is not encrypted"
                    .into(),
            fix: "remove server.insecure_plaintext unless a local TLS proxy fronts callvault"
                .into(),
        });
    }
    if cfg.audit.sink_file.is_none() {
        f.push(Finding {
            id: "audit_sink_default",
            severity: Severity::Low,
            explanation: "the external audit sink is the default file next to the data directory"
                .into(),
            fix: "set audit.sink_file to a file on another mount or host".into(),
        });
    }
    f.extend(postgres_transport(cfg));
    if std::env::var(crate::config::ENV_LOG)
        .is_ok_and(|v| v.contains("debug") || v.contains("trace"))
    {
        f.push(Finding {
            id: "debug_logging",
            severity: Severity::Low,
            explanation:
                "debug logging is on: logs grow fast and carry more detail than operations need"
                    .into(),
            fix: "unset CALLVAULT_LOG or set it to info".into(),
        });
    }
    f
}

/// The modes of the secret files and the data directory: none may be readable by others.
fn file_modes(cfg: &Config) -> Vec<Finding> {
    let mut f = Vec::new();
    let key = &cfg.keys.master_key_file;
    match mode(key) {
        None if cfg.mode == Mode::Full => f.push(Finding {
            id: "master_key_missing",
            severity: Severity::Critical,
            explanation: format!("the master key file {} does not exist", key.display()),
            fix: "run `callvault init`, or point keys.master_key_file at the key".into(),
        }),
        Some(m) if m & 0o077 != 0 => f.push(Finding {
            id: "master_key_permissions",
            severity: Severity::Critical,
            explanation: format!(
                "the master key file {} has mode {m:04o}: other users can read it",
                key.display()
            ),
            fix: format!("chmod 600 {}", key.display()),
        }),
        _ => {}
    }
    if let Some(m) = mode(&cfg.data_dir).filter(|m| m & 0o077 != 0) {
        f.push(Finding {
            id: "data_dir_permissions",
            severity: Severity::High,
            explanation: format!(
                "the data directory {} has mode {m:04o}",
                cfg.data_dir.display()
            ),
            fix: format!("chmod 700 {}", cfg.data_dir.display()),
        });
    }
    let (_, tls_key) = cfg.tls_paths();
    if let Some(m) = mode(&tls_key).filter(|m| m & 0o077 != 0) {
        f.push(Finding {
            id: "tls_key_permissions",
            severity: Severity::High,
            explanation: format!("the TLS key {} has mode {m:04o}", tls_key.display()),
            fix: format!("chmod 600 {}", tls_key.display()),
        });
    }
    f
}

/// How this node reaches PostgreSQL, judged with the parser the store connects with.
fn postgres_transport(cfg: &Config) -> Option<Finding> {
    use callvault_store::PostgresSslMode;
    use secrecy::ExposeSecret;
    let (MetadataBackend::Postgres, Some(url)) = (cfg.metadata.backend, &cfg.metadata.url) else {
        return None;
    };
    // A URL the store cannot parse is refused when the store opens; nothing to judge here.
    match callvault_store::postgres_transport(url.expose_secret()) {
        Ok(t) if t.mode == PostgresSslMode::Disable && !t.local => Some(Finding {
            id: "postgres_without_tls",
            severity: Severity::High,
            explanation: format!("PostgreSQL at {} is reached without TLS: metadata, sealed keys and the audit record cross the network in clear", t.destinations.join(",")),
            fix: "use sslmode=verify-full with sslrootcert in metadata.url".into(),
        }),
        Ok(t) if t.mode == PostgresSslMode::Require => Some(Finding {
            id: "postgres_tls_unverified",
            severity: Severity::Medium,
            explanation: "PostgreSQL TLS is not verified (sslmode=require): a machine in the middle can pose as the database".into(),
            fix: "use sslmode=verify-full with sslrootcert in metadata.url".into(),
        }),
        _ => None,
    }
}

/// Checks of what is stored: accounts, tokens, the audit chain's last verification.
pub async fn live_checks(
    cfg: &Config,
    meta: &MetadataStore,
    now: i64,
) -> Result<Vec<Finding>, callvault_store::StoreError> {
    let mut f = Vec::new();
    let last = crate::audit_log::last_verification(meta).await?;
    let first_entry = meta.audit_range(0, 1).await?;
    let since = first_entry.first().map(|e| e.entry.time.unix_timestamp());
    f.extend(freshness::audit_verification(
        last.as_ref(),
        since,
        now,
        cfg.audit.verify_interval_secs,
    ));
    let users = meta.list_users(None).await?;
    let without: Vec<_> = users
        .iter()
        .filter(|u| !u.disabled && u.totp_sealed.is_none())
        .collect();
    if !without.is_empty() {
        let overdue = without
            .iter()
            .filter(|u| now - u.created_at > 7 * 86_400)
            .count();
        f.push(Finding {
            id: "users_without_totp",
            severity: if overdue > 0 { Severity::High } else { Severity::Medium },
            explanation: format!(
                "{} account(s) have no second factor yet ({overdue} created more than 7 days ago); they cannot use callvault until they enrol, but their one-time passwords are still valid",
                without.len()
            ),
            fix: "have the users sign in and enrol an authenticator, or disable the accounts (DELETE /api/v1/users/{id})".into(),
        });
    }
    let tokens = meta.list_tokens(None).await?;
    let stale = tokens
        .iter()
        .filter(|t| t.revoked_at.is_none() && t.expires_at <= now)
        .count();
    if stale > 0 {
        f.push(Finding {
            id: "stale_tokens",
            severity: Severity::Low,
            explanation: format!("{stale} API token(s) have expired but were never revoked"),
            fix: "revoke them (DELETE /api/v1/tokens/{id}) so the list shows only live credentials"
                .into(),
        });
    }
    let long = tokens
        .iter()
        .filter(|t| t.revoked_at.is_none() && t.expires_at - t.created_at > 366 * 86_400)
        .count();
    if long > 0 {
        f.push(Finding {
            id: "long_lived_tokens",
            severity: Severity::Medium,
            explanation: format!("{long} API token(s) live longer than a year"),
            fix: "issue tokens for at most a year and rotate them".into(),
        });
    }
    f.extend(callvault_lifecycle::posture::checks(meta, now).await?);
    Ok(f)
}

/// Everything: configuration, files and stored state.
pub async fn all(st: &crate::state::AppState) -> Result<Vec<Finding>, callvault_store::StoreError> {
    let mut f = static_checks(&st.cfg);
    f.extend(live_checks(&st.cfg, &st.meta, crate::clock::unix_now()).await?);
    f.sort_by_key(|x| std::cmp::Reverse(x.severity));
    Ok(f)
}

/// Re-checks every `posture.interval_secs`; keeps the result for metrics and records in the
/// audit record whenever the set of findings changes.
pub fn start_periodic(st: crate::state::AppState) {
    let every = std::time::Duration::from_secs(st.cfg.posture.interval_secs);
    tokio::spawn(async move {
        let mut last: Option<Vec<&'static str>> = None;
        loop {
            match all(&st).await {
                Ok(found) => {
                    let ids: Vec<&'static str> = found.iter().map(|f| f.id).collect();
                    if last.as_ref() != Some(&ids) {
                        let ev = crate::audit_log::Event {
                            actor: "system".into(),
                            action: "posture.change",
                            result: "ok",
                            details: Some(serde_json::json!({
                                "findings": found.iter().map(|f| serde_json::json!({ "id": f.id, "severity": f.severity })).collect::<Vec<_>>()
                            })),
                            ..Default::default()
                        };
                        if let Err(e) = st.audit.record(ev).await {
                            tracing::error!(error = %e, "could not record a posture change");
                        } else {
                            last = Some(ids);
                        }
                    }
                    for f in found.iter().filter(|f| f.severity >= Severity::High) {
                        tracing::warn!(
                            id = f.id,
                            severity = f.severity.as_str(),
                            "posture finding: {}",
                            f.explanation
                        );
                    }
                    if let Ok(mut p) = st.posture.lock() {
                        *p = found;
                    }
                }
                Err(e) => tracing::error!(error = %e, "posture check failed"),
            }
            tokio::time::sleep(every).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_db(url: &str) -> Vec<&'static str> {
        let env = [
            (
                "CALLVAULT_METADATA__BACKEND".to_string(),
                "postgres".to_string(),
            ),
            ("CALLVAULT_METADATA__URL".to_string(), url.to_string()),
        ];
        let cfg = Config::load(None, env).unwrap();
        static_checks(&cfg)
            .into_iter()
            .map(|f| f.id)
            .filter(|id| id.starts_with("postgres"))
            .collect()
    }

    #[test]
    fn postgres_transport_is_judged_by_where_it_goes() {
        assert_eq!(
            with_db("postgres://u:p@db.internal:5432/cv?sslmode=disable"),
            ["postgres_without_tls"]
        );
        assert_eq!(
            with_db("postgres://u:p@127.0.0.1:5432/cv?sslmode=disable"),
            Vec::<&str>::new()
        );
        assert_eq!(
            with_db("postgres://u:p@db.internal/cv?sslmode=require"),
            ["postgres_tls_unverified"]
        );
        assert_eq!(
            with_db("postgres://u:p@db.internal/cv?sslmode=verify-full&sslrootcert=/ca.pem"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn severities_order_from_info_to_critical() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
        let f = vec![Finding {
            id: "x",
            severity: Severity::High,
            explanation: String::new(),
            fix: String::new(),
        }];
        assert_eq!(counts(&f)[3], (Severity::High, 1));
    }
}
