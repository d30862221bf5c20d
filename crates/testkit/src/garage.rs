//! A throwaway 3-node Garage cluster on 127.0.0.1 for one test, started by
//! `scripts/garage-cluster` (the same script CI and humans use) in a fresh temporary directory,
//! and stopped when the handle drops.
//!
//! No skipping: if garage 2.x is missing or the cluster does not come up, `start` panics with the
//! script's message and the node logs, so the test fails and says how to fix it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

pub struct Garage {
    dir: TempDir,
    /// S3 endpoint of each node, in node order (`http://127.0.0.1:<port>`).
    pub endpoints: Vec<String>,
    pub region: String,
    /// The bucket the script made; tests that want a fresh one call [`Garage::create_bucket`].
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    stopped: Vec<bool>,
}

/// Found from the running test's package directory (every package is at `crates/NAME`), read
/// at run time: a compiled-in path goes stale when a shared target directory is reused by a
/// checkout elsewhere, and cargo does not rebuild this crate for that.
fn script() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    package.join("../../scripts/garage-cluster")
}

/// Nine loopback ports that were free a moment ago. All are held at once, so they differ; the
/// window between release and garage's bind is the remaining race.
fn free_ports() -> String {
    let held: Vec<TcpListener> = (0..9)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn run(args: &[&str], ports: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(script());
    cmd.args(args);
    if let Some(p) = ports {
        cmd.env("GARAGE_PORTS", p);
    }
    // If this test process dies without running Drop, the script's watchdog stops the nodes.
    cmd.env("GARAGE_OWNER_PID", std::process::id().to_string());
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()))
}

fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

impl Garage {
    /// The cluster's directory (every node's metadata and data), for tests that scan what is
    /// at rest.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn start() -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap().to_owned();
        let out = run(&["start", &root], Some(&free_ports()));
        if !out.status.success() {
            let mut logs = String::new();
            for i in 1..=3 {
                if let Ok(l) = std::fs::read_to_string(dir.path().join(format!("node{i}/log"))) {
                    let tail: Vec<_> = l.lines().rev().take(20).collect();
                    logs += &format!("\n--- node{i}/log (last lines) ---\n");
                    logs += &tail.into_iter().rev().collect::<Vec<_>>().join("\n");
                }
            }
            // Stop whatever did start before failing.
            let _ = run(&["stop", &root], None);
            panic!(
                "the 3-node Garage cluster did not start, so the S3 adapter cannot be tested.\n\
                 {}\n{}{logs}\n\
                 Install Garage 2.x with `scripts/garage-cluster install` \
                 (cargo install garage --version '^2' --locked).",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
        }
        let env = parse_env(&std::fs::read_to_string(dir.path().join("env")).unwrap());
        let get = |k: &str| {
            env.get(k)
                .cloned()
                .unwrap_or_else(|| panic!("{k} missing from {root}/env"))
        };
        let g = Garage {
            endpoints: get("GARAGE_S3_ENDPOINTS")
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            region: get("GARAGE_REGION"),
            bucket: get("GARAGE_BUCKET"),
            access_key_id: get("GARAGE_ACCESS_KEY_ID"),
            secret_access_key: get("GARAGE_SECRET_ACCESS_KEY"),
            stopped: vec![false; 3],
            dir,
        };
        g.wait_writable(&g.bucket);
        g
    }

    fn root(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    /// Creates a bucket the cluster's key may read, write and own.
    pub fn create_bucket(&self, name: &str) {
        let out = run(&["bucket", self.root(), name], None);
        assert!(
            out.status.success(),
            "creating bucket {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.wait_writable(name);
    }

    /// Waits until every node accepts a signed write to `bucket`. Garage grants the key its
    /// permission on one node and spreads it to the others a moment later; until then a node
    /// answers 403, which a test would take for a bug in the adapter.
    fn wait_writable(&self, bucket: &str) {
        use object_store::ObjectStoreExt;
        // object_store's HTTP client needs a rustls provider even for plain-HTTP endpoints.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let stores: Vec<_> = self
            .endpoints
            .iter()
            .map(|e| {
                object_store::aws::AmazonS3Builder::new()
                    .with_endpoint(e)
                    .with_allow_http(true)
                    .with_region(&self.region)
                    .with_bucket_name(bucket)
                    .with_access_key_id(&self.access_key_id)
                    .with_secret_access_key(&self.secret_access_key)
                    .build()
                    .unwrap()
            })
            .collect();
        // Own thread and runtime: callers may already be inside a tokio runtime.
        std::thread::scope(|sc| {
            sc.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let probe = object_store::path::Path::from("_callvault/probe/testkit-writable");
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                    for (i, s) in stores.iter().enumerate() {
                        loop {
                            match s
                                .put(&probe, object_store::PutPayload::from_static(b"ok"))
                                .await
                            {
                                Ok(_) => break,
                                Err(e) if std::time::Instant::now() > deadline => panic!(
                                    "node {} never accepted a write to bucket {bucket}: {e}",
                                    i + 1
                                ),
                                Err(_) => {
                                    tokio::time::sleep(std::time::Duration::from_millis(100)).await
                                }
                            }
                        }
                    }
                    // Under `_callvault/`, which the adapter keeps for itself and never lists.
                    let _ = stores[0].delete(&probe).await;
                });
            });
        });
    }

    /// Stops node `i` (0-based) and waits until its process is gone.
    pub fn stop_node(&mut self, i: usize) {
        let out = run(&["stop", self.root(), &(i + 1).to_string()], None);
        assert!(
            out.status.success(),
            "stopping node {}: {}",
            i + 1,
            String::from_utf8_lossy(&out.stderr)
        );
        self.stopped[i] = true;
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = run(&["stop", self.root()], None);
    }
}
