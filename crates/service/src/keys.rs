//! The opened secrets of a full node, cached in memory only: tenant identities (which decrypt
//! recordings and journals) and caller hash keys (which find a caller's recordings). An ingest
//! node has none of them; everything here answers [`KeyError::IngestNode`] there.

use callvault_core::TenantId;
use callvault_crypto::{CallerHashKey, CryptoError, KeyProvider, TenantIdentity};
use callvault_store::{MetadataStore, StoreError};
use ed25519_dalek::{SigningKey, VerifyingKey};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("this node runs in ingest mode: it holds no master key and decrypts nothing")]
    IngestNode,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sealed key in the database did not open under the master key: a damaged row, or a
    /// database from another deployment.
    #[error("opening the identity of tenant `{tenant}` (key {key_id}): {source}")]
    OpenIdentity {
        tenant: TenantId,
        key_id: i64,
        #[source]
        source: CryptoError,
    },
    #[error("opening the caller hash key of tenant `{tenant}`: {source}")]
    OpenCallerKey {
        tenant: TenantId,
        #[source]
        source: CryptoError,
    },
    #[error("the public key {key_id} of tenant `{tenant}` does not parse: {source}")]
    Recipient {
        tenant: TenantId,
        key_id: i64,
        #[source]
        source: CryptoError,
    },
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
    ) -> Result<Arc<TenantIdentity>, KeyError> {
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
            .map_err(|source| KeyError::OpenIdentity {
                tenant: tenant.clone(),
                key_id,
                source,
            })?,
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
    ) -> Result<Arc<CallerHashKey>, KeyError> {
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
                .map_err(|source| KeyError::OpenCallerKey {
                    tenant: tenant.clone(),
                    source,
                })?,
        );
        if let Ok(mut m) = self.caller_keys.lock() {
            m.insert(tenant.clone(), k.clone());
        }
        Ok(k)
    }
}
