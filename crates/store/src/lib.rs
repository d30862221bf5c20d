//! Where callvault keeps things: a [`MetadataStore`] (rows: tenants, users, recordings' metadata
//! and age headers, the audit chain) and a [`BlobStore`] (opaque encrypted payloads).
//!
//! Each is a concrete handle over a sealed trait (for metadata, the union of one trait per
//! concern) with one adapter per backend behind a Cargo feature; only this crate knows which
//! backend is in use. Nothing here encrypts or decrypts: callers hand in ciphertext, sealed
//! keys and keyed hashes. The conformance suites in `tests/` run unchanged against every adapter.
#![forbid(unsafe_code)]

mod blob;
mod error;
mod meta;
mod model;

pub use blob::{BlobBackend, BlobConfig, BlobRead, BlobStore};
pub use error::StoreError;
#[cfg(feature = "postgres")]
pub use meta::postgres::tls::{PostgresTransport, SslMode as PostgresSslMode, postgres_transport};
pub use meta::{
    AuditStore, CoordinationStore, IdentityStore, LifecycleStore, LiveStore, MetaBackend,
    MetadataConfig, MetadataStore, RecordingStore,
};
pub use model::*;
pub use secrecy::SecretString;
