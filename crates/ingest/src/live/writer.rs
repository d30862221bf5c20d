//! Group commit for journal chunks: every acknowledgement waits for a durable transaction, and
//! all chunks that arrive while one transaction commits go into the next, whatever call they
//! belong to. One fsync (SQLite, `synchronous=FULL`) or one PostgreSQL commit then covers
//! thousands of chunks.

use callvault_store::{ChunkOutcome, LiveChunk, MetadataStore};
use tokio::sync::{mpsc, oneshot};

/// Most chunks in one transaction (about 20 MB of stereo G.711 at 200 ms chunks).
const MAX_BATCH: usize = 8192;

type Reply = oneshot::Sender<Result<ChunkOutcome, String>>;

#[derive(Clone)]
pub struct ChunkWriter {
    tx: mpsc::Sender<(LiveChunk, Reply)>,
}

impl ChunkWriter {
    pub fn start(store: MetadataStore, metrics: crate::metrics::SharedMetrics) -> Self {
        let (tx, mut rx) = mpsc::channel::<(LiveChunk, Reply)>(MAX_BATCH * 2);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (chunks, replies): (Vec<LiveChunk>, Vec<Reply>) = batch.drain(..).unzip();
                let started = std::time::Instant::now();
                let appended = store
                    .append_live_chunks(&chunks, crate::clock::unix_now())
                    .await;
                metrics.live_group_commit.observe(started.elapsed());
                match appended {
                    Ok(outcomes) => {
                        for (reply, o) in replies.into_iter().zip(outcomes) {
                            let _ = reply.send(Ok(o));
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        tracing::error!(error = %msg, chunks = chunks.len(), "journal append failed; those chunks are not acknowledged");
                        for reply in replies {
                            let _ = reply.send(Err(msg.clone()));
                        }
                    }
                }
            }
        });
        Self { tx }
    }

    /// Returns once the chunk is durable (or refused); never acknowledges before the commit.
    pub async fn write(&self, chunk: LiveChunk) -> Result<ChunkOutcome, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((chunk, reply))
            .await
            .map_err(|_| "the journal writer has stopped".to_owned())?;
        rx.await
            .map_err(|_| "the journal writer has stopped".to_owned())?
    }
}
