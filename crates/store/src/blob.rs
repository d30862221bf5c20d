//! The blob store: opaque, randomly named, encrypted payloads. A listing reveals nothing (T2).

use crate::StoreError;
use callvault_core::BlobName;
use std::io::{Read, Seek};
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

#[cfg(feature = "local")]
mod local;

/// A payload opened for reading: sync, because decryption runs on a blocking thread and age's
/// seekable reader wants `Read + Seek`.
pub trait BlobRead: Read + Seek + Send {}
impl<T: Read + Seek + Send> BlobRead for T {}

#[derive(Debug, Clone)]
pub enum BlobConfig {
    Local { path: PathBuf },
    S3 { bucket: String },
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
    async fn list(&self) -> Result<Vec<BlobName>, StoreError>;
}
