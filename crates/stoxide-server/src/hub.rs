//! The dashboard's market stream: one `MarketStreamer` for the active account (its token read
//! from the vault and re-read every few seconds), the latest quote per instrument, the stream's
//! health in plain words, and a broadcast of both to every open page (Server-Sent Events).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;
use secrecy::SecretString;
use serde::Serialize;
use stoxide_vault::Vault;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use upstox_client::UpstoxClient;
use upstox_feed::{FeedEvent, MarketStreamer, StreamerConfig};
use upstox_types::{FeedMode, InstrumentKey};

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

/// How the stream is doing, in words for the page.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Health {
    /// `stopped`, `connecting`, `connected`, `reconnecting`, `waiting for a new login`.
    pub state: String,
    pub account: Option<String>,
    pub reconnects: u64,
    pub last_error: Option<String>,
    /// The last notice from the token watcher (expiry ahead, a new token picked up).
    pub notice: Option<String>,
    pub connected_since_ms: Option<i64>,
}

/// What pages receive.
#[derive(Debug, Clone)]
pub enum HubEvent {
    Quotes(BTreeMap<String, Quote>),
    Health(Health),
    Instruments(Vec<String>),
}

struct Running {
    streamer: MarketStreamer,
    cancel: CancellationToken,
}

struct Inner {
    running: Option<Running>,
    instruments: Vec<String>,
    latest: BTreeMap<String, Quote>,
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
    /// A stopped hub watching `instruments`.
    pub fn new(metrics: Arc<Metrics>, instruments: Vec<String>) -> Arc<Self> {
        let (tx, _) = broadcast::channel(256);
        Arc::new(Self {
            metrics,
            inner: Mutex::new(Inner {
                running: None,
                instruments,
                latest: BTreeMap::new(),
                health: Health {
                    state: "stopped".into(),
                    ..Health::default()
                },
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
    pub fn snapshot(&self) -> (Vec<String>, BTreeMap<String, Quote>, Health) {
        let i = self.inner.lock();
        (i.instruments.clone(), i.latest.clone(), i.health.clone())
    }

    fn set_health(&self, f: impl FnOnce(&mut Health)) {
        let h = {
            let mut i = self.inner.lock();
            f(&mut i.health);
            i.health.clone()
        };
        let _ = self.tx.send(HubEvent::Health(h));
    }

    /// Starts streaming for `account` (its token re-read from the vault); replaces a running
    /// stream.
    pub async fn start(self: &Arc<Self>, client: UpstoxClient, vault: Vault, account: String, token: SecretString) {
        self.stop().await;
        let cancel = CancellationToken::new();
        let notices = Arc::downgrade(self);
        let watch = stoxide_vault::watch_token(
            vault,
            account.clone(),
            token,
            Duration::from_secs(5),
            cancel.clone(),
            move |event| {
                if let Some(hub) = notices.upgrade() {
                    hub.set_health(|h| h.notice = Some(crate::words::token_event(&event)));
                }
            },
        );
        let config = StreamerConfig {
            await_new_token: Some(Duration::from_secs(2)),
            ..StreamerConfig::default()
        };
        let (streamer, events) = MarketStreamer::start(client, move || watch.current(), config);
        let keys = self.inner.lock().instruments.clone();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        if let Err(e) = streamer.subscribe(&refs, FeedMode::Ltpc) {
            tracing::warn!(error = %e, "subscribing the dashboard's instruments");
        }
        {
            let mut i = self.inner.lock();
            i.running = Some(Running {
                streamer,
                cancel: cancel.clone(),
            });
        }
        self.set_health(|h| {
            *h = Health {
                state: "connecting".into(),
                account: Some(account.clone()),
                ..Health::default()
            }
        });

        // Consume events: quotes into `latest`, status into `health`.
        let hub = Arc::downgrade(self);
        let stop = cancel.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    () = stop.cancelled() => return,
                    e = events.next() => e,
                };
                let Some(hub) = hub.upgrade() else { return };
                match event {
                    None => return,
                    Some(FeedEvent::Ticks(batch)) => {
                        hub.metrics.ticks.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        let mut i = hub.inner.lock();
                        for t in &batch {
                            if let Some(l) = t.ltpc() {
                                let change = l.ltp - l.cp;
                                i.latest.insert(
                                    t.instrument_key.clone(),
                                    Quote {
                                        ltp: l.ltp,
                                        cp: l.cp,
                                        change,
                                        change_pct: if l.cp != 0.0 { change / l.cp * 100.0 } else { 0.0 },
                                        received_ms: now_ms(),
                                    },
                                );
                                i.dirty = true;
                            }
                        }
                    }
                    Some(FeedEvent::Connected { .. }) => hub.set_health(|h| {
                        h.state = "connected".into();
                        h.connected_since_ms = Some(now_ms());
                    }),
                    Some(FeedEvent::Disconnected { reason }) => hub.set_health(|h| {
                        h.state = "disconnected".into();
                        h.last_error = Some(reason);
                    }),
                    Some(FeedEvent::Reconnecting { attempt, delay, reason }) => {
                        hub.metrics.reconnects.fetch_add(1, Ordering::Relaxed);
                        hub.set_health(|h| {
                            h.state = format!("reconnecting (attempt {attempt} in {:.1} s)", delay.as_secs_f64());
                            h.reconnects += 1;
                            h.last_error = Some(reason);
                            h.connected_since_ms = None;
                        });
                    }
                    Some(FeedEvent::WaitingForToken { reason }) => hub.set_health(|h| {
                        h.state = "waiting for a new login".into();
                        h.last_error = Some(reason);
                    }),
                    Some(FeedEvent::Stopped(d)) => {
                        hub.set_health(|h| {
                            h.state = "stopped".into();
                            h.last_error = Some(d.to_string());
                        });
                        return;
                    }
                    Some(_) => {}
                }
            }
        });

        // Push quotes to pages at most four times a second; count ticks per second.
        let hub = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut push = tokio::time::interval(Duration::from_millis(250));
            let mut last_total = 0u64;
            let mut n = 0u32;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
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
        });
    }

    /// Stops the stream (if any).
    pub async fn stop(&self) {
        let running = self.inner.lock().running.take();
        if let Some(r) = running {
            r.cancel.cancel();
            r.streamer.shutdown().await;
            self.metrics.ticks_per_second.store(0, Ordering::Relaxed);
            self.set_health(|h| {
                h.state = "stopped".into();
                h.connected_since_ms = None;
            });
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
        key.parse::<InstrumentKey>()
            .map_err(|e| Error::BadRequest(format!("{e}")))?;
        let list = {
            let mut i = self.inner.lock();
            if i.instruments.iter().any(|k| k == key) {
                return Ok(());
            }
            i.instruments.push(key.to_owned());
            if let Some(r) = &i.running
                && let Err(e) = r.streamer.subscribe(&[key], FeedMode::Ltpc)
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
