//! First start and every start: data directory, master key, TLS material, stores, the audit
//! signing key, and the first admin — created once, with a random one-time password, never a
//! default credential.

use crate::audit_log::{AuditLog, Event};
use crate::config::{Config, ENV_PASSPHRASE, Mode};
use crate::keys::Keys;
use crate::provisioning;
use crate::state::{AppState, Inner};
use callvault_audit::sink::FileSink;
use callvault_core::{Role, Username};
use callvault_crypto::{ExposeSecret, KeyProvider, SealContext, SecretString, generate_key_file};
use callvault_ingest::Ingest;
use callvault_service::{Services, Shared};
use callvault_store::{BlobStore, MetadataStore};
use ed25519_dalek::SigningKey;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

const AUDIT_KEY_SETTING: &str = "audit_signing_key_sealed";

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Crypto(#[from] callvault_crypto::CryptoError),
    #[error("{0}")]
    Store(#[from] callvault_store::StoreError),
    #[error("{0}")]
    Other(String),
}

/// A running node's state plus what the operator must be told once.
pub struct Bootstrapped {
    pub state: AppState,
    /// Set only when this start created the first admin: print once, never log.
    pub first_admin: Option<(Username, SecretString)>,
    pub signing_key: Option<SigningKey>,
}

fn passphrase() -> Option<SecretString> {
    std::env::var(ENV_PASSPHRASE).ok().map(SecretString::from)
}

fn ensure_private_dir(dir: &Path) -> Result<(), BootError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| BootError::Other(format!("creating data directory {}: {e}", dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| BootError::Other(format!("{}: {e}", dir.display())))
}

/// Creates whatever is missing (data dir, master key, certificate) and opens everything.
pub async fn init(cfg: &Config) -> Result<Bootstrapped, BootError> {
    ensure_private_dir(&cfg.data_dir)?;
    if cfg.mode == Mode::Full && !cfg.keys.master_key_file.exists() {
        if let Some(parent) = cfg
            .keys
            .master_key_file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| BootError::Other(format!("{}: {e}", parent.display())))?;
        }
        generate_key_file(&cfg.keys.master_key_file, passphrase().as_ref())?;
    }
    let (cert, key) = cfg.tls_paths();
    if !cfg.server.insecure_plaintext && cfg.tls.cert.is_none() && !cert.exists() {
        crate::tls::generate_self_signed(&cert, &key).map_err(BootError::Other)?;
    }
    open(cfg, true).await
}

/// Opens an initialised deployment. With `create_admin`, creates the first admin if there is
/// no user at all.
pub async fn open(cfg: &Config, create_admin: bool) -> Result<Bootstrapped, BootError> {
    if !cfg.data_dir.is_dir() {
        return Err(BootError::Other(format!(
            "data directory {} does not exist: run `callvault init` first",
            cfg.data_dir.display()
        )));
    }
    let meta = MetadataStore::open(&cfg.metadata_store()?).await?;
    let blobs = BlobStore::open(&cfg.blob_store()?).await?;
    let audit = AuditLog::start(meta.clone(), cfg.audit.checkpoint_every);

    let (keys, signing_key) = match cfg.mode {
        Mode::Ingest => (None, None),
        Mode::Full => {
            let kp = KeyProvider::from_file(&cfg.keys.master_key_file, passphrase().as_ref())?;
            let fresh = callvault_audit::generate_signing_key();
            let sealed = kp.seal(&SealContext::audit_signing_key(), fresh.as_bytes())?;
            let stored = meta
                .put_setting_if_absent(AUDIT_KEY_SETTING, &sealed)
                .await?;
            let opened = kp.open(&SealContext::audit_signing_key(), &stored)?;
            let bytes: [u8; 32] = opened.expose_secret().as_slice().try_into().map_err(|_| {
                BootError::Other("stored audit signing key has the wrong length".into())
            })?;
            let sk = SigningKey::from_bytes(&bytes);
            (Some(Keys::new(kp, sk.clone())), Some(sk))
        }
    };

    let mut first_admin = None;
    if create_admin && cfg.mode == Mode::Full && meta.list_users(None).await?.is_empty() {
        let name = Username::parse("admin").map_err(|e| BootError::Other(e.to_string()))?;
        let (user, secret) = provisioning::create_user(&meta, name.clone(), Role::Admin, None)
            .await
            .map_err(|e| BootError::Other(e.to_string()))?;
        audit
            .record(Event {
                actor: "system".into(),
                action: "user.create",
                target: Some(user.id.to_string()),
                result: "ok",
                details: Some(serde_json::json!({ "role": "admin", "first_admin": true })),
                ..Event::default()
            })
            .await
            .map_err(BootError::Other)?;
        first_admin = Some((name, secret));
    }

    let metrics = crate::metrics::SharedMetrics::default();
    let live = crate::live::LiveCalls::start(
        meta.clone(),
        blobs.clone(),
        audit.clone(),
        metrics.clone(),
        cfg.live.limits(),
    );
    let services = Services::new(Shared {
        cfg: cfg.clone(),
        meta,
        blobs,
        keys,
        audit,
        clock: crate::clock::Clock::System,
        metrics: metrics.clone(),
    });
    let state = AppState::new(Inner {
        ingest: Ingest { services, live },
        posture: Default::default(),
    });
    Ok(Bootstrapped {
        state,
        first_admin,
        signing_key,
    })
}

/// Starts the periodic jobs: the posture check and the live sweeper (every node), and on full
/// nodes the live assembler, the checkpoint signer, the chain verifier and the retention job
/// (each of the last three run by one node of the deployment, the lease holder). Fails only if
/// the assembler's thread cannot be started: a full node that could not store live calls
/// does not serve.
pub fn start_background(b: &Bootstrapped) -> Result<(), BootError> {
    crate::posture::start_periodic(b.state.clone());
    crate::live::start_sweeper(b.state.ingest.clone());
    if b.state.keys.is_some() {
        crate::lifecycle::retention::start_job(b.state.ingest.services.clone());
        crate::live::start_assembler(b.state.ingest.clone()).map_err(|e| {
            BootError::Other(format!("cannot start the live assembler's thread: {e}"))
        })?;
    }
    if let Some(sk) = &b.signing_key {
        let st = &b.state;
        st.audit.start_checkpointer(
            st.meta.clone(),
            sk.clone(),
            FileSink::new(st.cfg.sink_path()),
            Duration::from_secs(st.cfg.audit.checkpoint_interval_secs),
        );
        crate::audit_log::start_verifier(
            st.meta.clone(),
            sk.verifying_key(),
            FileSink::new(st.cfg.sink_path()),
            Duration::from_secs(st.cfg.audit.verify_interval_secs),
        );
    }
    Ok(())
}
