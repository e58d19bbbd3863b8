//! The consumer side: event streams with bounded memory, one per consumer.
//!
//! A streamer fans its events out to every consumer it has ([`Fanout`]); each consumer has a
//! queue of its own and chooses its slow-consumer [`Policy`], and none can steal another's
//! ticks or hold the socket up:
//! - [`Policy::Latest`]: ticks are coalesced to the latest value per instrument until the
//!   consumer takes them, so memory is bounded by the number of subscribed instruments (a
//!   dashboard, a live table).
//! - [`Policy::Lossless`]: every tick in order, in a buffer of bounded size; when a slow
//!   consumer lets it fill, the oldest ticks are dropped and the consumer is told
//!   ([`FeedEvent::Lagged`] with how many) before it gets the rest (a strategy, a recorder).
//!
//! Status events (connected, reconnecting, ...) are kept in order in a queue of bounded length;
//! when it is full the oldest is dropped (and counted). A consumer that keeps up sees every tick.

use std::collections::VecDeque;
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
    /// A lossless consumer fell behind: this many ticks were dropped (the oldest first) before
    /// the ones that follow.
    Lagged { dropped: u64 },
}

/// What a consumer's queue does when the consumer is slower than the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Keep the latest tick per instrument.
    Latest,
    /// Keep every tick, at most `capacity` of them; past that, drop the oldest and say so.
    Lossless { capacity: usize },
}

#[derive(Debug, Default)]
struct Queue {
    status: VecDeque<FeedEvent>,
    /// Latest: one tick per instrument, `index` says where.
    ticks: Vec<Tick>,
    /// (foldhash, not SipHash: a lookup a tick on the socket task's path)
    index: hashbrown::HashMap<upstox_types::InstrumentKey, usize>,
    /// Lossless: batches in order, `buffered` ticks in all.
    batches: VecDeque<Vec<Tick>>,
    buffered: usize,
    /// Lossless: ticks dropped since the consumer was last told.
    lagged: u64,
    closed: bool,
}

/// One consumer's queue, shared between the socket task (producer) and its [`EventStream`].
#[derive(Debug)]
pub(crate) struct EventQueue {
    queue: Mutex<Queue>,
    notify: Notify,
    status_cap: usize,
    policy: Policy,
    coalesced: AtomicU64,
    dropped_status: AtomicU64,
    dropped_ticks: AtomicU64,
    ticks_in: AtomicU64,
}

impl EventQueue {
    pub(crate) fn new(status_cap: usize) -> Arc<Self> {
        Self::with_policy(status_cap, Policy::Latest)
    }

    pub(crate) fn with_policy(status_cap: usize, policy: Policy) -> Arc<Self> {
        let policy = match policy {
            Policy::Lossless { capacity } => Policy::Lossless {
                capacity: capacity.max(1),
            },
            p => p,
        };
        Arc::new(Self {
            queue: Mutex::default(),
            notify: Notify::new(),
            status_cap: status_cap.max(1),
            policy,
            coalesced: AtomicU64::new(0),
            dropped_status: AtomicU64::new(0),
            dropped_ticks: AtomicU64::new(0),
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
        match self.policy {
            Policy::Latest if q.ticks.is_empty() && adopt(&mut q.index, &ticks) => {
                // The consumer has taken everything: this batch becomes the table as it is,
                // its ticks not copied one by one (a fifth of the streamer's time had been
                // those copies of 216-byte ticks).
                q.ticks = ticks;
            }
            Policy::Latest => {
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
            }
            Policy::Lossless { capacity } => {
                q.buffered += ticks.len();
                q.batches.push_back(ticks);
                // Over the bound: drop the oldest ticks, whole batches first, then the front
                // of the oldest batch left.
                while q.buffered > capacity {
                    let excess = q.buffered - capacity;
                    let Some(front) = q.batches.front_mut() else { break };
                    let n = excess.min(front.len());
                    front.drain(..n);
                    if front.is_empty() {
                        q.batches.pop_front();
                    }
                    q.buffered -= n;
                    q.lagged += n as u64;
                    self.dropped_ticks.fetch_add(n as u64, Ordering::Relaxed);
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
        if q.lagged > 0 {
            let dropped = std::mem::take(&mut q.lagged);
            return Some(Some(FeedEvent::Lagged { dropped }));
        }
        if let Some(batch) = q.batches.pop_front() {
            q.buffered -= batch.len();
            return Some(Some(FeedEvent::Ticks(batch)));
        }
        if !q.ticks.is_empty() {
            let q = &mut *q;
            // Clearing a table costs its capacity (thousands of instruments subscribed), so a
            // batch much smaller than that takes its own keys out instead.
            if q.ticks.len() * 8 < q.index.capacity() {
                for t in &q.ticks {
                    q.index.remove(&t.instrument_key);
                }
            } else {
                q.index.clear();
            }
            // The next frame's batch is usually adopted whole (`push_ticks`), so no storage is
            // set aside for it here.
            return Some(Some(FeedEvent::Ticks(std::mem::take(&mut q.ticks))));
        }
        if q.closed { Some(None) } else { None }
    }
}

/// Indexes `ticks` as an empty latest-value table's contents; `false` (and the index left empty)
/// when an instrument appears twice among them, which the one-by-one path then coalesces.
fn adopt(index: &mut hashbrown::HashMap<upstox_types::InstrumentKey, usize>, ticks: &[Tick]) -> bool {
    for (i, t) in ticks.iter().enumerate() {
        if index.insert(t.instrument_key.clone(), i).is_some() {
            index.clear();
            return false;
        }
    }
    true
}

/// A streamer's consumers: every event goes to each live consumer's queue. A consumer whose
/// stream was dropped is forgotten.
#[derive(Debug)]
pub(crate) struct Fanout {
    queues: Mutex<Vec<std::sync::Weak<EventQueue>>>,
    status_cap: usize,
}

impl Fanout {
    pub(crate) fn new(status_cap: usize) -> Arc<Self> {
        Arc::new(Self {
            queues: Mutex::new(Vec::new()),
            status_cap,
        })
    }

    /// A new consumer with `policy`; it sees the events from now on.
    pub(crate) fn subscribe(&self, policy: Policy) -> EventStream {
        let q = EventQueue::with_policy(self.status_cap, policy);
        self.queues.lock().push(Arc::downgrade(&q));
        EventStream::coalescing(q)
    }

    fn live(&self) -> Vec<Arc<EventQueue>> {
        let mut queues = self.queues.lock();
        queues.retain(|w| w.strong_count() > 0);
        queues.iter().filter_map(std::sync::Weak::upgrade).collect()
    }

    pub(crate) fn push_status(&self, e: FeedEvent) {
        for q in self.live() {
            q.push_status(e.clone());
        }
    }

    pub(crate) fn push_ticks(&self, ticks: Vec<Tick>) {
        let live = self.live();
        let Some((last, rest)) = live.split_last() else { return };
        for q in rest {
            q.push_ticks(ticks.clone());
        }
        last.push_ticks(ticks);
    }

    pub(crate) fn close(&self, diagnosis: Option<Diagnosis>) {
        for q in self.live() {
            q.close(diagnosis.clone());
        }
    }
}

/// The consumer's end: live streams follow their [`Policy`] (see the module docs); replays are
/// lossless and wait for the consumer instead.
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

    /// Ticks a lossless consumer lost by falling behind (each loss also reported in order as
    /// [`FeedEvent::Lagged`]).
    pub fn dropped_ticks(&self) -> u64 {
        self.queue.dropped_ticks.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::{FrameKind, Ltpc, RequestMode, TickData};

    fn tick(key: &str, ltp: f64) -> Tick {
        Tick {
            instrument_key: format!("NSE_EQ|{key}").parse().expect("key"),
            kind: FrameKind::Live,
            mode: RequestMode::Ltpc,
            current_ts: 0,
            data: TickData::Ltpc(Ltpc { ltp, ..Ltpc::default() }),
        }
    }

    #[test]
    fn every_consumer_gets_every_event_under_its_own_policy() {
        let fan = Fanout::new(8);
        let latest = fan.subscribe(Policy::Latest);
        let lossless = fan.subscribe(Policy::Lossless { capacity: 10 });
        let gone = fan.subscribe(Policy::Latest);
        drop(gone);
        fan.push_status(FeedEvent::Connected { attempt: 1 });
        for i in 0..25 {
            fan.push_ticks(vec![tick("A", f64::from(i)), tick("B", f64::from(i))]);
        }
        // Both see the status; the latest consumer one tick per instrument, the last ones.
        assert_eq!(latest.try_next(), Some(FeedEvent::Connected { attempt: 1 }));
        let Some(FeedEvent::Ticks(t)) = latest.try_next() else {
            panic!("ticks")
        };
        assert_eq!(
            t.iter().map(|t| t.ltpc().map(|l| l.ltp)).collect::<Vec<_>>(),
            [Some(24.0), Some(24.0)]
        );
        assert_eq!(lossless.try_next(), Some(FeedEvent::Connected { attempt: 1 }));
        // The lossless consumer is told what it lost, then gets the newest ten in order.
        assert_eq!(lossless.try_next(), Some(FeedEvent::Lagged { dropped: 40 }));
        let mut got = Vec::new();
        while let Some(FeedEvent::Ticks(batch)) = lossless.try_next() {
            got.extend(batch.iter().filter_map(|t| t.ltpc().map(|l| l.ltp)));
        }
        assert_eq!(got, [20.0, 20.0, 21.0, 21.0, 22.0, 22.0, 23.0, 23.0, 24.0, 24.0]);
        assert_eq!(lossless.dropped_ticks(), 40);
        assert_eq!(latest.dropped_ticks(), 0);
        // A consumer that keeps up loses nothing.
        fan.push_ticks(vec![tick("C", 1.0)]);
        assert_eq!(
            lossless
                .try_next()
                .map(|e| matches!(e, FeedEvent::Ticks(t) if t.len() == 1)),
            Some(true)
        );
        assert_eq!(fan.queues.lock().len(), 2, "the dropped consumer was forgotten");
        fan.close(None);
        assert_eq!(lossless.try_next(), None);
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

    /// The (instrument id, ltp) of the ticks in a batch, in order.
    fn ltps(e: Option<FeedEvent>) -> Vec<(String, f64)> {
        match e {
            Some(FeedEvent::Ticks(t)) => t
                .iter()
                .map(|t| (t.instrument_key.id().to_owned(), t.ltpc().map_or(f64::NAN, |l| l.ltp)))
                .collect(),
            other => panic!("ticks expected, got {other:?}"),
        }
    }

    fn want(expected: &[(&str, f64)]) -> Vec<(String, f64)> {
        expected.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn small_batches_after_a_big_one_are_indexed_afresh() {
        let q = EventQueue::new(4);
        let s = EventStream::coalescing(q.clone());
        q.push_ticks((0..1000).map(|i| tick(&format!("K{i}"), 0.0)).collect());
        assert!(matches!(s.try_next(), Some(FeedEvent::Ticks(t)) if t.len() == 1000));
        // Each small batch (its keys taken out of the big table one by one) starts clean.
        q.push_ticks(vec![tick("A", 1.0), tick("B", 1.0)]);
        q.push_ticks(vec![tick("A", 2.0)]);
        assert_eq!(ltps(s.try_next()), want(&[("A", 2.0), ("B", 1.0)]));
        q.push_ticks(vec![tick("B", 3.0)]);
        assert_eq!(ltps(s.try_next()), want(&[("B", 3.0)]));
        q.push_ticks(vec![tick("A", 4.0)]);
        q.push_ticks(vec![tick("A", 5.0)]);
        assert_eq!(ltps(s.try_next()), want(&[("A", 5.0)]));
        assert!(s.try_next().is_none());
    }

    #[test]
    fn a_batch_taken_whole_still_keeps_one_tick_per_instrument() {
        let q = EventQueue::new(4);
        let s = EventStream::coalescing(q.clone());
        // Into an empty queue, one instrument twice in a batch: the later tick is kept.
        q.push_ticks(vec![tick("A", 1.0), tick("B", 1.0), tick("A", 2.0)]);
        assert_eq!(s.coalesced(), 1);
        // A batch adopted whole, then later ones coalesced into it and appended to it.
        q.push_ticks(vec![tick("C", 3.0)]);
        assert_eq!(ltps(s.try_next()), want(&[("A", 2.0), ("B", 1.0), ("C", 3.0)]));
        q.push_ticks(vec![tick("D", 4.0), tick("E", 4.0)]);
        q.push_ticks(vec![tick("E", 5.0), tick("F", 5.0)]);
        q.push_ticks(vec![tick("D", 6.0)]);
        assert_eq!(ltps(s.try_next()), want(&[("D", 6.0), ("E", 5.0), ("F", 5.0)]));
        assert_eq!(s.coalesced(), 3);
        assert!(s.try_next().is_none());
    }
}
