//! Black-box test harness: boots the real `callvault` binary on port 0 with a fresh data dir and
//! talks HTTPS to it, as a recorder, listener or admin would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use callvault_auth::totp::{self, Algorithm};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

pub mod live;

pub const BIN: &str = env!("CARGO_BIN_EXE_callvault");

/// `CVTEST_BACKEND=postgres-garage` runs the black-box tests on a fresh PostgreSQL
/// database and a 3-node Garage cluster instead of the embedded SQLite + local directory.
pub const ENV_BACKEND: &str = "CVTEST_BACKEND";

/// The scale-out backends one server runs on, kept alive as long as it.
struct ScaleOut {
    db: callvault_testkit::pg::Db,
    s3: callvault_testkit::garage::Garage,
}

impl ScaleOut {
    fn from_env() -> Option<Self> {
        match std::env::var(ENV_BACKEND).as_deref() {
            Ok("postgres-garage") => {
                let db = tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(callvault_testkit::pg::fresh_db())
                });
                Some(Self {
                    db,
                    s3: callvault_testkit::garage::Garage::start(),
                })
            }
            Ok("") | Ok("embedded") | Err(_) => None,
            Ok(other) => panic!("{ENV_BACKEND}={other}: use embedded or postgres-garage"),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("CALLVAULT_METADATA__BACKEND".into(), "postgres".into()),
            ("CALLVAULT_METADATA__URL".into(), self.db.node_url()),
            ("CALLVAULT_BLOBS__BACKEND".into(), "s3".into()),
            (
                "CALLVAULT_BLOBS__ENDPOINT".into(),
                self.s3.endpoints[0].clone(),
            ),
            ("CALLVAULT_BLOBS__REGION".into(), self.s3.region.clone()),
            ("CALLVAULT_BLOBS__BUCKET".into(), self.s3.bucket.clone()),
            (
                "CALLVAULT_BLOBS__ACCESS_KEY_ID".into(),
                self.s3.access_key_id.clone(),
            ),
            (
                "CALLVAULT_BLOBS__SECRET_ACCESS_KEY".into(),
                self.s3.secret_access_key.clone(),
            ),
        ]
    }
}

pub struct Server {
    scale_out: Option<ScaleOut>,
    pub dir: tempfile::TempDir,
    pub base: String,
    pub admin_password: Option<String>,
    /// `host:port` of the SIP listeners, when `[sip]` configures them.
    pub sip_udp: Option<String>,
    pub sip_tcp: Option<String>,
    pub sip_tls: Option<String>,
    child: Child,
    pub extra_env: Vec<(String, String)>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn data_dir(root: &Path) -> PathBuf {
    root.join("data")
}

/// The environment that points callvault at a test directory.
pub fn env_for(root: &Path) -> Vec<(String, String)> {
    vec![
        (
            "CALLVAULT_DATA_DIR".into(),
            data_dir(root).display().to_string(),
        ),
        (
            "CALLVAULT_KEYS__MASTER_KEY_FILE".into(),
            root.join("keys/master.key").display().to_string(),
        ),
        (
            "CALLVAULT_AUDIT__SINK_FILE".into(),
            root.join("sink/audit.jsonl").display().to_string(),
        ),
        ("CALLVAULT_SERVER__LISTEN".into(), "127.0.0.1:0".into()),
        ("CALLVAULT_LOG".into(), "debug".into()),
    ]
}

/// Runs a CLI verb against the deployment in `root`.
pub fn cli(root: &Path, extra: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .envs(env_for(root))
        .env_remove("CALLVAULT_CONFIG")
        .env_remove("CALLVAULT_TEST_PG_URL");
    for (k, v) in extra {
        c.env(k, v);
    }
    c.output().expect("run callvault")
}

impl Server {
    pub fn start() -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), &[])
    }

    /// Starts `callvault serve` in `dir` with extra environment; waits for the listening line.
    pub fn start_in(dir: tempfile::TempDir, extra: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        std::fs::create_dir_all(dir.path().join("sink")).unwrap();
        let scale_out = ScaleOut::from_env();
        let mut cmd = Command::new(BIN);
        cmd.envs(scale_out.iter().flat_map(ScaleOut::env));
        cmd.arg("serve")
            .envs(env_for(dir.path()))
            .env_remove("CALLVAULT_CONFIG")
            .env_remove("CALLVAULT_TEST_PG_URL");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("server.log"))
            .unwrap();
        let mut child = cmd.stdout(Stdio::piped()).stderr(log).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut admin_password = None;
        let (mut sip_udp, mut sip_tcp, mut sip_tls) = (None, None, None);
        let base = loop {
            let Some(line) = lines.next() else {
                let log =
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                panic!("server exited before listening:\n{log}");
            };
            let line = line.unwrap();
            if let Some(rest) =
                line.strip_prefix("first admin created: username `admin`, one-time password `")
            {
                admin_password = Some(rest.trim_end_matches('`').to_owned());
            }
            if let Some(a) = line.strip_prefix("callvault sip listening on udp://") {
                sip_udp = Some(a.trim().to_owned());
            }
            if let Some(a) = line.strip_prefix("callvault sip listening on tcp://") {
                sip_tcp = Some(a.trim().to_owned());
            }
            if let Some(a) = line.strip_prefix("callvault sip listening on tls://") {
                sip_tls = Some(a.trim().to_owned());
            }
            if let Some(url) = line.strip_prefix("callvault listening on ") {
                break url.trim().to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            scale_out,
            dir,
            base,
            admin_password,
            sip_udp,
            sip_tcp,
            sip_tls,
            child,
            extra_env: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Runs a CLI verb against this deployment, on its backends (scale-out ones included).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let env: Vec<(String, String)> = self.scale_out.iter().flat_map(ScaleOut::env).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        cli(self.root(), &env, args)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn data(&self) -> PathBuf {
        data_dir(self.root())
    }

    /// Every directory where this deployment keeps data at rest: the data dir, and on the
    /// scale-out backends the PostgreSQL cluster's and the Garage nodes' directories.
    pub fn storage_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.data()];
        if let Some(so) = &self.scale_out {
            dirs.extend(so.db.server_dir());
            dirs.push(so.s3.dir().to_path_buf());
        }
        dirs
    }

    /// Stops the server and hands back its directory (to restart or inspect).
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    /// The server process's id (to look at its threads in /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root().join("server.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A fresh HTTP client (own cookie jar) that trusts this server's certificate.
    pub fn client(&self) -> reqwest::Client {
        static PROVIDER: Once = Once::new();
        PROVIDER.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let mut b = reqwest::Client::builder()
            .cookie_store(true)
            .timeout(Duration::from_secs(60));
        let cert = self
            .extra_env
            .iter()
            .find(|(k, _)| k == "CALLVAULT_TLS__CERT")
            .map(|(_, v)| PathBuf::from(v))
            .unwrap_or_else(|| self.data().join("tls/cert.pem"));
        if let Ok(pem) = std::fs::read(&cert) {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        b.build().unwrap()
    }

    /// Signs in as the first admin, completing password change and TOTP enrolment.
    pub async fn admin(&self) -> User {
        let pw = self.admin_password.clone().expect("first admin password");
        self.first_sign_in("admin", &pw).await
    }

    /// Completes a first sign-in: one-time password → new password → TOTP enrolment.
    pub async fn first_sign_in(&self, username: &str, one_time: &str) -> User {
        let c = self.client();
        let step: Value = ok_json(
            c.post(self.url("/api/v1/auth/login"))
                .json(&json!({ "username": username, "password": one_time }))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        assert_eq!(step["next"], "change_password");
        let password = format!("Correct-Horse-{}", rand_suffix());
        let step: Value = ok_json(
            c.post(self.url("/api/v1/auth/password"))
                .json(&json!({ "current_password": one_time, "new_password": password }))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        assert_eq!(step["next"], "enroll_totp");
        let secret = totp_secret(step["otpauth_uri"].as_str().unwrap());
        let code = totp::code(&secret, now(), 30, 6, Algorithm::Sha1);
        let step: Value = ok_json(
            c.post(self.url("/api/v1/auth/totp"))
                .json(&json!({ "code": code }))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        assert_eq!(step["next"], "done");
        User {
            client: c,
            username: username.to_owned(),
            password,
            totp: secret,
        }
    }

    /// Creates a user through the admin API and signs them in.
    pub async fn user(
        &self,
        admin: &User,
        username: &str,
        role: &str,
        tenant: Option<&str>,
    ) -> User {
        let created: Value = ok_json(
            admin
                .client
                .post(self.url("/api/v1/users"))
                .json(&json!({ "username": username, "role": role, "tenant": tenant }))
                .send()
                .await
                .unwrap(),
            201,
        )
        .await;
        self.first_sign_in(username, created["one_time_password"].as_str().unwrap())
            .await
    }

    /// Creates a tenant with a default recording policy that records every queue (class
    /// `standard`), so that uploads are admitted.
    pub async fn tenant(&self, admin: &User, id: &str) {
        self.bare_tenant(admin, id).await;
        self.policy(
            admin,
            id,
            json!({ "record": true, "parties": "both", "retention_class": "standard" }),
        )
        .await;
    }

    /// Creates a tenant with no recording policy: every call to it is refused.
    pub async fn bare_tenant(&self, admin: &User, id: &str) {
        ok_json(
            admin
                .client
                .post(self.url("/api/v1/tenants"))
                .json(&json!({ "id": id, "name": format!("Tenant {id}") }))
                .send()
                .await
                .unwrap(),
            201,
        )
        .await;
    }

    /// Sets a recording policy of `tenant` as `editor` (an admin or the tenant's privacy officer).
    pub async fn policy(&self, editor: &User, tenant: &str, policy: Value) -> Value {
        ok_json(
            editor
                .client
                .post(self.url(&format!("/api/v1/tenants/{tenant}/recording-policies")))
                .json(&policy)
                .send()
                .await
                .unwrap(),
            200,
        )
        .await
    }

    /// An API token; returns the bearer secret.
    pub async fn token(&self, admin: &User, role: &str, tenant: Option<&str>) -> String {
        let v: Value = ok_json(
            admin
                .client
                .post(self.url("/api/v1/tokens"))
                .json(&json!({ "name": format!("{role} token"), "role": role, "tenant": tenant, "expires_in_days": 30 }))
                .send()
                .await
                .unwrap(),
            201,
        )
        .await;
        v["secret"].as_str().unwrap().to_owned()
    }

    /// Audit entries matching `query` (the query string of GET /api/v1/audit), read with an
    /// auditor's bearer token.
    pub async fn audit(&self, auditor_token: &str, query: &str) -> Vec<Value> {
        let v = self
            .bearer_json(auditor_token, &format!("/api/v1/audit?{query}"))
            .await;
        serde_json::from_value(v).unwrap()
    }

    /// Uploads `audio` as a recorder; returns the response.
    pub async fn upload(&self, token: &str, audio: &[u8], meta: Value) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .part("metadata", reqwest::multipart::Part::text(meta.to_string()))
            .part(
                "audio",
                reqwest::multipart::Part::bytes(audio.to_vec()).file_name("call"),
            );
        self.client()
            .post(self.url("/api/v1/recordings"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Uploads and returns the new recording id.
    pub async fn upload_ok(&self, token: &str, audio: &[u8], meta: Value) -> String {
        let v = ok_json(self.upload(token, audio, meta).await, 201).await;
        v["id"].as_str().unwrap().to_owned()
    }
}

impl Server {
    /// GETs `path` with a bearer token; expects 200 and returns the JSON body.
    pub async fn bearer_json(&self, token: &str, path: &str) -> Value {
        let r = self
            .client()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        ok_json(r, 200).await
    }
}

/// `callvault probe --json URL`, inside network namespace `netns` if given: exit code and report.
pub fn probe(url: &str, netns: Option<&str>) -> (i32, Value) {
    let mut c = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, BIN]);
            c
        }
        None => Command::new(BIN),
    };
    let out = c
        .args(["probe", "--json", url])
        .env_remove("CALLVAULT_CONFIG")
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    (out.status.code().unwrap_or(-1), v)
}

pub struct User {
    pub client: reqwest::Client,
    pub username: String,
    pub password: String,
    pub totp: Vec<u8>,
}

impl User {
    /// GETs `path` with this user's session; expects 200 and returns the JSON body.
    pub async fn get_json(&self, s: &Server, path: &str) -> Value {
        ok_json(self.client.get(s.url(path)).send().await.unwrap(), 200).await
    }

    /// Fetches a whole playback URL (absolute) and returns its body.
    pub async fn play(&self, url: &str) -> Vec<u8> {
        let r = self.client.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200, "playing {url}");
        r.bytes().await.unwrap().to_vec()
    }

    /// States a purpose and returns the playback URL path.
    pub async fn grant(&self, s: &Server, id: &str) -> String {
        let v: Value = ok_json(
            self.client
                .post(s.url(&format!("/api/v1/recordings/{id}/access")))
                .json(&json!({ "purpose_code": "quality_review", "purpose_text": "weekly quality review of advice given" }))
                .send()
                .await
                .unwrap(),
            201,
        )
        .await;
        v["playback_url"].as_str().unwrap().to_owned()
    }
}

pub fn meta(caller: &str) -> Value {
    json!({
        "started_at": "2026-11-20T08:15:00Z",
        "direction": "inbound",
        "caller_number": caller,
        "agent_id": "nurse-17",
        "queue": "child-health",
        "external_call_id": "sbc-42",
    })
}

/// The body of the answer to `req`, whatever its status.
pub async fn body_text(req: reqwest::RequestBuilder) -> String {
    req.send().await.unwrap().text().await.unwrap()
}

/// The value of the sample `name` (with its labels, if any) on a `/metrics` page.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

pub async fn ok_json(resp: reqwest::Response, status: u16) -> Value {
    let got = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    assert_eq!(got, status, "unexpected status; body: {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn rand_suffix() -> String {
    format!("{:x}{:x}", now(), std::process::id()) + "-Zq9!"
}

pub fn totp_secret(uri: &str) -> Vec<u8> {
    let secret = uri
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("secret="))
        .unwrap();
    data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap()
}

/// Polls until `f` is true or the deadline passes.
pub fn wait_until(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every file below `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
