//! Configuration: declared once here, loaded from a TOML file then `CALLVAULT_…` environment
//! variables, and validated completely before anything binds. Unsafe combinations are refused
//! with the fix in the message; dangerous switches are named `insecure_…`.

/// A config value that is one of a few words: an enum deserialized from its word, refusing
/// any other word with the key, the word and the words allowed.
macro_rules! choice {
    ($(#[$doc:meta])* $name:ident at $key:literal {
        $($(#[$vdoc:meta])* $variant:ident = $word:literal,)+
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
        #[serde(try_from = "String")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(word: String) -> Result<Self, String> {
                const CHOICES: &[(&str, $name)] = &[$(($word, $name::$variant)),+];
                match CHOICES.iter().find(|(w, _)| *w == word) {
                    Some((_, choice)) => Ok(*choice),
                    None => {
                        let words: Vec<&str> = CHOICES.iter().map(|(w, _)| *w).collect();
                        Err(format!("`{} = {word}` is unknown: use {}", $key, words.join(" or ")))
                    }
                }
            }
        }
    };
}

mod env;
mod sip;
mod stores;
mod validate;

pub use sip::{SipConfig, SipSource, parse_sha256};
pub use stores::{BlobBackend, BlobsSection, MetadataBackend, MetadataSection};

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Environment variables that are not config keys.
pub const ENV_CONFIG_FILE: &str = "CALLVAULT_CONFIG";
pub const ENV_PASSPHRASE: &str = "CALLVAULT_MASTER_PASSPHRASE";
/// Log filter, e.g. `info` or `callvault_server=debug`.
pub const ENV_LOG: &str = "CALLVAULT_LOG";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the database, blobs, TLS material. Created with mode 0700.
    pub data_dir: PathBuf,
    /// `full` (everything) or `ingest` (accepts recordings, holds no master key, can read nothing back).
    pub mode: Mode,
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub keys: KeysConfig,
    pub metadata: MetadataSection,
    pub blobs: BlobsSection,
    pub audit: AuditConfig,
    pub session: SessionConfig,
    pub grants: GrantConfig,
    pub login: LoginConfig,
    pub posture: PostureConfig,
    pub retention: RetentionConfig,
    pub live: LiveConfig,
    pub sip: SipConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// How often the retention job erases what has expired (one node per deployment runs it).
    pub interval_secs: u64,
    /// Recordings erased per transaction: bounds the time the database write lock is held.
    pub batch: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            interval_secs: 3600,
            batch: 1000,
        }
    }
}

/// Live ingest (docs/live-ingest.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// A call whose recorder sent nothing for this long is finalised as incomplete.
    pub idle_timeout_secs: i64,
    /// How many chunks beyond the newest acknowledged one a chunk may be (out-of-order window).
    pub window_chunks: u64,
    /// The longest call recorded; chunks beyond it are refused.
    pub max_call_secs: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 120,
            window_chunks: 256,
            max_call_secs: 4 * 3600,
        }
    }
}

/// What a live protocol may do with a call; see [`LiveConfig`] for the meaning of each.
#[derive(Debug, Clone, Copy)]
pub struct LiveLimits {
    pub window: u64,
    pub max_call_secs: u64,
    pub idle_timeout_secs: i64,
}

impl LiveConfig {
    pub fn limits(&self) -> LiveLimits {
        LiveLimits {
            window: self.window_chunks,
            max_call_secs: self.max_call_secs,
            idle_timeout_secs: self.idle_timeout_secs,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostureConfig {
    /// How often the server re-runs its posture checks.
    pub interval_secs: u64,
    /// A build older than this is reported as outdated software (the 1177 box ran software
    /// nobody had updated in years).
    pub max_software_age_days: u64,
}

impl Default for PostureConfig {
    fn default() -> Self {
        Self {
            interval_secs: 300,
            max_software_age_days: 180,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Full,
    Ingest,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Serve plain HTTP. Allowed only on a loopback address (e.g. behind a local TLS proxy).
    pub insecure_plaintext: bool,
    /// Largest accepted upload of a finished recording, in bytes.
    pub max_upload_bytes: usize,
    /// Time allowed to receive a request and produce the response headers.
    pub request_timeout_secs: u64,
    /// TEST-ONLY misconfiguration: `/metrics` answers without credentials. Exists only in debug
    /// builds, so the posture tests can prove that doctor, the periodic check and `probe` catch
    /// an exposed route; a release build rejects the key as unknown.
    #[cfg(debug_assertions)]
    pub insecure_test_public_metrics: bool,
}

impl ServerConfig {
    /// Whether `/metrics` answers without credentials (never, in a release build).
    pub fn metrics_public(&self) -> bool {
        #[cfg(debug_assertions)]
        return self.insecure_test_public_metrics;
        #[cfg(not(debug_assertions))]
        false
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain. Default: `<data_dir>/tls/cert.pem`, self-signed at first start.
    pub cert: Option<PathBuf>,
    /// PEM private key. Default: `<data_dir>/tls/key.pem`.
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Only `file` today; KMS/HSM providers plug in behind the same `KeyProvider`.
    pub provider: KeyProviderKind,
    /// The master key file; must be outside the data directory. Sealed with a passphrase when
    /// `CALLVAULT_MASTER_PASSPHRASE` is set at creation.
    pub master_key_file: PathBuf,
}

choice!(
    /// Where the master key comes from.
    KeyProviderKind at "keys.provider" {
        /// A key file (`keys.master_key_file`), optionally sealed with a passphrase.
        File = "file",
    }
);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Sign a checkpoint after this many new entries…
    pub checkpoint_every: u64,
    /// …or after this many seconds, whichever comes first.
    pub checkpoint_interval_secs: u64,
    /// External sink for signed checkpoints: a file that should live on another mount or host,
    /// so a rewrite of the whole database is still detected. Default: `<data_dir>/../callvault-audit-sink.jsonl`.
    pub sink_file: Option<PathBuf>,
    /// How often the server verifies the whole chain on its own (one node of a deployment, the
    /// holder of the checkpoint lease). Posture reports a chain not verified for twice this long.
    pub verify_interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub idle_timeout_secs: i64,
    pub absolute_timeout_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrantConfig {
    /// How long a playback grant lasts after the purpose was stated.
    pub ttl_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    pub lockout_threshold: u32,
    pub lockout_base_secs: u64,
    pub lockout_max_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: "callvault-data".into(),
            mode: Mode::Full,
            server: ServerConfig::default(),
            tls: TlsConfig::default(),
            keys: KeysConfig::default(),
            metadata: MetadataSection::default(),
            blobs: BlobsSection::default(),
            audit: AuditConfig::default(),
            session: SessionConfig::default(),
            grants: GrantConfig::default(),
            login: LoginConfig::default(),
            posture: PostureConfig::default(),
            retention: RetentionConfig::default(),
            live: LiveConfig::default(),
            sip: SipConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            insecure_plaintext: false,
            max_upload_bytes: 512 << 20,
            request_timeout_secs: 300,
            #[cfg(debug_assertions)]
            insecure_test_public_metrics: false,
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            provider: KeyProviderKind::File,
            master_key_file: "callvault-master.key".into(),
        }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: 1000,
            checkpoint_interval_secs: 60,
            sink_file: None,
            verify_interval_secs: 86_400,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 15 * 60,
            absolute_timeout_secs: 8 * 3600,
        }
    }
}

impl Default for GrantConfig {
    fn default() -> Self {
        Self { ttl_secs: 300 }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            lockout_threshold: 5,
            lockout_base_secs: 30,
            lockout_max_secs: 3600,
        }
    }
}

/// A configuration that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config: {0}")]
    Parse(String),
    /// A combination that would make the deployment unsafe or unusable; `id` names the rule
    /// (posture reports it under that id).
    #[error("{message}")]
    Unsafe { id: &'static str, message: String },
}

fn refuse(id: &'static str, message: String) -> ConfigError {
    ConfigError::Unsafe { id, message }
}

impl Config {
    pub fn tls_paths(&self) -> (PathBuf, PathBuf) {
        match (&self.tls.cert, &self.tls.key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => (
                self.data_dir.join("tls/cert.pem"),
                self.data_dir.join("tls/key.pem"),
            ),
        }
    }

    pub fn sink_path(&self) -> PathBuf {
        self.audit.sink_file.clone().unwrap_or_else(|| {
            let parent = self
                .data_dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            parent.join("callvault-audit-sink.jsonl")
        })
    }
}

/// `CALLVAULT_…` variables for a test.
#[cfg(test)]
fn test_env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
