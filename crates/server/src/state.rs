//! Shared server state and the key cache. Only `full` mode has a master key; in `ingest` mode
//! `keys` is `None` and nothing that decrypts can run.

use crate::audit_log::AuditLog;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::ApiError;
use callvault_core::TenantId;
use callvault_crypto::{CallerHashKey, KeyProvider, TenantIdentity, TenantRecipient};
use callvault_store::{BlobStore, MetadataStore};
use ed25519_dalek::{SigningKey, VerifyingKey};
use std::collections::HashMap;
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

    /// The key material of a full node; an ingest node answers as if the route did not exist.
    pub fn keys(&self) -> Result<&Keys, ApiError> {
        self.keys.as_ref().ok_or_else(ApiError::not_found)
    }

    /// The tenant's current public key (all an ingest node needs).
    pub async fn active_recipient(
        &self,
        tenant: &TenantId,
    ) -> Result<(i64, TenantRecipient), ApiError> {
        let k = self.meta.active_key(tenant).await?;
        let r =
            TenantRecipient::parse(&k.recipient).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok((k.key_id, r))
    }
}

/// Opened secrets, cached in memory only.
pub struct Keys {
    pub provider: KeyProvider,
    pub audit_verifying: VerifyingKey,
    /// Signs audit checkpoints and, domain-separated, subject access archives.
    pub signing: SigningKey,
    identities: Mutex<HashMap<(TenantId, i64), Arc<TenantIdentity>>>,
    caller_keys: Mutex<HashMap<TenantId, Arc<CallerHashKey>>>,
}

impl Keys {
    pub fn new(provider: KeyProvider, signing: SigningKey) -> Self {
        Self {
            provider,
            audit_verifying: signing.verifying_key(),
            signing,
            identities: Mutex::default(),
            caller_keys: Mutex::default(),
        }
    }

    pub async fn identity(
        &self,
        meta: &MetadataStore,
        tenant: &TenantId,
        key_id: i64,
    ) -> Result<Arc<TenantIdentity>, ApiError> {
        let cache_key = (tenant.clone(), key_id);
        if let Some(id) = self
            .identities
            .lock()
            .ok()
            .and_then(|m| m.get(&cache_key).cloned())
        {
            return Ok(id);
        }
        let row = meta.get_key(tenant, key_id).await?;
        let id = Arc::new(
            TenantIdentity::open(
                &self.provider,
                tenant.as_str(),
                key_id,
                &row.identity_sealed,
            )
            .map_err(|e| ApiError::internal(format!("opening tenant key: {e}")))?,
        );
        if let Ok(mut m) = self.identities.lock() {
            m.insert(cache_key, id.clone());
        }
        Ok(id)
    }

    pub async fn caller_key(
        &self,
        meta: &MetadataStore,
        tenant: &TenantId,
    ) -> Result<Arc<CallerHashKey>, ApiError> {
        if let Some(k) = self
            .caller_keys
            .lock()
            .ok()
            .and_then(|m| m.get(tenant).cloned())
        {
            return Ok(k);
        }
        let t = meta.get_tenant(tenant).await?;
        let k = Arc::new(
            CallerHashKey::open(&self.provider, tenant.as_str(), &t.caller_hash_key_sealed)
                .map_err(|e| ApiError::internal(format!("opening caller hash key: {e}")))?,
        );
        if let Ok(mut m) = self.caller_keys.lock() {
            m.insert(tenant.clone(), k.clone());
        }
        Ok(k)
    }
}
