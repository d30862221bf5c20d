//! `callvault doctor`: the checks `serve` would refuse, plus file permissions. A later issue
//! grows this into full posture monitoring.

use anyhow::Result;
use callvault_server::config::Config;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;

struct Finding {
    id: &'static str,
    severity: &'static str,
    explanation: String,
    fix: String,
}

fn mode(p: &Path) -> Option<u32> {
    std::fs::metadata(p)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

pub fn run(cfg: &Config, json: bool) -> Result<ExitCode> {
    let mut f = Vec::new();
    let key = &cfg.keys.master_key_file;
    match mode(key) {
        None if cfg.mode == callvault_server::config::Mode::Full => f.push(Finding {
            id: "master_key_missing",
            severity: "critical",
            explanation: format!("the master key file {} does not exist", key.display()),
            fix: "run `callvault init`, or point keys.master_key_file at the key".into(),
        }),
        Some(m) if m & 0o077 != 0 => f.push(Finding {
            id: "master_key_permissions",
            severity: "critical",
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
            severity: "high",
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
            severity: "high",
            explanation: format!("the TLS key {} has mode {m:04o}", tls_key.display()),
            fix: format!("chmod 600 {}", tls_key.display()),
        });
    }
    if cfg.tls.cert.is_none()
        && !cfg.server.insecure_plaintext
        && !cfg.server.listen.ip().is_loopback()
    {
        f.push(Finding {
            id: "tls_self_signed",
            severity: "high",
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
            severity: "medium",
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
            severity: "low",
            explanation: "the external audit sink is the default file next to the data directory"
                .into(),
            fix: "set audit.sink_file to a file on another mount or host".into(),
        });
    }
    let critical = f.iter().any(|x| x.severity == "critical");
    if json {
        let v: Vec<_> = f
            .iter()
            .map(|x| serde_json::json!({ "id": x.id, "severity": x.severity, "explanation": x.explanation, "fix": x.fix }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if f.is_empty() {
        println!("no findings");
    } else {
        for x in &f {
            println!(
                "[{}] {}: {}\n    fix: {}",
                x.severity, x.id, x.explanation, x.fix
            );
        }
    }
    Ok(if critical {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
