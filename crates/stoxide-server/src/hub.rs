//! The dashboard's market stream: one stream for the active account (`stoxide-app`'s, its token
//! from the process's vault handle), the latest quote per instrument, the stream's health, and a
//! broadcast of both to every open page (Server-Sent Events). The tasks it spawns are owned by
//! the running stream and end with it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use stoxide_app::stream::{Stream, StreamHealth, TokenFrom};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use upstox_client::UpstoxClient;
use upstox_feed::{FeedEvent, StreamerConfig};
use upstox_types::{FeedMode, InstrumentKey, PriceChange};

use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// The last price of one instrument.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Quote {
    pub ltp: f64,
    /// Previous close.
    pub cp: f64,
    pub change: f64,
    pub change_pct: f64,
    /// When the tick arrived (epoch ms), for the page's "last tick" age.
    pub received_ms: i64,
}

/// How the stream is doing: the typed health, and the dashboard's words for its state.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Health {
    #[serde(flatten)]
    pub stream: StreamHealth,
    /// The state in the dashboard's words (what the page shows).
    pub state_text: String,
    /// The last notice from the token watcher (expiry ahead, a new token picked up).
    pub notice: Option<String>,
}

impl Health {
    fn from_stream(stream: StreamHealth) -> Self {
        Self {
            state_text: crate::words::stream_state(&stream.state),
            stream,
            notice: None,
        }
    }
}

/// What pages receive.
#[derive(Debug, Clone)]
pub enum HubEvent {
    Quotes(BTreeMap<InstrumentKey, Quote>),
    Health(Health),
    Instruments(Vec<InstrumentKey>),
}

struct Running {
    stream: Stream,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

struct Inner {
    running: Option<Running>,
    instruments: Vec<InstrumentKey>,
    latest: BTreeMap<InstrumentKey, Quote>,
    health: Health,
    dirty: bool,
}

/// The stream and its subscribers.
pub struct StreamHub {
    metrics: Arc<Metrics>,
    inner: Mutex<Inner>,
    tx: broadcast::Sender<HubEvent>,
}

impl std::fmt::Debug for StreamHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHub")
            .field("health", &self.inner.lock().health)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl StreamHub {
    /// A stopped hub watching `instruments` (keys that do not parse are left out).
    pub fn new(metrics: Arc<Metrics>, instruments: Vec<String>) -> Arc<Self> {
        let instruments = instruments.iter().filter_map(|k| k.parse().ok()).collect();
        let (tx, _) = broadcast::channel(256);
        Arc::new(Self {
            metrics,
            inner: Mutex::new(Inner {
                running: None,
                instruments,
                latest: BTreeMap::new(),
                health: Health::from_stream(StreamHealth::default()),
                dirty: false,
            }),
            tx,
        })
    }

    /// A receiver of every later event.
    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.tx.subscribe()
    }

    /// The current picture, for a page that just opened.
    pub fn snapshot(&self) -> (Vec<InstrumentKey>, BTreeMap<InstrumentKey, Quote>, Health) {
        let i = self.inner.lock();
        (i.instruments.clone(), i.latest.clone(), i.health.clone())
    }

    /// The stream's health now.
    pub fn health(&self) -> StreamHealth {
        self.inner.lock().health.stream.clone()
    }

    fn set_health(&self, f: impl FnOnce(&mut Health)) {
        let h = {
            let mut i = self.inner.lock();
            f(&mut i.health);
            i.health.state_text = crate::words::stream_state(&i.health.stream.state);
            i.health.clone()
        };
        let _ = self.tx.send(HubEvent::Health(h));
    }

    /// Starts streaming for `account` with its token from `from`; replaces a running stream.
    pub async fn start(self: &Arc<Self>, client: UpstoxClient, from: TokenFrom, account: String) {
        self.stop().await;
        let cancel = CancellationToken::new();
        let mut stream = stoxide_app::stream::start(client, from, StreamerConfig::default());
        let keys: Vec<String> = self.inner.lock().instruments.iter().map(ToString::to_string).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        if let Err(e) = stream.streamer.subscribe(&refs, FeedMode::Ltpc) {
            tracing::warn!(error = %e, "subscribing the dashboard's instruments");
        }
        self.set_health(|h| *h = Health::from_stream(StreamHealth::starting(Some(account))));
        let events = stream.events.clone();
        let mut token_events = stream.token_events.take();
        let mut tasks = Vec::new();

        // Consume events: quotes into `latest`, everything else into the health.
        let hub = Arc::downgrade(self);
        let stop = cancel.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    () = stop.cancelled() => return,
                    e = events.next() => e,
                    Some(t) = async {
                        match &mut token_events {
                            Some(rx) => rx.recv().await,
                            None => std::future::pending().await,
                        }
                    } => {
                        if let Some(hub) = hub.upgrade() {
                            hub.set_health(|h| h.notice = Some(crate::words::token_event(&t)));
                        }
                        continue;
                    }
                };
                let Some(hub) = hub.upgrade() else { return };
                let Some(event) = event else { return };
                if let FeedEvent::Ticks(batch) = &event {
                    hub.metrics.ticks.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    let mut i = hub.inner.lock();
                    for t in batch {
                        if let Some(l) = t.ltpc() {
                            let PriceChange { change, percent } = PriceChange::of(l.ltp, l.cp);
                            i.latest.insert(
                                t.instrument_key.clone(),
                                Quote {
                                    ltp: l.ltp,
                                    cp: l.cp,
                                    change,
                                    change_pct: percent,
                                    received_ms: now_ms(),
                                },
                            );
                            i.dirty = true;
                        }
                    }
                    continue;
                }
                if matches!(event, FeedEvent::Reconnecting { .. }) {
                    hub.metrics.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                let stopped = matches!(event, FeedEvent::Stopped(_));
                hub.set_health(|h| h.stream.apply(&event, now_ms()));
                if stopped {
                    return;
                }
            }
        }));

        // Push quotes to pages at most four times a second; count ticks per second.
        let hub = Arc::downgrade(self);
        let stop = cancel.clone();
        tasks.push(tokio::spawn(async move {
            let mut push = tokio::time::interval(Duration::from_millis(250));
            let mut last_total = 0u64;
            let mut n = 0u32;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = push.tick() => {}
                }
                let Some(hub) = hub.upgrade() else { return };
                n += 1;
                if n.is_multiple_of(4) {
                    let total = hub.metrics.ticks.load(Ordering::Relaxed);
                    hub.metrics
                        .ticks_per_second
                        .store(total - last_total, Ordering::Relaxed);
                    last_total = total;
                }
                let quotes = {
                    let mut i = hub.inner.lock();
                    if !i.dirty {
                        continue;
                    }
                    i.dirty = false;
                    i.latest.clone()
                };
                let _ = hub.tx.send(HubEvent::Quotes(quotes));
            }
        }));
        self.inner.lock().running = Some(Running { stream, cancel, tasks });
    }

    /// Stops the stream (if any) and waits for its tasks to end.
    pub async fn stop(&self) {
        let running = self.inner.lock().running.take();
        if let Some(r) = running {
            r.cancel.cancel();
            r.stream.shutdown().await;
            for t in r.tasks {
                let _ = t.await;
            }
            self.metrics.ticks_per_second.store(0, Ordering::Relaxed);
            self.set_health(|h| h.stream.stopped());
        }
    }

    /// Whether a stream is running.
    pub fn is_running(&self) -> bool {
        self.inner.lock().running.is_some()
    }

    /// Adds an instrument (subscribed at once when streaming).
    ///
    /// # Errors
    /// A malformed key.
    pub fn add(&self, key: &str) -> Result<()> {
        let parsed = key
            .parse::<InstrumentKey>()
            .map_err(|e| Error::BadRequest(format!("{e}")))?;
        let list = {
            let mut i = self.inner.lock();
            if i.instruments.contains(&parsed) {
                return Ok(());
            }
            i.instruments.push(parsed);
            if let Some(r) = &i.running
                && let Err(e) = r.stream.streamer.subscribe(&[key], FeedMode::Ltpc)
            {
                i.instruments.pop();
                return Err(Error::BadRequest(e.to_string()));
            }
            i.instruments.clone()
        };
        let _ = self.tx.send(HubEvent::Instruments(list));
        Ok(())
    }
}
