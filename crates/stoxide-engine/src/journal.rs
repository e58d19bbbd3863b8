//! The journal: every engine write goes through one task that commits them in groups (one
//! transaction for whatever has queued up), so a fan-out to hundreds of users costs a handful of
//! commits, not hundreds. Writes that must be durable before the engine acts (a signal's intents,
//! before their orders are sent) are awaited; outcomes recorded after the fact are queued.

use std::time::Duration;

use stoxide_store::{EngineWrite, Store, WriteOutcome};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::records::chain;

/// Writes queued at most; a full queue makes writers wait (back-pressure, never loss).
const QUEUE: usize = 4096;
/// At most this many writes share a transaction.
const GROUP: usize = 512;

struct Request {
    write: EngineWrite,
    done: Option<oneshot::Sender<std::result::Result<WriteOutcome, String>>>,
}

/// The handle writers hold. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Journal {
    tx: mpsc::Sender<Request>,
    failures: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Request")
    }
}

impl Journal {
    /// Starts the writer task; it drains what is queued and ends when `stop` is cancelled and
    /// every handle is gone.
    pub(crate) fn start(store: Store, stop: CancellationToken) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let failures = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let task = tokio::spawn(run(store, rx, stop, failures.clone()));
        (Self { tx, failures }, task)
    }

    /// Writes and waits for the commit.
    ///
    /// # Errors
    /// The store's error, or [`Error::Stopped`].
    pub(crate) async fn write(&self, write: EngineWrite) -> Result<WriteOutcome> {
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Request {
                write,
                done: Some(done),
            })
            .await
            .map_err(|_| Error::Stopped)?;
        answer
            .await
            .map_err(|_| Error::Stopped)?
            .map_err(|e| Error::Invalid(format!("the engine's records could not be written: {e}")))
    }

    /// Queues a write (waiting only while the queue is full).
    pub(crate) async fn record(&self, write: EngineWrite) {
        if self.tx.send(Request { write, done: None }).await.is_err() {
            tracing::error!("the journal has stopped; a record was not written");
            self.failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Writes that failed for good (each logged).
    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }
}

async fn run(
    store: Store,
    mut rx: mpsc::Receiver<Request>,
    stop: CancellationToken,
    failures: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            () = stop.cancelled() => {
                // Drain what is queued, then end.
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = first else { return };
        let mut group = vec![first];
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        let writes: Vec<EngineWrite> = group.iter().map(|r| r.write.clone()).collect();
        let mut result = store.write_engine(&writes, &chain).await;
        // A busy database (another process's long transaction) is waited out a little.
        for delay in [50u64, 200, 1000] {
            match &result {
                Err(e) if e.is_retryable() => {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    result = store.write_engine(&writes, &chain).await;
                }
                _ => break,
            }
        }
        match result {
            Ok(outcomes) => {
                for (r, o) in group.into_iter().zip(outcomes) {
                    if let Some(done) = r.done {
                        let _ = done.send(Ok(o));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = group.len(), "engine records could not be written");
                for r in group {
                    match r.done {
                        Some(done) => {
                            let _ = done.send(Err(e.to_string()));
                        }
                        None => {
                            failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
            }
        }
    }
}
