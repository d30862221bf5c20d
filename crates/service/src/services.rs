//! [`Services`]: what every domain operation works with — the config, the two stores, the keys
//! (`None` on an ingest node, where nothing that decrypts can run), the audit log, the
//! clock and the metric counters. A cheap-to-clone handle; the edges hold it beside what only they need.

use crate::audit_log::AuditLog;
use crate::clock::Clock;
use crate::config::Config;
use crate::keys::{KeyError, Keys};
use crate::metrics::SharedMetrics;
use crate::storing::Vault;
use callvault_core::TenantId;
use callvault_crypto::TenantRecipient;
use callvault_store::{BlobStore, MetadataStore};
use std::ops::Deref;
use std::sync::Arc;

#[derive(Clone)]
pub struct Services(Arc<Shared>);

/// The parts of [`Services`], reached through it.
pub struct Shared {
    pub cfg: Config,
    pub meta: MetadataStore,
    pub blobs: BlobStore,
    pub keys: Option<Keys>,
    pub audit: AuditLog,
    /// Time as retention and holds see it; `System` in every server.
    pub clock: Clock,
    /// The counters domain code increments; the edge renders them.
    pub metrics: SharedMetrics,
}

impl Deref for Services {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Services {
    pub fn new(parts: Shared) -> Self {
        Self(Arc::new(parts))
    }

    /// The key material of a full node; an ingest node has none.
    pub fn keys(&self) -> Result<&Keys, KeyError> {
        self.keys.as_ref().ok_or(KeyError::IngestNode)
    }

    /// Where recordings are stored.
    pub fn vault(&self) -> Vault<'_> {
        Vault {
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
