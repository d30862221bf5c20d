//! `callvault probe URL`: look at a callvault deployment from outside, with no credentials, the
//! way an internet scanner would (the 1177 box was found exactly so), and report what is exposed.
//! Exits 1 when anything above `info` is found.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;

struct Exposure {
    severity: &'static str,
    what: String,
}

/// Paths a scanner tries on a recording store: listings, data files, exports.
const GUESSES: &[&str] = &[
    "/",
    "/recordings/",
    "/recordings",
    "/blobs/",
    "/data/",
    "/callvault-data/",
    "/callvault-data/metadata.sqlite",
    "/metadata.sqlite",
    "/backup/",
    "/export/",
    "/exports/",
    "/audio/",
    "/.git/config",
    "/.env",
    "/api/v1/recordings",
    "/api/v1/audit",
    "/api/v1/users",
    "/metrics",
];

const DEFAULT_CREDENTIALS: &[(&str, &str)] = &[
    ("admin", "admin"),
    ("admin", "password"),
    ("admin", "callvault"),
    ("root", "root"),
];

/// How bad it is that `path` answers without credentials: metrics reveal counts and
/// weaknesses; everything else may reveal recordings, metadata or the audit record.
fn severity_of_exposed(path: &str) -> &'static str {
    if path == "/metrics" {
        "high"
    } else {
        "critical"
    }
}

fn client(max_tls12: bool) -> Result<reqwest::Client> {
    // A scanner does not care whether the certificate is trusted; it looks at what is served.
    let mut b = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    if max_tls12 {
        b = b.max_tls_version(reqwest::tls::Version::TLS_1_2);
    }
    Ok(b.build()?)
}

/// Judges the certificate the server presents (expired, not yet valid, expiring within 30 days).
async fn served_certificate(root: &str) -> Option<callvault_service::posture::Finding> {
    let c = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .timeout(Duration::from_secs(10))
        .build()
        .ok()?;
    let r = c.get(format!("{root}/healthz")).send().await.ok()?;
    let der = r
        .extensions()
        .get::<reqwest::tls::TlsInfo>()?
        .peer_certificate()?;
    let cert = callvault_server::posture::certificate::validity_of_der(der)?;
    let now = callvault_service::clock::unix_now();
    callvault_server::posture::certificate::judge("served at this address", cert, now)
}

pub async fn run(url: &str, json: bool) -> Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let base = reqwest::Url::parse(url).context("probe needs a URL like https://host:8443")?;
    if !matches!(base.scheme(), "https" | "http") {
        bail!("probe needs an http:// or https:// URL");
    }
    let root = format!(
        "{}://{}",
        base.scheme(),
        base.host_str().unwrap_or("localhost")
    ) + &base.port().map(|p| format!(":{p}")).unwrap_or_default();
    let c = client(false)?;
    let mut found = Vec::new();
    let mut expose = |severity, what: String| found.push(Exposure { severity, what });

    // 1. Plain HTTP on the same port.
    let plain = format!(
        "http://{}{}/healthz",
        base.host_str().unwrap_or("localhost"),
        base.port().map(|p| format!(":{p}")).unwrap_or_default()
    );
    if let Ok(r) = c.get(&plain).send().await {
        expose(
            "high",
            format!(
                "plain HTTP is answered ({} on {plain}): traffic and credentials travel in clear",
                r.status()
            ),
        );
    }
    // 2. TLS versions (the client offers only TLS 1.2 and 1.3; older protocols cannot even be asked).
    if base.scheme() == "https" {
        let t12 = client(true)?
            .get(format!("{root}/healthz"))
            .send()
            .await
            .is_ok();
        let t13 = c.get(format!("{root}/healthz")).send().await.is_ok();
        if !t12 && !t13 {
            expose("info", "no TLS 1.2 or 1.3 handshake succeeded".into());
        }
        // The certificate's validity, as every client sees it.
        if let Some(f) = served_certificate(&root).await {
            expose(f.severity.as_str(), f.explanation);
        }
    }
    // 3. Every route of the published API, without credentials.
    let mut routes: Vec<(String, String)> = Vec::new();
    if let Ok(r) = c.get(format!("{root}/api/v1/openapi.json")).send().await
        && let Ok(doc) = r.json::<Value>().await
    {
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                if op.get("security").is_some() {
                    routes.push((method.clone(), path.clone()));
                }
            }
        }
    }
    for (method, path) in &routes {
        let u = format!("{root}{}", callvault_server::routes::example_path(path));
        let req = match method.as_str() {
            "get" => c.get(&u),
            "delete" => c.delete(&u),
            "put" => c.put(&u).body(Vec::new()),
            _ => c.post(&u).json(&serde_json::json!({})),
        };
        if let Ok(r) = req.send().await
            && r.status() != reqwest::StatusCode::UNAUTHORIZED
        {
            expose(
                severity_of_exposed(path),
                format!(
                    "{} {path} answered {} without credentials",
                    method.to_uppercase(),
                    r.status()
                ),
            );
        }
    }
    // 4. Listings and guessable paths of recordings, data files and exports.
    for p in GUESSES {
        if let Ok(r) = c.get(format!("{root}{p}")).send().await {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            if status.is_success() {
                let listing = body.contains("Index of") || body.contains("<a href=");
                let what = if listing {
                    "a directory listing"
                } else {
                    "content"
                };
                expose(
                    severity_of_exposed(p),
                    format!("GET {p} serves {what} without credentials ({status})"),
                );
            }
        }
    }
    // 5. Default credentials.
    for (user, pass) in DEFAULT_CREDENTIALS {
        if let Ok(r) = c
            .post(format!("{root}/api/v1/auth/login"))
            .json(&serde_json::json!({ "username": user, "password": pass }))
            .send()
            .await
            && r.status().is_success()
        {
            expose(
                "critical",
                format!("default credentials {user}/{pass} are accepted"),
            );
        }
    }
    // 6. Banners and verbose errors.
    if let Ok(r) = c
        .post(format!("{root}/api/v1/auth/login"))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
    {
        for h in ["server", "x-powered-by"] {
            if let Some(v) = r.headers().get(h).and_then(|v| v.to_str().ok())
                && v.chars().any(|c| c.is_ascii_digit())
            {
                expose("low", format!("the `{h}` header reveals a version: {v}"));
            }
        }
        let body = r.text().await.unwrap_or_default();
        if ["panicked", "stack backtrace", "src/", ".rs:"]
            .iter()
            .any(|m| body.contains(m))
        {
            expose(
                "medium",
                "error responses reveal internals (source paths or panics)".into(),
            );
        }
    }

    let exposed = found.iter().any(|e| e.severity != "info");
    if json {
        let v: Vec<Value> = found
            .iter()
            .map(|e| serde_json::json!({ "severity": e.severity, "finding": e.what }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "url": url, "routes_checked": routes.len(), "exposed": exposed, "findings": v })
            )?
        );
    } else {
        println!(
            "probed {root}: {} API routes and {} guessable paths checked without credentials",
            routes.len(),
            GUESSES.len()
        );
        for e in &found {
            println!("[{}] {}", e.severity, e.what);
        }
        if !exposed {
            println!("nothing exposed");
        }
    }
    Ok(if exposed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
