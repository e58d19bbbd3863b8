//! The consumer side: an event stream with bounded memory.
//!
//! Slow-consumer policy: ticks are coalesced to the latest value per instrument until the
//! consumer takes them, so memory is bounded by the number of subscribed instruments and the
//! socket task never waits for the consumer. Status events (connected, reconnecting, ...) are
//! kept in order in a queue of bounded length; when it is full the oldest is dropped (and
//! counted). A consumer that keeps up sees every tick.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::error::Diagnosis;
use crate::tick::{MarketInfo, Tick};

/// What a streamer reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FeedEvent {
    /// Connected (attempt 1 is the first connection).
    Connected { attempt: u32 },
    /// The first frame of every connection.
    MarketInfo(MarketInfo),
    /// Ticks since the last call, at most one per instrument.
    Ticks(Vec<Tick>),
    /// The connection ended.
    Disconnected { reason: String },
    /// Waiting `delay` before connection attempt `attempt`.
    Reconnecting {
        attempt: u32,
        delay: Duration,
        reason: String,
    },
    /// An order, position, holding or GTT update (portfolio stream; never coalesced).
    Portfolio(crate::portfolio::PortfolioUpdate),
    /// The token was refused (or is missing); waiting for the token source to yield a new one
    /// (only with `StreamerConfig::await_new_token`).
    WaitingForToken { reason: String },
    /// Stopped for good; no more events follow.
    Stopped(Diagnosis),
}

#[derive(Debug, Default)]
struct Queue {
    status: VecDeque<FeedEvent>,
    ticks: Vec<Tick>,
    index: HashMap<String, usize>,
    closed: bool,
}

/// Shared between the socket task (producer) and the [`EventStream`] (consumer).
#[derive(Debug)]
pub(crate) struct EventQueue {
    queue: Mutex<Queue>,
    notify: Notify,
    status_cap: usize,
    coalesced: AtomicU64,
    dropped_status: AtomicU64,
    ticks_in: AtomicU64,
}

impl EventQueue {
    pub(crate) fn new(status_cap: usize) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::default(),
            notify: Notify::new(),
            status_cap: status_cap.max(1),
            coalesced: AtomicU64::new(0),
            dropped_status: AtomicU64::new(0),
            ticks_in: AtomicU64::new(0),
        })
    }

    pub(crate) fn push_status(&self, e: FeedEvent) {
        let mut q = self.queue.lock();
        if q.status.len() >= self.status_cap {
            q.status.pop_front();
            self.dropped_status.fetch_add(1, Ordering::Relaxed);
        }
        q.status.push_back(e);
        drop(q);
        self.notify.notify_one();
    }

    pub(crate) fn push_ticks(&self, ticks: Vec<Tick>) {
        if ticks.is_empty() {
            return;
        }
        self.ticks_in.fetch_add(ticks.len() as u64, Ordering::Relaxed);
        let mut q = self.queue.lock();
        for t in ticks {
            match q.index.get(&t.instrument_key) {
                Some(&i) => {
                    q.ticks[i] = t;
                    self.coalesced.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    let i = q.ticks.len();
                    q.index.insert(t.instrument_key.clone(), i);
                    q.ticks.push(t);
                }
            }
        }
        drop(q);
        self.notify.notify_one();
    }

    pub(crate) fn close(&self, diagnosis: Option<Diagnosis>) {
        let mut q = self.queue.lock();
        if let Some(d) = diagnosis {
            q.status.push_back(FeedEvent::Stopped(d));
        }
        q.closed = true;
        drop(q);
        self.notify.notify_one();
    }

    fn take(&self) -> Option<Option<FeedEvent>> {
        let mut q = self.queue.lock();
        if let Some(e) = q.status.pop_front() {
            return Some(Some(e));
        }
        if !q.ticks.is_empty() {
            q.index.clear();
            return Some(Some(FeedEvent::Ticks(std::mem::take(&mut q.ticks))));
        }
        if q.closed { Some(None) } else { None }
    }
}

/// The consumer's end: live streams coalesce (see the module docs); replays are lossless and
/// wait for the consumer instead.
#[derive(Debug, Clone)]
pub struct EventStream {
    pub(crate) queue: Arc<EventQueue>,
    pub(crate) lossless: Option<Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<FeedEvent>>>>,
}

impl EventStream {
    pub(crate) fn coalescing(queue: Arc<EventQueue>) -> Self {
        Self { queue, lossless: None }
    }

    /// A stream fed through a bounded channel: the producer waits for the consumer.
    pub(crate) fn lossless(rx: tokio::sync::mpsc::Receiver<FeedEvent>) -> Self {
        Self {
            queue: EventQueue::new(1),
            lossless: Some(Arc::new(tokio::sync::Mutex::new(rx))),
        }
    }

    /// The next event; `None` once the streamer has stopped and everything was taken.
    ///
    /// Cancellation safe: nothing is lost if the future is dropped.
    pub async fn next(&self) -> Option<FeedEvent> {
        if let Some(rx) = &self.lossless {
            return rx.lock().await.recv().await;
        }
        loop {
            let notified = self.queue.notify.notified();
            if let Some(e) = self.queue.take() {
                return e;
            }
            notified.await;
        }
    }

    /// An event if one is ready now.
    pub fn try_next(&self) -> Option<FeedEvent> {
        if let Some(rx) = &self.lossless {
            return rx.try_lock().ok().and_then(|mut r| r.try_recv().ok());
        }
        self.queue.take().flatten()
    }

    /// Ticks replaced by a newer tick of the same instrument before the consumer took them.
    pub fn coalesced(&self) -> u64 {
        self.queue.coalesced.load(Ordering::Relaxed)
    }

    /// Ticks received from the wire.
    pub fn ticks_received(&self) -> u64 {
        self.queue.ticks_in.load(Ordering::Relaxed)
    }

    /// Status events dropped because the consumer left the queue full.
    pub fn dropped_status_events(&self) -> u64 {
        self.queue.dropped_status.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::{FrameKind, Ltpc, RequestMode, TickData};

    fn tick(key: &str, ltp: f64) -> Tick {
        Tick {
            instrument_key: key.into(),
            kind: FrameKind::Live,
            mode: RequestMode::Ltpc,
            current_ts: 0,
            data: TickData::Ltpc(Ltpc { ltp, ..Ltpc::default() }),
        }
    }

    #[test]
    fn a_slow_consumer_gets_the_latest_value_per_instrument_in_bounded_memory() {
        let q = EventQueue::new(4);
        let s = EventStream::coalescing(q.clone());
        for i in 0..10_000 {
            q.push_ticks(vec![tick("A", f64::from(i)), tick("B", f64::from(i))]);
        }
        for i in 0..10 {
            q.push_status(FeedEvent::Disconnected { reason: i.to_string() });
        }
        // Status first, only the last 4 kept.
        let mut reasons = Vec::new();
        while let Some(FeedEvent::Disconnected { reason }) = s.try_next() {
            reasons.push(reason);
            if reasons.len() == 4 {
                break;
            }
        }
        assert_eq!(reasons, vec!["6", "7", "8", "9"]);
        let Some(FeedEvent::Ticks(t)) = s.try_next() else {
            panic!("ticks expected")
        };
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].ltpc().map(|l| l.ltp), Some(9999.0));
        assert_eq!(s.coalesced(), 2 * 9999);
        assert_eq!(s.dropped_status_events(), 6);
        assert!(s.try_next().is_none());
    }
}
