//! A throwaway PostgreSQL 15 cluster for this test process, and a fresh database per test.
//!
//! By default the cluster is hermetic: `initdb` into a temporary directory (SCRAM password
//! auth with a random password), the server on 127.0.0.1 at a port that was free a moment
//! before, its Unix socket inside that directory, `fsync=on`, and TLS offered with a
//! certificate for `localhost` from a throwaway CA ([`Db::tls`]). `initdb` and `pg_ctl` refuse to
//! run as root, so as root every server command runs as the `postgres` user via `runuser`.
//! If PostgreSQL cannot be started the test fails; it never skips.
//!
//! `CALLVAULT_TEST_PG_URL=postgres://user:pw@host:port/postgres?sslmode=disable` uses an
//! existing server instead (the user must be allowed to `CREATE DATABASE`; the URL's
//! parameters are kept for the store, so say `sslmode` explicitly). Databases made on such a
//! server are left behind, named `t_<random>`.
//!
//! Cleanup: the cluster lives while some test holds a [`Db`]; dropping the last one stops it
//! (`pg_ctl stop -m immediate`) and removes its directory. The stop is done by a watchdog
//! process started before the server, which waits for its stdin to close: the test process
//! closes it on drop, and the kernel closes it if the test process dies without unwinding, so
//! no postgres process outlives the test either way. The watchdog has its own process group,
//! so killing the test's group does not take it down before it has done its job.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, Weak};

const BIN: &str = "/usr/lib/postgresql/15/bin";
pub const ENV_URL: &str = "CALLVAULT_TEST_PG_URL";

/// A fresh, empty database for one test.
pub struct Db {
    /// What to give `MetadataConfig::Postgres`.
    pub url: String,
    pub name: String,
    /// A connection string for the server's `postgres` database, for tests that poke at the
    /// database behind the store's back.
    pub admin_url: String,
    /// On the hermetic cluster: the CA file that the server's certificate chains to.
    pub tls: Option<Tls>,
    _cluster: Option<Arc<Cluster>>,
}

/// How to reach the hermetic cluster over verified TLS.
#[derive(Clone, Debug)]
pub struct Tls {
    /// PEM file of the CA that issued the server certificate.
    pub ca: PathBuf,
    /// The only name in the server certificate.
    pub host: &'static str,
    pub port: u16,
    pub password: String,
}

/// Creates a fresh database, on the hermetic cluster unless `CALLVAULT_TEST_PG_URL` is set.
pub async fn fresh_db() -> Db {
    let (server, cluster) = match std::env::var(ENV_URL) {
        Ok(url) if !url.is_empty() => (url, None),
        _ => {
            let c = cluster();
            (c.url("postgres"), Some(c))
        }
    };
    let name = format!("t_{:016x}", rand::random::<u64>());
    let admin_url = without_param(&server, "sslmode");
    let admin = admin(&admin_url).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    Db {
        url: with_database(&server, &name),
        name,
        admin_url,
        tls: cluster.as_ref().map(|c| Tls {
            ca: c.dir.path().join("ca.pem"),
            host: "localhost",
            port: c.port,
            password: c.password.clone(),
        }),
        _cluster: cluster,
    }
}

impl Db {
    /// The URL a callvault node should use: verified TLS against the cluster's CA on the
    /// hermetic cluster; the given URL on an existing server.
    pub fn node_url(&self) -> String {
        match &self.tls {
            Some(t) => format!(
                "postgres://postgres:{}@{}:{}/{}?sslmode=verify-full&sslrootcert={}",
                t.password,
                t.host,
                t.port,
                self.name,
                t.ca.display()
            ),
            None => self.url.clone(),
        }
    }

    /// The hermetic cluster's directory (data files, WAL), for tests that scan what is at rest.
    /// Shared by every database of the test process.
    pub fn server_dir(&self) -> Option<PathBuf> {
        self._cluster.as_ref().map(|c| c.dir.path().to_path_buf())
    }

    /// A plain (no TLS) superuser-ish connection to this test's database.
    pub async fn connect(&self) -> tokio_postgres::Client {
        admin(&with_database(&self.admin_url, &self.name)).await
    }
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL server: {e}"));
    tokio::spawn(conn);
    client
}

/// `url` with its database (the path) replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or(before_query);
    match query {
        Some(q) => format!("{scheme}://{authority}/{db}?{q}"),
        None => format!("{scheme}://{authority}/{db}"),
    }
}

fn without_param(url: &str, key: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| p.split('=').next() != Some(key))
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

// ---- the hermetic cluster --------------------------------------------------------------------

static CURRENT: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());

/// The running cluster, started on first use and again after the last user dropped it.
fn cluster() -> Arc<Cluster> {
    let mut current = CURRENT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(c) = current.upgrade() {
        return c;
    }
    let c = Arc::new(Cluster::start().unwrap_or_else(|e| {
        panic!("cannot start the test PostgreSQL cluster ({BIN}; set {ENV_URL} to use an existing server): {e}")
    }));
    *current = Arc::downgrade(&c);
    c
}

pub struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    password: String,
    /// The postmaster's PID, from `postmaster.pid`.
    pid: u32,
    watchdog: Option<(Child, ChildStdin)>,
}

fn as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A server-side command, as `postgres` when we are root.
fn pg_command(program: &str) -> Command {
    if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Cluster {
    fn start() -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("callvault-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let root = dir.path().to_owned();
        let data = root.join("data");
        let password = format!("{:032x}", rand::random::<u128>());
        std::fs::write(root.join("pw"), &password).map_err(|e| format!("pwfile: {e}"))?;
        write_tls_files(&root)?;
        if as_root() {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres:postgres"]).arg(&root);
            run(chown, "chown of the cluster directory to postgres")?;
        }

        // Started before anything runs as postgres, so that neither the server nor the
        // directory can outlive this process.
        let watchdog = spawn_watchdog(&root, &data)?;
        let mut initdb = pg_command(&format!("{BIN}/initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=scram-sha-256", "-E", "UTF8"])
            .args(["--locale=C.UTF-8", "--no-instructions"])
            // Only initdb's own files skip fsync; the server below runs with fsync=on.
            .arg("--no-sync")
            .arg(format!("--pwfile={}", root.join("pw").display()));
        run(initdb, "initdb")?;

        let mut cluster = Self {
            dir,
            port: 0,
            password,
            pid: 0,
            watchdog: Some(watchdog),
        };
        let mut last = String::new();
        // The port was free when we looked; another process may take it before the server
        // binds it, so try a few.
        for _ in 0..3 {
            cluster.port = free_port()?;
            match cluster.pg_ctl_start(&data) {
                Ok(pid) => {
                    cluster.pid = pid;
                    return Ok(cluster);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn pg_ctl_start(&self, data: &Path) -> Result<u32, String> {
        let root = self.dir.path();
        let log = root.join(format!("server-{}.log", self.port));
        let mut start = pg_command(&format!("{BIN}/pg_ctl"));
        start
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(data)
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories='{root}' -c fsync=on -c max_connections=200 -c ssl=on -c ssl_cert_file='{root}/server.crt' -c ssl_key_file='{root}/server.key'",
                self.port,
                root = root.display()
            ));
        if let Err(e) = run(start, "pg_ctl start") {
            let mut tail = String::new();
            if let Ok(mut f) = std::fs::File::open(&log) {
                let _ = f.read_to_string(&mut tail);
            }
            return Err(format!("{e}\nserver log:\n{tail}"));
        }
        let pidfile = std::fs::read_to_string(data.join("postmaster.pid"))
            .map_err(|e| format!("postmaster.pid: {e}"))?;
        pidfile
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| format!("postmaster.pid unreadable: {pidfile:?}"))
    }

    /// A URL for database `db` on this cluster, plaintext over loopback.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{db}?sslmode=disable",
            self.password, self.port
        )
    }
}

/// A throwaway CA (`ca.pem`) and a server certificate for `localhost` signed by it.
fn write_tls_files(root: &Path) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tls = |e: rcgen::Error| format!("test certificates: {e}");
    let ca_key = rcgen::KeyPair::generate().map_err(tls)?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "callvault test CA");
    let ca = ca.self_signed(&ca_key).map_err(tls)?;
    let key = rcgen::KeyPair::generate().map_err(tls)?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .map_err(tls)?
        .signed_by(&key, &ca, &ca_key)
        .map_err(tls)?;
    let write = |name: &str, mode: u32, text: String| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(root.join(name))
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("{name}: {e}"))
    };
    write("ca.pem", 0o644, ca.pem())?;
    write("server.crt", 0o644, cert.pem())?;
    // PostgreSQL refuses a key file that others can read.
    write("server.key", 0o600, key.serialize_pem())
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// `sh` that waits for stdin to close, then stops the server and removes its directory.
fn spawn_watchdog(root: &Path, data: &Path) -> Result<(Child, ChildStdin), String> {
    let mut cmd = pg_command("/bin/sh");
    cmd.arg("-c")
        .arg(format!(
            "cat >/dev/null; {BIN}/pg_ctl stop -D \"$1\" -m immediate -w >/dev/null 2>&1; rm -rf \"$2\""
        ))
        .arg("watchdog")
        .arg(data)
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("watchdog: {e}"))?;
    let stdin = child.stdin.take().ok_or("watchdog without stdin")?;
    Ok((child, stdin))
}

fn alive(pid: u32) -> bool {
    pid != 0 && PathBuf::from(format!("/proc/{pid}")).exists()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.watchdog.take() {
            drop(stdin); // the watchdog stops the server now
            let _ = child.wait();
        }
        // `pg_ctl stop -w` has waited for the postmaster; if it is somehow still there, kill
        // that one process (its children exit when it does), and nothing else.
        if alive(self.pid) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
    }
}
