/// Storage failures, in terms a caller can act on. Backend detail stays in the message for logs;
/// the HTTP edge shows users only a generic text.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists: {0}")]
    Conflict(String),
    #[error(
        "the {backend} backend is not compiled into this binary; rebuild with `--features {backend}`"
    )]
    NotCompiled { backend: &'static str },
    #[error(
        "database schema version {found} is newer than this callvault supports ({supported}); upgrade callvault"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    /// The configuration cannot work; the message says which setting and what to do.
    #[error("invalid storage configuration: {0}")]
    Config(String),
    /// The blob bucket answers anonymous requests; callvault refuses to use it.
    #[error("{0}")]
    PublicBucket(String),
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    #[error("storage backend error: {0}")]
    Backend(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<tokio::task::JoinError> for StoreError {
    fn from(e: tokio::task::JoinError) -> Self {
        StoreError::Backend(format!("storage task failed: {e}"))
    }
}
