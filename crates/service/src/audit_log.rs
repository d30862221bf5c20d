//! The audit writer: group commit and signed checkpoints.
//!
//! Handlers call [`AuditLog::record`] and await it; many concurrent calls are gathered into one
//! database transaction (one fsync), so durable appends stay cheap. `record` returns only after
//! the entry is durable; if it fails, the caller must not perform the action (fail closed).

use callvault_audit::sink::FileSink;
use callvault_audit::{Checkpoint, Entry, StoredEntry};
use callvault_store::MetadataStore;
use ed25519_dalek::SigningKey;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// The lease that decides which node signs checkpoints.
pub const CHECKPOINT_LEASE: &str = "audit-checkpoint";
/// The lease that decides which node verifies the chain periodically.
const VERIFY_LEASE: &str = "audit-verify";

/// Most entries committed in one transaction.
const MAX_BATCH: usize = 4096;

type Reply = oneshot::Sender<Result<u64, String>>;

#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<(Entry, Reply)>,
    since_checkpoint: Arc<AtomicU64>,
    checkpoint_due: Arc<Notify>,
    every: u64,
}

/// Who did something, from where, to what: the fields every entry shares.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub actor: String,
    pub tenant: Option<String>,
    pub action: &'static str,
    pub target: Option<String>,
    pub purpose: Option<String>,
    pub result: &'static str,
    pub client: Option<String>,
    pub details: Option<serde_json::Value>,
}

impl AuditLog {
    /// Starts the writer task.
    pub fn start(store: MetadataStore, checkpoint_every: u64) -> Self {
        let (tx, mut rx) = mpsc::channel::<(Entry, Reply)>(MAX_BATCH * 4);
        let since = Arc::new(AtomicU64::new(0));
        let due = Arc::new(Notify::new());
        let log = Self {
            tx,
            since_checkpoint: since.clone(),
            checkpoint_due: due.clone(),
            every: checkpoint_every,
        };
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (entries, replies): (Vec<Entry>, Vec<Reply>) = batch.drain(..).unzip();
                let n = entries.len() as u64;
                match store.append_audit(entries).await {
                    Ok(stored) => {
                        for (reply, e) in replies.into_iter().zip(stored) {
                            let _ = reply.send(Ok(e.seq));
                        }
                        if since.fetch_add(n, Ordering::Relaxed) + n >= checkpoint_every {
                            due.notify_one();
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        tracing::error!(error = %msg, "audit append failed; the guarded actions are refused");
                        for reply in replies {
                            let _ = reply.send(Err(msg.clone()));
                        }
                    }
                }
            }
        });
        log
    }

    /// Appends one entry durably; returns its sequence number.
    pub async fn record(&self, ev: Event) -> Result<u64, String> {
        let entry = Entry {
            time: crate::clock::utc_now(),
            actor: ev.actor,
            tenant: ev.tenant,
            action: ev.action.to_owned(),
            target: ev.target,
            purpose: ev.purpose,
            result: ev.result.to_owned(),
            client: ev.client,
            details: ev.details.map(|d| d.to_string()),
        };
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((entry, reply))
            .await
            .map_err(|_| "audit writer stopped".to_string())?;
        rx.await.map_err(|_| "audit writer stopped".to_string())?
    }

    /// Signs checkpoints every `interval`, or sooner once `checkpoint_every` entries arrived.
    pub fn start_checkpointer(
        &self,
        store: MetadataStore,
        key: SigningKey,
        sink: FileSink,
        interval: Duration,
    ) {
        let since = self.since_checkpoint.clone();
        let due = self.checkpoint_due.clone();
        let node = format!("node-{:016x}", rand::random::<u64>());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = due.notified() => {}
                }
                since.store(0, Ordering::Relaxed);
                // One node signs for the whole deployment: the holder of the lease, which
                // moves to another node when the holder stops renewing it.
                let now = crate::clock::unix_now();
                let ttl = 3 * i64::try_from(interval.as_secs())
                    .unwrap_or(i64::MAX / 4)
                    .max(1);
                match store.try_lease(CHECKPOINT_LEASE, &node, now, ttl).await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::error!(error = %e, "audit checkpoint lease failed");
                        continue;
                    }
                }
                if let Err(e) = checkpoint_now(&store, &key, &sink).await {
                    tracing::error!(error = %e, "audit checkpoint failed");
                }
            }
        });
    }

    pub fn checkpoint_every(&self) -> u64 {
        self.every
    }
}

/// Signs the current head if it is newer than the last checkpoint; stores it in the database
/// and appends it to the external sink.
pub async fn checkpoint_now(
    store: &MetadataStore,
    key: &SigningKey,
    sink: &FileSink,
) -> Result<Option<Checkpoint>, String> {
    let Some(StoredEntry { seq, hash, .. }) =
        store.audit_head().await.map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let last = store
        .checkpoints()
        .await
        .map_err(|e| e.to_string())?
        .last()
        .map(|c| c.seq);
    if last.is_some_and(|l| l >= seq) {
        return Ok(None);
    }
    let cp = Checkpoint::sign(key, seq, hash, crate::clock::utc_now());
    store
        .insert_checkpoint(&cp)
        .await
        .map_err(|e| e.to_string())?;
    let sink = sink.clone();
    let cp2 = cp.clone();
    tokio::task::spawn_blocking(move || sink.append(&cp2))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("audit sink: {e}"))?;
    Ok(Some(cp))
}

/// The settings key under which the latest verification's outcome is kept for posture.
const LAST_VERIFICATION: &str = "audit.last_verification";

/// When the whole chain was last verified, and whether it was intact.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LastVerification {
    /// Unix seconds.
    pub at: i64,
    pub intact: bool,
}

pub async fn last_verification(
    store: &MetadataStore,
) -> Result<Option<LastVerification>, callvault_store::StoreError> {
    Ok(store
        .get_setting(LAST_VERIFICATION)
        .await?
        .and_then(|v| serde_json::from_slice(&v).ok()))
}

/// Verifies the chain every `every` on the one node that holds the `audit-verify` lease (its
/// own, not the checkpointer's; it lasts one interval, so it moves when its holder stops), so
/// that a broken chain is noticed without anyone asking (posture reports the outcome).
pub fn start_verifier(
    store: MetadataStore,
    key: ed25519_dalek::VerifyingKey,
    sink: FileSink,
    every: Duration,
) {
    let node = format!("verify-{}", hex::encode(rand::random::<[u8; 8]>()));
    tokio::spawn(async move {
        loop {
            let now = crate::clock::unix_now();
            let ttl = i64::try_from(every.as_secs())
                .unwrap_or(i64::MAX / 4)
                .max(1);
            if let Ok(true) = store.try_lease(VERIFY_LEASE, &node, now, ttl).await {
                match verify_all(&store, key, &sink).await {
                    Ok(Verification::Intact(_)) => {}
                    Ok(Verification::Broken(f)) => {
                        tracing::error!(finding = %f, "the audit chain does not verify");
                    }
                    Err(e) => tracing::error!(error = %e, "audit verification failed to run"),
                }
            }
            tokio::time::sleep(every).await;
        }
    });
}

/// Outcome of a full verification: the report, or the first problem found.
pub enum Verification {
    Intact(callvault_audit::Report),
    Broken(callvault_audit::Finding),
}

/// Streams the whole chain from the store through the verifier, with the database's and the
/// sink's checkpoints.
pub async fn verify_all(
    store: &MetadataStore,
    key: ed25519_dalek::VerifyingKey,
    sink: &FileSink,
) -> Result<Verification, String> {
    let checkpoints = store.checkpoints().await.map_err(|e| e.to_string())?;
    let sink = sink.clone();
    let sink_cps = tokio::task::spawn_blocking(move || sink.read_all())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let mut v = callvault_audit::Verifier::new(key, checkpoints, sink_cps);
    let mut after = 0;
    loop {
        let page = store
            .audit_range(after, 10_000)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            if let Err(f) = v.push(e) {
                record_outcome(store, false).await?;
                return Ok(Verification::Broken(f));
            }
        }
    }
    let outcome = match v.finish() {
        Ok(r) => Verification::Intact(r),
        Err(f) => Verification::Broken(f),
    };
    record_outcome(store, matches!(outcome, Verification::Intact(_))).await?;
    Ok(outcome)
}

async fn record_outcome(store: &MetadataStore, intact: bool) -> Result<(), String> {
    let last = LastVerification {
        at: crate::clock::unix_now(),
        intact,
    };
    let bytes = serde_json::to_vec(&last).map_err(|e| e.to_string())?;
    store
        .put_setting(LAST_VERIFICATION, &bytes)
        .await
        .map_err(|e| e.to_string())
}
