//! The Market Data Feed v3 streamer: a fresh authorize for every (re)connect, reconnects with
//! exponential backoff and jitter, every subscription restored in its mode, stall detection,
//! and a typed diagnosis (no retry) on 401/403.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::SinkExt;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;
use upstox_client::UpstoxClient;
use upstox_types::{FeedCaps, FeedMode, InstrumentKey};

use crate::connection::{Protocol, Worker, Ws};
use crate::decode::{Frame, decode};
use crate::error::FeedError;
use crate::events::{EventStream, Fanout, FeedEvent, Policy};
use crate::token::TokenSource;

/// Streamer settings.
#[derive(Debug, Clone)]
pub struct StreamerConfig {
    /// First reconnect delay.
    pub min_backoff: Duration,
    /// Cap on the reconnect delay.
    pub max_backoff: Duration,
    /// Give up after this many failed attempts in a row (`None`: never).
    pub max_attempts: Option<u32>,
    /// No frame and no ping for this long → the connection is considered dead and replaced.
    pub stall_timeout: Duration,
    /// Timeout of the authorize call plus the WebSocket handshake.
    pub connect_timeout: Duration,
    pub caps: FeedCaps,
    /// Keys per `sub` message.
    pub keys_per_request: usize,
    /// Status events kept for a consumer that falls behind.
    pub status_queue: usize,
    /// Every raw frame is also offered here (for recording); frames are dropped, never waited
    /// for, when the receiver falls behind.
    pub raw_frames: Option<tokio::sync::mpsc::Sender<crate::recording::RawFrame>>,
    /// On a 401 (or no token), instead of stopping: report [`FeedEvent::WaitingForToken`] and ask
    /// the token source this often until it yields a different token, then connect with it. For
    /// sources that change (the vault after `stoxide login`); a fixed token should stop.
    ///
    /// [`FeedEvent::WaitingForToken`]: crate::FeedEvent::WaitingForToken
    pub await_new_token: Option<Duration>,
}

impl Default for StreamerConfig {
    fn default() -> Self {
        Self {
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_attempts: None,
            stall_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(15),
            caps: FeedCaps::default(),
            keys_per_request: 1000,
            status_queue: 256,
            raw_frames: None,
            await_new_token: None,
        }
    }
}

/// The subscriptions the caller wants (the task reconciles the connection to them).
type Desired = HashMap<InstrumentKey, FeedMode>;

/// A running market-data streamer. Dropping it stops the task.
#[derive(Debug)]
pub struct MarketStreamer {
    desired: Arc<Mutex<Desired>>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
    caps: FeedCaps,
    fanout: Arc<Fanout>,
}

impl Drop for MarketStreamer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl MarketStreamer {
    /// Starts streaming with `client`'s hosts and tokens from `tokens`.
    pub fn start(client: UpstoxClient, tokens: impl TokenSource, config: StreamerConfig) -> (Self, EventStream) {
        let queue = Fanout::new(config.status_queue);
        let first = queue.subscribe(Policy::Latest);
        let desired = Arc::new(Mutex::new(Desired::new()));
        let wake = Arc::new(Notify::new());
        let cancel = CancellationToken::new();
        let caps = config.caps.clone();
        let protocol = MarketProtocol {
            desired: desired.clone(),
            keys_per_request: config.keys_per_request.max(1),
            raw_frames: config.raw_frames.clone(),
        };
        let worker = Worker {
            client,
            tokens: Box::new(tokens),
            config,
            protocol,
            wake: wake.clone(),
            cancel: cancel.clone(),
            queue: queue.clone(),
        };
        let task = tokio::spawn(worker.run());
        (
            Self {
                desired,
                wake,
                cancel,
                task: Some(task),
                caps,
                fanout: queue,
            },
            first,
        )
    }

    /// Another consumer of this stream's events, with its own `policy`: a strategy and a
    /// dashboard each get every tick, neither takes the other's. It sees events from now on.
    pub fn events(&self, policy: Policy) -> EventStream {
        self.fanout.subscribe(policy)
    }

    fn check(keys: &[&str]) -> Result<Vec<InstrumentKey>, FeedError> {
        keys.iter()
            .map(|k| {
                k.parse::<InstrumentKey>()
                    .map_err(|e| FeedError::InvalidKey(e.to_string()))
            })
            .collect()
    }

    fn set_mode(&self, keys: &[&str], mode: FeedMode) -> Result<(), FeedError> {
        let keys = Self::check(keys)?;
        let mut desired = self.desired.lock();
        let mut next = desired.clone();
        for k in keys {
            next.insert(k, mode);
        }
        let mut counts = [0usize; 4];
        for m in next.values() {
            counts[m.index()] += 1;
        }
        if !self.caps.allows(&counts) {
            let mixed = counts.iter().filter(|c| **c > 0).count() > 1;
            let over = FeedMode::ALL
                .into_iter()
                .find(|m| counts[m.index()] > self.caps.cap(*m, mixed))
                .unwrap_or(mode);
            return Err(FeedError::CapExceeded {
                mode: over,
                count: counts[over.index()],
                cap: self.caps.cap(over, mixed),
                mixed,
            });
        }
        *desired = next;
        drop(desired);
        self.wake.notify_one();
        Ok(())
    }

    /// Subscribes `keys` in `mode` (now if connected, else on connect).
    ///
    /// # Errors
    /// A malformed key, or a cap the server would enforce by silently dropping keys.
    pub fn subscribe(&self, keys: &[&str], mode: FeedMode) -> Result<(), FeedError> {
        self.set_mode(keys, mode)
    }

    /// Moves `keys` to `mode` (subscribing any that were not).
    ///
    /// # Errors
    /// As [`MarketStreamer::subscribe`].
    pub fn change_mode(&self, keys: &[&str], mode: FeedMode) -> Result<(), FeedError> {
        self.set_mode(keys, mode)
    }

    /// Unsubscribes `keys`.
    pub fn unsubscribe(&self, keys: &[&str]) {
        let mut desired = self.desired.lock();
        for k in keys.iter().filter_map(|k| k.parse::<InstrumentKey>().ok()) {
            desired.remove(&k);
        }
        drop(desired);
        self.wake.notify_one();
    }

    /// The current subscriptions and their modes.
    pub fn subscriptions(&self) -> HashMap<InstrumentKey, FeedMode> {
        self.desired.lock().clone()
    }

    /// Closes the connection and waits for the task.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// The market feed's side of the connection loop.
struct MarketProtocol {
    desired: Arc<Mutex<Desired>>,
    keys_per_request: usize,
    raw_frames: Option<tokio::sync::mpsc::Sender<crate::recording::RawFrame>>,
}

fn control(method: &str, mode: Option<FeedMode>, keys: &[InstrumentKey]) -> Message {
    let mut data = serde_json::json!({"instrumentKeys": keys});
    if let Some(m) = mode {
        data["mode"] = m.as_str().into();
    }
    let body = serde_json::json!({"guid": uuid::Uuid::new_v4().to_string(), "method": method, "data": data});
    Message::Binary(body.to_string().into_bytes().into())
}

impl Protocol for MarketProtocol {
    type Conn = Desired;

    async fn authorize(&self, client: UpstoxClient) -> upstox_client::Result<String> {
        client.market_feed_authorize().await
    }

    fn sync(&self, ws: &mut Ws, sent: &mut Desired) -> impl Future<Output = Result<(), tungstenite::Error>> + Send {
        self.reconcile(ws, sent)
    }

    fn frame(&self, msg: Message, queue: &Fanout) -> bool {
        let Message::Binary(b) = msg else { return false };
        if let Some(tap) = &self.raw_frames {
            let received_ns = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            // Recording never slows the socket: a full tap drops the frame.
            let _ = tap.try_send(crate::recording::RawFrame {
                received_ns,
                bytes: b.to_vec(),
            });
        }
        match decode(&b) {
            Ok(Frame::MarketInfo(info)) => {
                queue.push_status(FeedEvent::MarketInfo(info));
                true
            }
            Ok(Frame::Ticks(ticks)) => {
                queue.push_ticks(ticks);
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, len = b.len(), "skipping an undecodable frame");
                false
            }
        }
    }
}

/// How long one control frame may take to leave before the connection is treated as dead.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one frame, or fails with a timed-out I/O error after [`SEND_TIMEOUT`].
async fn send_timed(ws: &mut Ws, msg: tungstenite::Message) -> Result<(), tungstenite::Error> {
    match tokio::time::timeout(SEND_TIMEOUT, ws.send(msg)).await {
        Ok(r) => r,
        Err(_) => Err(tungstenite::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "a control frame did not leave within 10 s",
        ))),
    }
}

impl MarketProtocol {
    /// Brings the connection's subscriptions to the desired ones.
    async fn reconcile(&self, ws: &mut Ws, sent: &mut Desired) -> Result<(), tungstenite::Error> {
        let desired = self.desired.lock().clone();
        let gone: Vec<InstrumentKey> = sent.keys().filter(|k| !desired.contains_key(*k)).cloned().collect();
        for chunk in gone.chunks(self.keys_per_request.max(1)) {
            send_timed(ws, control("unsub", None, chunk)).await?;
        }
        for mode in FeedMode::ALL {
            let mut new = Vec::new();
            let mut moved = Vec::new();
            for (k, m) in &desired {
                if *m != mode {
                    continue;
                }
                match sent.get(k) {
                    None => new.push(k.clone()),
                    Some(old) if *old != mode => moved.push(k.clone()),
                    Some(_) => {}
                }
            }
            for chunk in new.chunks(self.keys_per_request.max(1)) {
                send_timed(ws, control("sub", Some(mode), chunk)).await?;
            }
            for chunk in moved.chunks(self.keys_per_request.max(1)) {
                send_timed(ws, control("change_mode", Some(mode), chunk)).await?;
            }
        }
        *sent = desired;
        Ok(())
    }
}
