//! The Market Data Feed v3 streamer: a fresh authorize for every (re)connect, reconnects with
//! exponential backoff and jitter, every subscription restored in its mode, stall detection,
//! and a typed diagnosis (no retry) on 401/403.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;
use upstox_client::UpstoxClient;
use upstox_types::{FeedCaps, FeedMode, InstrumentKey};

use crate::decode::{Frame, decode};
use crate::error::{Diagnosis, FeedError};
use crate::events::{EventQueue, EventStream, FeedEvent};
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
        }
    }
}

/// The subscriptions the caller wants (the task reconciles the connection to them).
type Desired = HashMap<String, FeedMode>;

/// A running market-data streamer. Dropping it stops the task.
#[derive(Debug)]
pub struct MarketStreamer {
    desired: Arc<Mutex<Desired>>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
    caps: FeedCaps,
}

impl Drop for MarketStreamer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl MarketStreamer {
    /// Starts streaming with `client`'s hosts and tokens from `tokens`.
    pub fn start(client: UpstoxClient, tokens: impl TokenSource, config: StreamerConfig) -> (Self, EventStream) {
        let queue = EventQueue::new(config.status_queue);
        let desired = Arc::new(Mutex::new(Desired::new()));
        let wake = Arc::new(Notify::new());
        let cancel = CancellationToken::new();
        let caps = config.caps.clone();
        let worker = Worker {
            client,
            tokens: Box::new(tokens),
            config,
            desired: desired.clone(),
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
            },
            EventStream::coalescing(queue),
        )
    }

    fn check(keys: &[&str]) -> Result<(), FeedError> {
        for k in keys {
            k.parse::<InstrumentKey>()
                .map_err(|e| FeedError::InvalidKey(e.to_string()))?;
        }
        Ok(())
    }

    fn set_mode(&self, keys: &[&str], mode: FeedMode) -> Result<(), FeedError> {
        Self::check(keys)?;
        let mut desired = self.desired.lock();
        let mut next = desired.clone();
        for k in keys {
            next.insert((*k).to_owned(), mode);
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
        for k in keys {
            desired.remove(*k);
        }
        drop(desired);
        self.wake.notify_one();
    }

    /// The current subscriptions and their modes.
    pub fn subscriptions(&self) -> HashMap<String, FeedMode> {
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

struct Worker {
    client: UpstoxClient,
    tokens: Box<dyn TokenSource>,
    config: StreamerConfig,
    desired: Arc<Mutex<Desired>>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
    queue: Arc<EventQueue>,
}

/// How a connection attempt or a connection ended.
enum End {
    /// Retry after a delay.
    Retry(String),
    /// Stop for good.
    Stop(Diagnosis),
    /// The caller shut us down.
    Cancelled,
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn control(method: &str, mode: Option<FeedMode>, keys: &[String]) -> Message {
    let mut data = serde_json::json!({"instrumentKeys": keys});
    if let Some(m) = mode {
        data["mode"] = m.as_str().into();
    }
    let body = serde_json::json!({"guid": uuid::Uuid::new_v4().to_string(), "method": method, "data": data});
    Message::Binary(body.to_string().into_bytes().into())
}

impl Worker {
    fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        let mut b = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.config.min_backoff)
            .with_max_delay(self.config.max_backoff)
            .without_max_times();
        if let Some(n) = self.config.max_attempts {
            b = b.with_max_times(n as usize);
        }
        b.build()
    }

    async fn run(self) {
        let mut attempt: u32 = 1;
        let mut backoff = self.backoff();
        loop {
            let end = match self.connect().await {
                Ok(ws) => {
                    self.queue.push_status(FeedEvent::Connected { attempt });
                    let (end, healthy) = self.serve(ws).await;
                    if healthy {
                        // A connection that got going resets the schedule.
                        attempt = 1;
                        backoff = self.backoff();
                    }
                    if let End::Retry(reason) = &end {
                        self.queue
                            .push_status(FeedEvent::Disconnected { reason: reason.clone() });
                    }
                    end
                }
                Err(end) => end,
            };
            match end {
                End::Cancelled => {
                    self.queue.close(None);
                    return;
                }
                End::Stop(d) => {
                    tracing::warn!(diagnosis = %d, "market feed stopped");
                    self.queue.close(Some(d));
                    return;
                }
                End::Retry(reason) => {
                    attempt += 1;
                    let Some(delay) = backoff.next() else {
                        self.queue.close(Some(Diagnosis::GaveUp {
                            attempts: attempt - 1,
                            last: reason,
                        }));
                        return;
                    };
                    tracing::info!(attempt, delay_ms = delay.as_millis() as u64, %reason, "market feed reconnecting");
                    self.queue
                        .push_status(FeedEvent::Reconnecting { attempt, delay, reason });
                    tokio::select! {
                        () = self.cancel.cancelled() => {
                            self.queue.close(None);
                            return;
                        }
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Authorizes (fresh URI every time) and opens the WebSocket.
    async fn connect(&self) -> Result<Ws, End> {
        let Some(token) = self.tokens.token() else {
            return Err(End::Stop(Diagnosis::NoToken));
        };
        let client = self.client.with_token(token);
        let attempt = async {
            let uri = match client.market_feed_authorize().await {
                Ok(u) => u,
                Err(e) if e.is_unauthorized() => {
                    return Err(End::Stop(Diagnosis::Unauthorized {
                        detail: format!("authorize: {e}"),
                    }));
                }
                Err(e) if e.status() == Some(403) => {
                    return Err(End::Stop(Diagnosis::Forbidden {
                        detail: format!("authorize: {e}"),
                    }));
                }
                Err(e) => return Err(End::Retry(format!("authorize failed: {e}"))),
            };
            match tokio_tungstenite::connect_async(uri.as_str()).await {
                Ok((ws, _)) => Ok(ws),
                Err(tungstenite::Error::Http(resp)) => {
                    let status = resp.status().as_u16();
                    let body = resp
                        .body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                        .unwrap_or_default();
                    let detail = format!(
                        "handshake answered {status}{}",
                        if body.is_empty() {
                            String::new()
                        } else {
                            format!(": {body}")
                        }
                    );
                    match status {
                        401 => Err(End::Stop(Diagnosis::Unauthorized { detail })),
                        403 => Err(End::Stop(Diagnosis::Forbidden { detail })),
                        _ => Err(End::Retry(detail)),
                    }
                }
                Err(e) => Err(End::Retry(format!("connect failed: {e}"))),
            }
        };
        tokio::select! {
            () = self.cancel.cancelled() => Err(End::Cancelled),
            r = tokio::time::timeout(self.config.connect_timeout, attempt) => match r {
                Ok(r) => r,
                Err(_) => Err(End::Retry(format!("no connection within {:?}", self.config.connect_timeout))),
            },
        }
    }

    /// Brings the connection's subscriptions to the desired ones.
    async fn reconcile(&self, ws: &mut Ws, sent: &mut Desired) -> Result<(), tungstenite::Error> {
        let desired = self.desired.lock().clone();
        let gone: Vec<String> = sent.keys().filter(|k| !desired.contains_key(*k)).cloned().collect();
        for chunk in gone.chunks(self.config.keys_per_request.max(1)) {
            ws.send(control("unsub", None, chunk)).await?;
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
            for chunk in new.chunks(self.config.keys_per_request.max(1)) {
                ws.send(control("sub", Some(mode), chunk)).await?;
            }
            for chunk in moved.chunks(self.config.keys_per_request.max(1)) {
                ws.send(control("change_mode", Some(mode), chunk)).await?;
            }
        }
        *sent = desired;
        Ok(())
    }

    /// Runs one connection; answers how it ended and whether it got going (market_info seen).
    async fn serve(&self, mut ws: Ws) -> (End, bool) {
        let mut sent = Desired::new();
        let mut healthy = false;
        if let Err(e) = self.reconcile(&mut ws, &mut sent).await {
            return (End::Retry(format!("sending subscriptions failed: {e}")), false);
        }
        let mut last_activity = Instant::now();
        loop {
            let stall_at = tokio::time::Instant::from_std(last_activity + self.config.stall_timeout);
            tokio::select! {
                () = self.cancel.cancelled() => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                    return (End::Cancelled, healthy);
                }
                () = self.wake.notified() => {
                    if let Err(e) = self.reconcile(&mut ws, &mut sent).await {
                        return (End::Retry(format!("sending subscriptions failed: {e}")), healthy);
                    }
                }
                () = tokio::time::sleep_until(stall_at) => {
                    return (End::Retry(format!("stalled: no frames and no pings for {:?}", self.config.stall_timeout)), healthy);
                }
                msg = ws.next() => {
                    last_activity = Instant::now();
                    match msg {
                        Some(Ok(Message::Binary(b))) => {
                            if let Some(tap) = &self.config.raw_frames {
                                let received_ns = std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .map_or(0, |d| d.as_nanos() as u64);
                                let _ = tap.try_send(crate::recording::RawFrame { received_ns, bytes: b.to_vec() });
                            }
                            match decode(&b) {
                            Ok(Frame::MarketInfo(info)) => {
                                healthy = true;
                                self.queue.push_status(FeedEvent::MarketInfo(info));
                            }
                            Ok(Frame::Ticks(ticks)) => self.queue.push_ticks(ticks),
                            Err(e) => tracing::warn!(error = %e, len = b.len(), "skipping an undecodable frame"),
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let why = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)).unwrap_or_else(|| "no reason".into());
                            return (End::Retry(format!("server closed the connection ({why})")), healthy);
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return (End::Retry(format!("connection lost: {e}")), healthy),
                        None => return (End::Retry("connection lost: end of stream".into()), healthy),
                    }
                }
            }
        }
    }
}
