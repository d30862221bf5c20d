//! Deliberately unsafe deployments, each caught where it can be seen: by `doctor`, by the
//! server's periodic check (the audit record and the admin API), by `probe` from outside — and
//! refused by `serve` when critical. A clean deployment reports nothing above info.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const DAY: i64 = 86_400;

/// `callvault doctor --json` for the deployment in `root`: exit code and findings.
fn doctor(root: &Path, extra: &[(&str, &str)]) -> (i32, Vec<Value>) {
    let out = cli(root, extra, &["doctor", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    (out.status.code().unwrap(), v.as_array().unwrap().clone())
}

fn severity_of<'a>(findings: &'a [Value], id: &str) -> Option<&'a str> {
    findings
        .iter()
        .find(|f| f["id"] == id)
        .map(|f| f["severity"].as_str().unwrap())
}

fn probe_finding<'a>(report: &'a Value, needle: &str) -> Option<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["finding"].as_str().unwrap().contains(needle))
}

/// Waits until the server's periodic check records a posture change naming `id`, and returns
/// that finding's severity as recorded.
async fn periodic_reports(s: &Server, auditor: &str, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let changes = s
            .bearer_json(auditor, "/api/v1/audit?action=posture.change")
            .await;
        let found = changes.as_array().unwrap().iter().rev().find_map(|c| {
            let details: Value = serde_json::from_str(c["details"].as_str()?).ok()?;
            details["findings"]
                .as_array()?
                .iter()
                .find(|f| f["id"] == id)
                .map(|f| f["severity"].as_str().unwrap().to_owned())
        });
        if let Some(sev) = found {
            return sev;
        }
        assert!(
            Instant::now() < deadline,
            "the periodic check never reported {id}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A certificate for the loopback names, valid from `from` to `to` days relative to now,
/// written with mode 0600 under `root/custom-tls`.
fn certificate(root: &Path, from: i64, to: i64) -> (String, String) {
    let now = time::OffsetDateTime::now_utc();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    params.not_before = now + time::Duration::seconds(from * DAY);
    params.not_after = now + time::Duration::seconds(to * DAY);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let dir = root.join("custom-tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
    (c.display().to_string(), k.display().to_string())
}

#[test]
fn an_expired_certificate_is_critical_and_serve_refuses_it() {
    let root = tempfile::tempdir().unwrap();
    assert!(cli(root.path(), &[], &["init"]).status.success());
    let (cert, key) = certificate(root.path(), -400, -2);
    let tls = [
        ("CALLVAULT_TLS__CERT", cert.as_str()),
        ("CALLVAULT_TLS__KEY", key.as_str()),
    ];
    let (code, findings) = doctor(root.path(), &tls);
    assert_eq!(code, 2, "{findings:#?}");
    assert_eq!(
        severity_of(&findings, "tls_certificate_expired"),
        Some("critical")
    );
    let out = cli(root.path(), &tls, &["serve"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls_certificate_expired") && err.contains("renew"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_about_to_expire_is_reported_inside_and_outside() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), -1, 10);
    let s = Server::start_in(
        dir,
        &[
            ("CALLVAULT_TLS__CERT", &cert),
            ("CALLVAULT_TLS__KEY", &key),
            ("CALLVAULT_POSTURE__INTERVAL_SECS", "1"),
        ],
    );
    let admin = s.admin().await;
    let auditor = s.token(&admin, "auditor", None).await;
    assert_eq!(
        periodic_reports(&s, &auditor, "tls_certificate_expiring").await,
        "high"
    );
    let tls = [
        ("CALLVAULT_TLS__CERT", cert.as_str()),
        ("CALLVAULT_TLS__KEY", key.as_str()),
    ];
    let (code, findings) = doctor(s.root(), &tls);
    assert_eq!(code, 0, "high is reported, not refused: {findings:#?}");
    assert_eq!(
        severity_of(&findings, "tls_certificate_expiring"),
        Some("high")
    );
    let (code, report) = probe(&s.base, None);
    assert_eq!(code, 1, "{report:#}");
    let f = probe_finding(&report, "expires on").expect("probe sees the expiry");
    assert_eq!(f["severity"], "high");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_exposed_by_misconfiguration_is_reported_by_all_three() {
    let misconfig = [
        ("CALLVAULT_SERVER__INSECURE_TEST_PUBLIC_METRICS", "true"),
        ("CALLVAULT_POSTURE__INTERVAL_SECS", "1"),
    ];
    let s = Server::start_in(tempfile::tempdir().unwrap(), &misconfig);
    // The misconfiguration is real: metrics answer anyone.
    let open = s.client().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(open.status(), 200);
    let admin = s.admin().await;
    let auditor = s.token(&admin, "auditor", None).await;
    assert_eq!(
        periodic_reports(&s, &auditor, "metrics_unauthenticated").await,
        "high"
    );
    let (_, findings) = doctor(s.root(), &misconfig);
    assert_eq!(
        severity_of(&findings, "metrics_unauthenticated"),
        Some("high")
    );
    let (code, report) = probe(&s.base, None);
    assert_eq!(code, 1, "{report:#}");
    let f = probe_finding(&report, "GET /metrics").expect("probe sees /metrics");
    assert_eq!(f["severity"], "high");
    assert!(
        probe_finding(&report, "without credentials")
            .into_iter()
            .all(|f| f["finding"].as_str().unwrap().contains("/metrics")),
        "only the misconfigured route is exposed: {report:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_deployment_reports_nothing_above_info() {
    let s = Server::start_in(
        tempfile::tempdir().unwrap(),
        &[
            ("CALLVAULT_LOG", "info"),
            ("CALLVAULT_POSTURE__INTERVAL_SECS", "1"),
        ],
    );
    let admin = s.admin().await;
    let findings = admin.get_json(&s, "/api/v1/posture").await;
    let above: Vec<_> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .collect();
    assert!(above.is_empty(), "{above:#?}");
    let (code, findings) = doctor(s.root(), &[("CALLVAULT_LOG", "info")]);
    assert_eq!(code, 0);
    assert!(
        findings.iter().all(|f| f["severity"] == "info"),
        "{findings:#?}"
    );
    let (code, report) = probe(&s.base, None);
    assert_eq!(
        (code, &report["exposed"]),
        (0, &Value::Bool(false)),
        "{report:#}"
    );
}

/// A network namespace of our own with one non-loopback address, removed on drop.
struct Netns {
    name: String,
    addr: &'static str,
}

impl Netns {
    fn create() -> Self {
        let name = format!("cvtest-{}-{}", std::process::id(), rand_suffix());
        let ns = Self {
            name,
            addr: "10.213.0.1",
        };
        for args in [
            vec!["netns", "add", &ns.name],
            vec!["-n", &ns.name, "link", "set", "lo", "up"],
            // On the namespace's own `lo` (no dummy/veth kernel module needed); the address is
            // not a loopback address, which is what the rules look at.
            vec!["-n", &ns.name, "addr", "add", "10.213.0.1/32", "dev", "lo"],
        ] {
            let out = Command::new("ip").args(&args).output().unwrap();
            assert!(
                out.status.success(),
                "`ip {}` failed (this test needs root to create a network namespace): {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        ns
    }

    fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_plaintext_listener_beyond_loopback_is_refused_and_seen_from_outside() {
    let ns = Netns::create();
    let root = tempfile::tempdir().unwrap();
    let listen = format!("{}:8080", ns.addr);
    let plaintext = [
        ("CALLVAULT_SERVER__LISTEN", listen.as_str()),
        ("CALLVAULT_SERVER__INSECURE_PLAINTEXT", "true"),
    ];
    // doctor names it critical; serve, inside the namespace where the address exists, refuses.
    let (code, findings) = doctor(root.path(), &plaintext);
    assert_eq!(code, 2, "{findings:#?}");
    assert_eq!(
        severity_of(&findings, "plaintext_beyond_loopback"),
        Some("critical")
    );
    let out = ns
        .exec(BIN)
        .arg("serve")
        .envs(env_for(root.path()))
        .envs(plaintext)
        .env_remove("CALLVAULT_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs TLS"),
        "{out:?}"
    );
    // With TLS on that address, the self-signed default is reported as high.
    let tls = [("CALLVAULT_SERVER__LISTEN", listen.as_str())];
    assert!(cli(root.path(), &tls, &["init"]).status.success());
    let (_, findings) = doctor(root.path(), &tls);
    assert_eq!(severity_of(&findings, "tls_self_signed"), Some("high"));

    // A plaintext store on that address (the 1177 box: an open web server over the
    // recordings) is what probe reports from outside.
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("call-0001.wav"), b"RIFF").unwrap();
    let _web = Child(
        ns.exec("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                ns.addr,
                "8000",
                "--directory",
            ])
            .arg(files.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://{}:8000", ns.addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    let (code, report) = loop {
        let (code, report) = probe(&url, Some(&ns.name));
        if probe_finding(&report, "plain HTTP").is_some() || Instant::now() > deadline {
            break (code, report);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        probe_finding(&report, "plain HTTP").unwrap()["severity"],
        "high"
    );
    assert_eq!(
        probe_finding(&report, "directory listing").unwrap()["severity"],
        "critical"
    );
}
