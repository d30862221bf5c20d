//! Shared fixtures: a working directory, a tenant key pair behind a fresh master key file, and a
//! one-line description of the machine.

use anyhow::{Context, Result};
use callvault_crypto::{KeyProvider, TenantIdentity, TenantRecipient, generate_key_file};
use std::path::{Path, PathBuf};

/// `--dir`, shared by the benchmarks that write to disk.
#[derive(clap::Args)]
pub struct WorkDirArg {
    /// Where benchmark data goes (created if missing; what is written there is removed at the
    /// end). Default: a fresh temporary directory under /var/tmp.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

impl WorkDirArg {
    pub fn open(&self) -> Result<WorkDir> {
        WorkDir::new(self.dir.clone())
    }
}

/// `--backend`: the metadata database a benchmark runs on.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The directory benchmark data goes to: `--dir` (created if missing, left in place but emptied
/// of what we wrote) or a fresh temporary directory under /var/tmp (removed on drop).
pub enum WorkDir {
    Given(PathBuf),
    Temp(tempfile::TempDir),
}

impl WorkDir {
    pub fn new(given: Option<PathBuf>) -> Result<Self> {
        match given {
            Some(p) => {
                std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
                Ok(Self::Given(p))
            }
            None => Ok(Self::Temp(
                tempfile::Builder::new()
                    .prefix("cvbench-")
                    .tempdir_in("/var/tmp")?,
            )),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Self::Given(p) => p,
            Self::Temp(t) => t.path(),
        }
    }

    /// A fresh subdirectory for one phase of a benchmark; the caller removes it.
    pub fn sub(&self, name: &str) -> Result<PathBuf> {
        let p = self.path().join(name);
        if p.exists() {
            std::fs::remove_dir_all(&p)?;
        }
        std::fs::create_dir_all(&p)?;
        Ok(p)
    }
}

/// A tenant key pair made the way the server makes one: a master key file, the tenant identity
/// generated and sealed under it, then opened again.
pub struct Tenant {
    pub recipient: TenantRecipient,
    pub identity: TenantIdentity,
    _keydir: tempfile::TempDir,
}

impl Tenant {
    pub fn new() -> Result<Self> {
        let keydir = tempfile::tempdir()?;
        let key_path = keydir.path().join("master.key");
        generate_key_file(&key_path, None)?;
        let kp = KeyProvider::from_file(&key_path, None)?;
        let (sealed, recipient) = TenantIdentity::generate(&kp, "bench", 1)?;
        let identity = TenantIdentity::open(&kp, "bench", 1, &sealed)?;
        Ok(Self {
            recipient,
            identity,
            _keydir: keydir,
        })
    }
}

/// `N cores, M GiB RAM, <date>` from /proc and the clock.
pub fn machine_summary() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0 / 1024.0);
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{cores} cores, {mem_gib:.1} GiB RAM, {}-{:02}-{:02} {:02}:{:02} UTC",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute()
    )
}

/// `loadavg 1.23 0.80 0.50` from /proc: other work on the machine skews CPU-bound figures.
pub fn loadavg() -> String {
    let l = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let v: Vec<&str> = l.split_whitespace().take(3).collect();
    format!("loadavg {}", v.join(" "))
}
