//! Local directory adapter. Layout: `objects/<2 hex>/<name>` plus `tmp/` for writes in flight.
//! Atomicity: write to `tmp/`, fsync, hard-link into place (which, unlike a rename, never
//! replaces an existing blob), remove the temporary name, fsync the directory.

use super::{BlobBackend, BlobRead};
use crate::StoreError;
use crate::meta::Sealed;
use callvault_core::BlobName;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub(super) struct Local {
    root: PathBuf,
}

impl Sealed for Local {}

/// A write in flight is done in seconds; a temporary file older than this was abandoned.
pub const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(3600);

fn mkdir(p: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(p)
}

impl Local {
    pub(super) async fn open(root: PathBuf) -> Result<Self, StoreError> {
        tokio::task::spawn_blocking(move || {
            mkdir(&root.join("objects"))?;
            mkdir(&root.join("tmp"))?;
            // Leftovers in tmp/ are writes that never completed; they were never visible. Only
            // old ones go: another process on the same directory (a running server while a CLI
            // verb opens the store) may be writing the fresh ones right now.
            for e in fs::read_dir(root.join("tmp"))? {
                let e = e?;
                let age = e.metadata()?.modified()?.elapsed().unwrap_or_default();
                if age > STALE_TMP {
                    let _ = fs::remove_file(e.path());
                }
            }
            Ok(Self { root })
        })
        .await?
    }

    fn path_of(&self, name: &BlobName) -> PathBuf {
        let s = name.to_string();
        self.root.join("objects").join(&s[1..3]).join(&s)
    }
}

fn write_tmp(tmp: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    f.write_all(data)?;
    f.sync_all()
}

fn sync_dir(p: &Path) -> std::io::Result<()> {
    fs::File::open(p)?.sync_all()
}

#[async_trait::async_trait]
impl BlobBackend for Local {
    fn backend_name(&self) -> &'static str {
        "local"
    }

    async fn put(&self, name: &BlobName, data: Vec<u8>) -> Result<(), StoreError> {
        let dest = self.path_of(name);
        // A fresh temporary name per write, so concurrent puts of one name do not collide in tmp/.
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{name}.{}", BlobName::random()));
        tokio::task::spawn_blocking(move || {
            if dest.exists() {
                return Err(StoreError::Conflict("blob exists".into()));
            }
            let dir = dest
                .parent()
                .ok_or_else(|| StoreError::Backend("blob path has no parent".into()))?;
            let placed = write_tmp(&tmp, &data).and_then(|()| {
                mkdir(dir)?;
                // link(2), unlike rename(2), refuses to replace an existing name: of concurrent
                // puts exactly one wins, and an existing blob is never overwritten.
                fs::hard_link(&tmp, &dest)
            });
            let _ = fs::remove_file(&tmp);
            match placed {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(StoreError::Conflict("blob exists".into()));
                }
                Err(e) => return Err(e.into()),
            }
            sync_dir(dir)?;
            Ok(())
        })
        .await?
    }

    async fn open(&self, name: &BlobName) -> Result<Box<dyn BlobRead>, StoreError> {
        let path = self.path_of(name);
        tokio::task::spawn_blocking(move || match fs::File::open(&path) {
            Ok(f) => Ok(Box::new(f) as Box<dyn BlobRead>),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound),
            Err(e) => Err(e.into()),
        })
        .await?
    }

    async fn delete(&self, name: &BlobName) -> Result<(), StoreError> {
        let path = self.path_of(name);
        tokio::task::spawn_blocking(move || match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        })
        .await?
    }

    async fn list(&self) -> Result<Vec<BlobName>, StoreError> {
        let objects = self.root.join("objects");
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for shard in fs::read_dir(&objects)? {
                for e in fs::read_dir(shard?.path())? {
                    let name = e?.file_name();
                    let name = name.to_string_lossy();
                    out.push(BlobName::parse(&name).map_err(|e| {
                        StoreError::Corrupt(format!("stray file in blob store: {e}"))
                    })?);
                }
            }
            Ok(out)
        })
        .await?
    }
}
