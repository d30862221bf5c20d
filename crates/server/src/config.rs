//! Configuration: declared once here, loaded from a TOML file then `CALLVAULT_…` environment
//! variables, and validated completely before anything binds. Unsafe combinations are refused
//! with the fix in the message; dangerous switches are named `insecure_…`.

use secrecy::SecretString;
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

impl LiveConfig {
    pub fn limits(&self) -> crate::live::LiveLimits {
        crate::live::LiveLimits {
            window: self.window_chunks,
            max_call_secs: self.max_call_secs,
            idle_timeout_secs: self.idle_timeout_secs,
        }
    }
}

/// The SIPREC recording server (docs/siprec.md). Off unless at least one listener is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// SIP over UDP, e.g. `0.0.0.0:5060`.
    pub udp: Option<SocketAddr>,
    /// SIP over TCP, e.g. `0.0.0.0:5060`.
    pub tcp: Option<SocketAddr>,
    /// SIP over TLS, e.g. `0.0.0.0:5061`, with the `[tls]` certificate or `tls_cert_file`. The only
    /// transport on which SRTP keys are accepted, and on which SRCs can present a client
    /// certificate.
    pub tls: Option<SocketAddr>,
    /// PEM roots that issue SRC client certificates. When set, a presented chain must lead to
    /// one of them before a source's `certificate_name` is believed. Not needed for sources
    /// pinned by `certificate_sha256` alone.
    pub client_ca_file: Option<PathBuf>,
    /// A PEM certificate chain and key for SIP/TLS of its own (e.g. one issued for the name
    /// your SBCs dial). Default: the HTTPS certificate of `[tls]`.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// The address put in SDP answers and Contact. Default: the listener's address, which must
    /// then not be unspecified (`0.0.0.0`).
    pub advertise: Option<std::net::IpAddr>,
    /// First and last UDP port for RTP. Each stream takes two (RTP, and RTCP which is ignored);
    /// a call's label 2 is answered on label 1's port + 2.
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// A call with no RTP for this long is finalised as incomplete (the SRC vanished).
    pub rtp_timeout_secs: u64,
    /// SIP requests per second one source address may send before being dropped.
    pub max_requests_per_sec: u32,
    /// The recording clients (SBCs, PBXs) allowed to record, each into one tenant. Anyone
    /// else is refused with 403 and audited.
    pub sources: Vec<SipSource>,
    /// TEST-ONLY: RFC 3261's T1 in milliseconds (500), so a test sees the 200 retransmission
    /// give up after 64·T1 in a second rather than 32. Exists only in debug builds; a release
    /// build rejects the key as unknown.
    #[cfg(debug_assertions)]
    pub test_t1_ms: Option<u64>,
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            udp: None,
            tcp: None,
            tls: None,
            client_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            advertise: None,
            rtp_port_min: 20_000,
            rtp_port_max: 29_999,
            rtp_timeout_secs: 30,
            max_requests_per_sec: 50,
            sources: Vec::new(),
            #[cfg(debug_assertions)]
            test_t1_ms: None,
        }
    }
}

impl SipConfig {
    /// RFC 3261's T1: 500 ms (a test may shorten it in a debug build).
    pub fn t1(&self) -> std::time::Duration {
        #[cfg(debug_assertions)]
        if let Some(ms) = self.test_t1_ms {
            return std::time::Duration::from_millis(ms.clamp(1, 500));
        }
        std::time::Duration::from_millis(500)
    }

    pub fn enabled(&self) -> bool {
        self.udp.is_some() || self.tcp.is_some() || self.tls.is_some()
    }
}

/// One session recording client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSource {
    /// A name for logs and the audit record, e.g. `sbc-stockholm-1`.
    pub name: String,
    /// The tenant its calls are recorded for.
    pub tenant: String,
    /// Addresses it sends SIP from (and RTP, with the SDP's `c=` addresses). With a
    /// certificate configured, a connection must come from one of these *and* present it; a
    /// source with a certificate and no addresses is let in from any address over SIP/TLS.
    #[serde(default)]
    pub addresses: Vec<std::net::IpAddr>,
    /// SHA-256 fingerprints of the SRC's own TLS client certificate (the leaf, DER), in hex,
    /// colons allowed (`openssl x509 -noout -fingerprint -sha256`). Several for a rollover.
    #[serde(default)]
    pub certificate_sha256: Vec<String>,
    /// A DNS name or `sip:` URI the SRC's client certificate must carry in its subject
    /// alternative names, issued under `sip.client_ca_file`.
    #[serde(default)]
    pub certificate_name: Option<String>,
    /// Accept unencrypted RTP (and SIP over UDP/TCP) from this source: for a trunk on a
    /// trusted network only. Otherwise the source must use SIP over TLS and SRTP.
    #[serde(default)]
    pub insecure_plain_rtp: bool,
    /// The SDP `a=label` of the caller's stream (recorded left). Default: the first stream.
    #[serde(default)]
    pub caller_label: Option<String>,
    /// The queue (line) its calls belong to: selects the recording policy and retention.
    #[serde(default)]
    pub queue: Option<String>,
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
    pub provider: String,
    /// The master key file; must be outside the data directory. Sealed with a passphrase when
    /// `CALLVAULT_MASTER_PASSPHRASE` is set at creation.
    pub master_key_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataSection {
    /// `sqlite` (embedded default) or `postgres`.
    pub backend: String,
    /// SQLite file. Default: `<data_dir>/metadata.sqlite`.
    pub path: Option<PathBuf>,
    /// PostgreSQL URL (`postgres://user:pass@host/db?sslmode=verify-full&sslrootcert=ca.pem`).
    /// Holds a password: prefer `CALLVAULT_METADATA__URL` over the file; never logged.
    pub url: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlobsSection {
    /// `local` (embedded default) or `s3`.
    pub backend: String,
    /// Local directory. Default: `<data_dir>/blobs`.
    pub path: Option<PathBuf>,
    /// S3: scheme, host and port, e.g. `https://s3.eu-north-1.amazonaws.com`.
    pub endpoint: Option<String>,
    /// S3 region (Garage: `garage`).
    pub region: String,
    pub bucket: Option<String>,
    pub access_key_id: Option<String>,
    /// Prefer `CALLVAULT_BLOBS__SECRET_ACCESS_KEY` over the file; never logged.
    pub secret_access_key: Option<SecretString>,
    /// `https://bucket.host/key` instead of `https://host/bucket/key`.
    pub virtual_hosted: bool,
    /// Keys go under `<prefix>/`, so one bucket can hold several deployments.
    pub prefix: Option<String>,
}

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
            provider: "file".into(),
            master_key_file: "callvault-master.key".into(),
        }
    }
}

impl Default for MetadataSection {
    fn default() -> Self {
        Self {
            backend: "sqlite".into(),
            path: None,
            url: None,
        }
    }
}

impl Default for BlobsSection {
    fn default() -> Self {
        Self {
            backend: "local".into(),
            path: None,
            endpoint: None,
            region: "us-east-1".into(),
            bucket: None,
            access_key_id: None,
            secret_access_key: None,
            virtual_hosted: false,
            prefix: None,
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
    /// Loads `file` (if given, else `$CALLVAULT_CONFIG`, else defaults), overlays `CALLVAULT_…`
    /// variables from `env`, and validates.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let cfg = Self::parse(file, env)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Like [`Config::load`] without validation: for `doctor`, which reports an unsafe
    /// configuration as a finding instead of refusing to look at it.
    pub fn parse(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let from_env = env
            .iter()
            .find(|(k, _)| k == ENV_CONFIG_FILE)
            .map(|(_, v)| PathBuf::from(v));
        let mut table = match file.map(Path::to_path_buf).or(from_env) {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        for (k, v) in &env {
            let Some(rest) = k.strip_prefix("CALLVAULT_") else {
                continue;
            };
            if [ENV_CONFIG_FILE, ENV_PASSPHRASE, ENV_LOG].contains(&k.as_str()) {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            set_path(&mut table, &path, env_value(v))
                .map_err(|e| ConfigError::Parse(format!("{k}: {e}")))?;
        }
        let cfg: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        Ok(cfg)
    }

    /// Every rule that makes a deployment unsafe, checked before anything binds or is created.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let listen = self.server.listen;
        if self.server.insecure_plaintext && !listen.ip().is_loopback() {
            return Err(refuse(
                "plaintext_beyond_loopback",
                format!(
                    "`server.listen = {listen}` needs TLS: remove `server.insecure_plaintext` and set `tls.cert` and `tls.key` \
                 (or leave them unset and `callvault init` generates a certificate), or listen on 127.0.0.1 only"
                ),
            ));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(refuse(
                "config_invalid",
                "set both `tls.cert` and `tls.key`, or neither".into(),
            ));
        }
        match (self.metadata.backend.as_str(), &self.metadata.url) {
            ("sqlite", _) | ("postgres", Some(_)) => {}
            ("postgres", None) => {
                return Err(refuse("config_invalid", 
                    "`metadata.backend = postgres` needs `metadata.url`: set CALLVAULT_METADATA__URL=postgres://user:pass@host/db".into(),
                ));
            }
            (other, _) => {
                return Err(refuse(
                    "config_invalid",
                    format!("`metadata.backend = {other}` is unknown: use sqlite or postgres"),
                ));
            }
        }
        let b = &self.blobs;
        match b.backend.as_str() {
            "local" => {}
            "s3" if b.endpoint.is_none()
                || b.bucket.is_none()
                || b.access_key_id.is_none()
                || b.secret_access_key.is_none() =>
            {
                return Err(refuse("config_invalid", 
                    "`blobs.backend = s3` needs `blobs.endpoint`, `blobs.bucket`, `blobs.access_key_id` and `blobs.secret_access_key` \
                     (e.g. CALLVAULT_BLOBS__SECRET_ACCESS_KEY)"
                        .into(),
                ));
            }
            "s3" => {}
            other => {
                return Err(refuse(
                    "config_invalid",
                    format!("`blobs.backend = {other}` is unknown: use local or s3"),
                ));
            }
        }
        if self.keys.provider != "file" {
            return Err(refuse(
                "config_invalid",
                format!(
                    "`keys.provider = {}` is not available in this build; use `file`",
                    self.keys.provider
                ),
            ));
        }
        if self.mode == Mode::Full && is_within(&self.keys.master_key_file, &self.data_dir) {
            return Err(refuse(
                "master_key_in_data_dir",
                format!(
                    "`keys.master_key_file = {}` is inside the data directory {}: a copy of the data dir would carry its own key. \
                 Put the key file elsewhere, e.g. /etc/callvault/master.key",
                    self.keys.master_key_file.display(),
                    self.data_dir.display()
                ),
            ));
        }
        if self.audit.checkpoint_every == 0 || self.audit.checkpoint_interval_secs == 0 {
            return Err(refuse(
                "config_invalid",
                "`audit.checkpoint_every` and `audit.checkpoint_interval_secs` must be at least 1"
                    .into(),
            ));
        }
        if self.session.idle_timeout_secs <= 0
            || self.session.absolute_timeout_secs < self.session.idle_timeout_secs
        {
            return Err(refuse(
                "config_invalid",
                "session timeouts must be positive and the absolute one at least the idle one"
                    .into(),
            ));
        }
        if self.audit.verify_interval_secs == 0 || self.posture.max_software_age_days == 0 {
            return Err(refuse(
                "config_invalid",
                "`audit.verify_interval_secs` and `posture.max_software_age_days` must be at least 1"
                    .into(),
            ));
        }
        if self.posture.interval_secs == 0 {
            return Err(refuse(
                "config_invalid",
                "`posture.interval_secs` must be at least 1".into(),
            ));
        }
        if !(1..=86_400).contains(&self.live.idle_timeout_secs)
            || !(1..=100_000).contains(&self.live.window_chunks)
            || !(60..=86_400).contains(&self.live.max_call_secs)
        {
            return Err(refuse(
                "config_invalid",
                "`live.idle_timeout_secs` must be 1 to 86400, `live.window_chunks` 1 to 100000 and `live.max_call_secs` 60 to 86400".into(),
            ));
        }
        self.validate_sip()?;
        if !(30..=3600).contains(&self.grants.ttl_secs) {
            return Err(refuse(
                "config_invalid",
                "`grants.ttl_secs` must be between 30 and 3600".into(),
            ));
        }
        Ok(())
    }

    fn validate_sip(&self) -> Result<(), ConfigError> {
        let sip = &self.sip;
        if !sip.enabled() {
            return Ok(());
        }
        let invalid = |m: String| Err(refuse("config_invalid", m));
        if sip.rtp_port_min < 1024 || sip.rtp_port_max < sip.rtp_port_min.saturating_add(3) {
            return invalid(format!(
                "`sip.rtp_port_min` = {} and `sip.rtp_port_max` = {} must span at least 4 ports above 1023, e.g. 20000 and 29999",
                sip.rtp_port_min, sip.rtp_port_max
            ));
        }
        if !(1..=3600).contains(&sip.rtp_timeout_secs) || sip.max_requests_per_sec == 0 {
            return invalid("`sip.rtp_timeout_secs` must be 1 to 3600 and `sip.max_requests_per_sec` at least 1".into());
        }
        let listen_ip = sip.udp.or(sip.tcp).or(sip.tls).map(|a| a.ip());
        if sip.advertise.is_none() && listen_ip.is_some_and(|ip| ip.is_unspecified()) {
            return invalid("SIP listens on an unspecified address: set `sip.advertise` to the address SRCs should send RTP to".into());
        }
        if sip.tls_cert_file.is_some() != sip.tls_key_file.is_some() {
            return invalid("set both `sip.tls_cert_file` and `sip.tls_key_file`, or neither (then SIP/TLS uses the `[tls]` certificate)".into());
        }
        if sip.client_ca_file.is_some() && sip.tls.is_none() {
            return invalid("`sip.client_ca_file` is set but `sip.tls` is not: client certificates travel only over SIP/TLS".into());
        }
        if sip.sources.is_empty() {
            return invalid("`[sip]` has listeners but no `[[sip.sources]]`: every call would be refused. Add the SBCs that may record".into());
        }
        for src in &sip.sources {
            callvault_core::TenantId::parse(&src.tenant).map_err(|e| {
                refuse(
                    "config_invalid",
                    format!("`sip.sources` `{}`: tenant: {e}", src.name),
                )
            })?;
            for pin in &src.certificate_sha256 {
                parse_sha256(pin).map_err(|e| {
                    refuse(
                        "config_invalid",
                        format!("`sip.sources` `{}`: `certificate_sha256` {e}", src.name),
                    )
                })?;
            }
            let has_certificate =
                !src.certificate_sha256.is_empty() || src.certificate_name.is_some();
            if src.addresses.is_empty() && !has_certificate {
                return invalid(format!(
                    "`sip.sources` `{}` lists neither `addresses` nor a client certificate (`certificate_sha256` or `certificate_name`): it could never be recognised",
                    src.name
                ));
            }
            if has_certificate && sip.tls.is_none() {
                return invalid(format!(
                    "`sip.sources` `{}` is identified by a client certificate, which only SIP over TLS carries: set `sip.tls`",
                    src.name
                ));
            }
            if src.certificate_name.is_some() && sip.client_ca_file.is_none() {
                return invalid(format!(
                    "`sip.sources` `{}` sets `certificate_name`, but anyone can make a certificate with any name: set `sip.client_ca_file` to the CA that issues your SRCs' certificates, or pin the certificate with `certificate_sha256`",
                    src.name
                ));
            }
            if !src.insecure_plain_rtp && sip.tls.is_none() {
                return invalid(format!(
                    "`sip.sources` `{}` must use SRTP, which needs SIP over TLS: set `sip.tls`, or `insecure_plain_rtp = true` for a trunk on a trusted network",
                    src.name
                ));
            }
        }
        self.sip_client_roots()?;
        Ok(())
    }

    /// The PEM roots of `sip.client_ca_file`; an unreadable or empty file is a config error.
    pub fn sip_client_roots(&self) -> Result<Option<rustls::RootCertStore>, ConfigError> {
        use rustls_pki_types::{CertificateDer, pem::PemObject};
        let Some(path) = &self.sip.client_ca_file else {
            return Ok(None);
        };
        let bad = |why: String| {
            refuse(
                "config_invalid",
                format!("`sip.client_ca_file` {}: {why}", path.display()),
            )
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let mut roots = rustls::RootCertStore::empty();
        for c in certs {
            roots
                .add(c)
                .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(bad(
                "holds no certificate: put the PEM CA certificate(s) that issue your SRCs' client certificates there".into(),
            ));
        }
        Ok(Some(roots))
    }

    /// The SIP/TLS listener's certificate and key: its own, else the HTTPS ones.
    pub fn sip_tls_paths(&self) -> (PathBuf, PathBuf) {
        match (&self.sip.tls_cert_file, &self.sip.tls_key_file) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => self.tls_paths(),
        }
    }

    pub fn tls_paths(&self) -> (PathBuf, PathBuf) {
        match (&self.tls.cert, &self.tls.key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => (
                self.data_dir.join("tls/cert.pem"),
                self.data_dir.join("tls/key.pem"),
            ),
        }
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.metadata
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("metadata.sqlite"))
    }

    pub fn blob_path(&self) -> PathBuf {
        self.blobs
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("blobs"))
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

fn is_within(path: &Path, dir: &Path) -> bool {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    abs(path).starts_with(abs(dir))
}

fn env_value(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(b) = v.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(v.to_owned())
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    match path {
        [] => Err("empty key".into()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(format!("`{first}` is not a section")),
            }
        }
    }
}

/// A SHA-256 fingerprint in hex, colons and spaces allowed, either case.
pub fn parse_sha256(text: &str) -> Result<[u8; 32], String> {
    let digits: String = text.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    let bytes = hex::decode(&digits).map_err(|_| {
        format!(
            "`{text}` is not hex: give the SHA-256 fingerprint as 64 hex digits, colons allowed"
        )
    })?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "`{text}` has {} bytes; a SHA-256 fingerprint has 32",
            b.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_overrides_and_types() {
        let c = Config::load(
            None,
            env(&[
                ("CALLVAULT_SERVER__LISTEN", "127.0.0.1:0"),
                ("CALLVAULT_GRANTS__TTL_SECS", "60"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 0);
        assert_eq!(c.grants.ttl_secs, 60);
    }

    #[test]
    fn unsafe_sip_settings_are_refused_with_the_fix() {
        let parse = |toml_text: &str| {
            let mut c: Config = toml::from_str(toml_text).unwrap();
            c.data_dir = "/tmp/callvault-test-data".into();
            c.validate_sip().map_err(|e| e.to_string())
        };
        let source =
            "[[sip.sources]]\nname = \"sbc\"\ntenant = \"t1\"\naddresses = [\"192.0.2.1\"]\n";
        let srtp_without_tls = parse(&format!("[sip]\nudp = \"127.0.0.1:5060\"\n{source}"));
        assert!(srtp_without_tls.unwrap_err().contains("set `sip.tls`"));
        let unspecified = parse(&format!("[sip]\ntls = \"0.0.0.0:5061\"\n{source}"));
        assert!(unspecified.unwrap_err().contains("sip.advertise"));
        let no_sources = parse("[sip]\ntls = \"127.0.0.1:5061\"\n");
        assert!(no_sources.unwrap_err().contains("[[sip.sources]]"));
        assert!(parse(&format!("[sip]\ntls = \"127.0.0.1:5061\"\n{source}")).is_ok());
        assert!(parse("").is_ok(), "no listener, nothing to check");
    }

    #[test]
    fn sip_client_certificate_settings_are_checked_before_bind() {
        let check = |sip: &str, source: &str| {
            let text = format!(
                "[sip]\ntls = \"127.0.0.1:5061\"\n{sip}\n[[sip.sources]]\nname = \"sbc\"\ntenant = \"t1\"\n{source}"
            );
            let mut c: Config = toml::from_str(&text).unwrap();
            c.data_dir = "/tmp/callvault-test-data".into();
            c.validate_sip().map_err(|e| e.to_string())
        };
        let pin = "AB:".repeat(31) + "AB";
        assert!(check("", &format!("certificate_sha256 = [\"{pin}\"]")).is_ok());
        assert!(
            check(
                "",
                &format!("certificate_sha256 = [\"{}\"]", "ab".repeat(32))
            )
            .is_ok()
        );
        let e = check("", "certificate_sha256 = [\"zz\"]").unwrap_err();
        assert!(
            e.contains("`sbc`") && e.contains("certificate_sha256") && e.contains("not hex"),
            "{e}"
        );
        let e = check("", "certificate_sha256 = [\"abcd\"]").unwrap_err();
        assert!(e.contains("has 2 bytes"), "{e}");
        let e = check(
            "tls_cert_file = \"/etc/sip.pem\"",
            "addresses = [\"192.0.2.1\"]",
        )
        .unwrap_err();
        assert!(e.contains("sip.tls_key_file"), "{e}");
        let e = check("", "").unwrap_err();
        assert!(
            e.contains("`sbc`") && e.contains("neither `addresses` nor"),
            "{e}"
        );
        let e = check("", "certificate_name = \"sbc.example.net\"").unwrap_err();
        assert!(
            e.contains("certificate_name") && e.contains("sip.client_ca_file"),
            "{e}"
        );
        let e = check(
            "client_ca_file = \"/nonexistent/ca.pem\"",
            "certificate_name = \"sbc.example.net\"",
        )
        .unwrap_err();
        assert!(
            e.contains("`sip.client_ca_file` /nonexistent/ca.pem"),
            "{e}"
        );
        let empty = tempfile::NamedTempFile::new().unwrap();
        let e = check(
            &format!("client_ca_file = \"{}\"", empty.path().display()),
            "addresses = [\"192.0.2.1\"]",
        )
        .unwrap_err();
        assert!(e.contains("holds no certificate"), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = Config::load(None, env(&[("CALLVAULT_SERVER__LISTN", "x")])).unwrap_err();
        assert!(e.to_string().contains("listn"), "{e}");
    }

    #[test]
    fn plaintext_beyond_loopback_is_refused_with_the_fix() {
        let e = Config::load(
            None,
            env(&[
                ("CALLVAULT_SERVER__LISTEN", "0.0.0.0:8443"),
                ("CALLVAULT_SERVER__INSECURE_PLAINTEXT", "true"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs TLS") && e.contains("tls.cert"), "{e}");
        assert!(
            Config::load(
                None,
                env(&[("CALLVAULT_SERVER__INSECURE_PLAINTEXT", "true")])
            )
            .is_ok()
        );
    }

    #[test]
    fn master_key_inside_data_dir_is_refused() {
        let e = Config::load(
            None,
            env(&[(
                "CALLVAULT_KEYS__MASTER_KEY_FILE",
                "callvault-data/master.key",
            )]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("inside the data directory"), "{e}");
    }
}
