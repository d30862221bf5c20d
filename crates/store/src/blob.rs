//! The blob store: opaque, randomly named, encrypted payloads. A listing reveals nothing (T2).

use crate::StoreError;
use callvault_core::BlobName;
use secrecy::SecretString;
use std::io::{Read, Seek};
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

#[cfg(feature = "local")]
mod local;
#[cfg(feature = "s3")]
mod s3;

/// A payload opened for reading: sync, because decryption runs on a blocking thread and age's
/// seekable reader wants `Read + Seek`.
pub trait BlobRead: Read + Seek + Send {}
impl<T: Read + Seek + Send> BlobRead for T {}

#[derive(Debug, Clone)]
pub enum BlobConfig {
    Local {
        path: PathBuf,
    },
    /// Any S3-compatible store. Objects are never made public, and `open` refuses a bucket that
    /// answers anonymous requests.
    S3 {
        /// Scheme, host and port only, e.g. `https://s3.eu-north-1.amazonaws.com` or
        /// `http://127.0.0.1:3900`. Plain `http` is refused unless the host is loopback.
        endpoint: String,
        /// e.g. `eu-north-1`; Garage's default is `garage`.
        region: String,
        bucket: String,
        access_key_id: String,
        /// Redacted in `Debug`; exposed only to the request signer.
        secret_access_key: SecretString,
        /// `https://bucket.host/key` instead of `https://host/bucket/key`. AWS prefers it; Garage
        /// needs `root_domain` set for it; MinIO and Garage default to path style.
        virtual_hosted: bool,
        /// Keys go under `<prefix>/`, so one bucket can hold several stores. `None`: bucket root.
        prefix: Option<String>,
    },
}

/// Handle to the blob store. Cheap to clone.
#[derive(Clone)]
pub struct BlobStore(Arc<dyn BlobBackend>);

impl BlobStore {
    pub async fn open(cfg: &BlobConfig) -> Result<Self, StoreError> {
        match cfg {
            #[cfg(feature = "local")]
            BlobConfig::Local { path } => {
                Ok(Self(Arc::new(local::Local::open(path.clone()).await?)))
            }
            #[cfg(not(feature = "local"))]
            BlobConfig::Local { .. } => Err(StoreError::NotCompiled { backend: "local" }),
            #[cfg(feature = "s3")]
            BlobConfig::S3 {
                endpoint,
                region,
                bucket,
                access_key_id,
                secret_access_key,
                virtual_hosted,
                prefix,
            } => Ok(Self(Arc::new(
                s3::S3::open(s3::S3Settings {
                    endpoint: endpoint.clone(),
                    region: region.clone(),
                    bucket: bucket.clone(),
                    access_key_id: access_key_id.clone(),
                    secret_access_key: secret_access_key.clone(),
                    virtual_hosted: *virtual_hosted,
                    prefix: prefix.clone(),
                })
                .await?,
            ))),
            #[cfg(not(feature = "s3"))]
            BlobConfig::S3 { .. } => Err(StoreError::NotCompiled { backend: "s3" }),
        }
    }
}

impl Deref for BlobStore {
    type Target = dyn BlobBackend;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// What callvault asks of an object store. Sealed: implemented only in this crate, and every
/// implementation passes `tests/conformance`.
#[async_trait::async_trait]
pub trait BlobBackend: crate::meta::Sealed + Send + Sync {
    fn backend_name(&self) -> &'static str;
    /// Stores `data` under `name` atomically and durably: when this returns Ok the blob survives a
    /// crash, and before it returns no reader can see a partial blob. Refuses to overwrite.
    async fn put(&self, name: &BlobName, data: Vec<u8>) -> Result<(), StoreError>;
    /// Opens a blob for ranged reading.
    async fn open(&self, name: &BlobName) -> Result<Box<dyn BlobRead>, StoreError>;
    /// Removes a blob; removing a missing blob is not an error (deletion is idempotent).
    async fn delete(&self, name: &BlobName) -> Result<(), StoreError>;
    /// Every blob whose `put` returned, each once. An inventory for operators and benchmarks,
    /// never a proof of deletion: a multi-node object store may list a just-deleted blob for a
    /// moment, while `open` of it already fails.
    async fn list(&self) -> Result<Vec<BlobName>, StoreError>;
}
