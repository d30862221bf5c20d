//! Shared server state. Only `full` mode has a master key ([`Keys`]); in `ingest` mode `keys` is
//! `None` and nothing that decrypts can run.

use crate::audit_log::AuditLog;
use crate::clock::Clock;
use crate::config::Config;
use crate::keys::{KeyError, Keys};
use callvault_core::TenantId;
use callvault_crypto::TenantRecipient;
use callvault_store::{BlobStore, MetadataStore};
use std::ops::Deref;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub cfg: Config,
    pub meta: MetadataStore,
    pub blobs: BlobStore,
    pub keys: Option<Keys>,
    pub audit: AuditLog,
    /// Time as retention and holds see it; `System` in every server.
    pub clock: Clock,
    /// Calls being recorded live; the API every live protocol uses.
    pub live: crate::live::LiveCalls,
    pub metrics: crate::metrics::SharedMetrics,
    /// The findings of the last periodic posture check.
    pub posture: Mutex<Vec<crate::posture::Finding>>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// The key material of a full node; an ingest node has none.
    pub fn keys(&self) -> Result<&Keys, KeyError> {
        self.keys.as_ref().ok_or(KeyError::IngestNode)
    }

    /// Where recordings are stored.
    pub fn vault(&self) -> crate::storing::Vault<'_> {
        crate::storing::Vault {
            meta: &self.meta,
            blobs: &self.blobs,
            audit: &self.audit,
        }
    }

    /// The tenant's current public key (all an ingest node needs).
    pub async fn active_recipient(
        &self,
        tenant: &TenantId,
    ) -> Result<(i64, TenantRecipient), KeyError> {
        let k = self.meta.active_key(tenant).await?;
        let r = TenantRecipient::parse(&k.recipient).map_err(|source| KeyError::Recipient {
            tenant: tenant.clone(),
            key_id: k.key_id,
            source,
        })?;
        Ok((k.key_id, r))
    }
}
