//! Storing a sealed recording: the one way a recording enters the vault, shared by file upload
//! and live assembly (and bulk import next), so that every path keeps the same order and undoes
//! the same way:
//!
//! 1. the payload goes to the blob store under the recording's random blob name;
//! 2. the audit entry is committed — if it cannot be, the payload is removed and nothing is
//!    stored (fail closed: no recording without its entry);
//! 3. the row is written (header, metadata); if that fails, the payload is removed and the
//!    audit record is corrected with an `error` entry;
//! 4. the waveform peaks, if any, are stored last: derived data, so a failure is logged and
//!    the recording stands.
//!
//! It must not: see plaintext (everything arrives sealed to the tenant), or decide admission
//! (callers ask `lifecycle::policy::admit_call` first).

use crate::audit_log::{AuditLog, Event};
use callvault_store::{BlobStore, MetadataStore, Recording, StoreError};

/// Where a recording goes: the two stores and the audit record.
pub struct Vault<'a> {
    pub meta: &'a MetadataStore,
    pub blobs: &'a BlobStore,
    pub audit: &'a AuditLog,
}

/// A recording sealed to its tenant, ready to store: `rec.header` is the age header and
/// `rec.blob` the random name the payload goes under.
pub struct Sealed {
    pub rec: Recording,
    pub payload: Vec<u8>,
    /// Waveform peaks sealed to the tenant, for the console.
    pub peaks: Option<Vec<u8>>,
}

/// How the row is written.
pub enum Row<'a> {
    /// A new recording (upload, import): an existing id is a conflict.
    New,
    /// A live call's recording: replaces the call's journal in one transaction, keeping
    /// `outcome` (the call's summary) with it. Another node may have stored it first.
    LiveCall { outcome: &'a str },
}

#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    Now,
    /// A live call another node stored first; nothing was changed.
    Already,
}

#[derive(Debug, thiserror::Error)]
pub enum StoringError {
    #[error("the audit record could not be written, so the recording was not stored: {0}")]
    AuditUnavailable(String),
    #[error("storing the recording: {0}")]
    Store(#[from] StoreError),
}

impl Vault<'_> {
    /// Stores `sealed` as `entry` says (the `ok` audit entry of the store, naming the
    /// recording).
    pub async fn store(
        &self,
        sealed: Sealed,
        entry: Event,
        row: Row<'_>,
    ) -> Result<Stored, StoringError> {
        let Sealed {
            rec,
            payload,
            peaks,
        } = sealed;
        self.blobs.put(&rec.blob, payload).await?;
        if let Err(e) = self.audit.record(entry.clone()).await {
            self.discard_payload(&rec).await;
            return Err(StoringError::AuditUnavailable(e));
        }
        let written = match row {
            Row::New => self.meta.insert_recording(&rec).await,
            Row::LiveCall { outcome } => match self.meta.store_live_call(&rec, outcome).await {
                Err(StoreError::Conflict(_)) => {
                    self.discard_payload(&rec).await;
                    return Ok(Stored::Already);
                }
                other => other,
            },
        };
        if let Err(e) = written {
            // Not stored after all: remove the payload and correct the record.
            self.discard_payload(&rec).await;
            let correction = Event {
                result: "error",
                details: None,
                ..entry
            };
            if let Err(audit) = self.audit.record(correction).await {
                tracing::error!(recording = %rec.id, error = %audit, "the failed store could not be corrected in the audit record");
            }
            return Err(e.into());
        }
        // Peaks are derived data: a recording without them still plays.
        if let Some(enc) = peaks
            && let Err(e) = self.meta.put_peaks(&rec.id, &enc).await
        {
            tracing::warn!(recording = %rec.id, error = %e, "waveform peaks not stored");
        }
        Ok(Stored::Now)
    }

    /// Removes a payload whose recording was not stored. A payload left behind is unreadable
    /// without its header, which was never stored; the failure is logged for the operator.
    async fn discard_payload(&self, rec: &Recording) {
        if let Err(e) = self.blobs.delete(&rec.blob).await {
            tracing::warn!(recording = %rec.id, error = %e, "the payload of a recording that was not stored could not be removed");
        }
    }
}
