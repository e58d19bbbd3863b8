//! The connection loop shared by the market and portfolio streamers: a fresh authorize for
//! every (re)connect, reconnects with exponential backoff and jitter (backon), stall detection,
//! and a typed diagnosis instead of retries on 401/403.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;
use upstox_client::UpstoxClient;

use crate::error::Diagnosis;
use crate::events::{Fanout, FeedEvent};
use crate::market::StreamerConfig;
use crate::token::TokenSource;

pub(crate) type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What differs between the feeds.
pub(crate) trait Protocol: Send + Sync + 'static {
    /// Per-connection state (what was subscribed on this connection).
    type Conn: Default + Send;

    /// A fresh single-use URI.
    fn authorize(&self, client: UpstoxClient) -> impl Future<Output = upstox_client::Result<String>> + Send;

    /// Brings the connection in line with what the caller wants (on connect, and when woken).
    fn sync(&self, ws: &mut Ws, conn: &mut Self::Conn) -> impl Future<Output = Result<(), tungstenite::Error>> + Send;

    /// Handles one data frame; answers true when it shows the connection is working.
    fn frame(&self, msg: Message, queue: &Fanout) -> bool;
}

pub(crate) struct Worker<P: Protocol> {
    pub(crate) client: UpstoxClient,
    pub(crate) tokens: Box<dyn TokenSource>,
    pub(crate) config: StreamerConfig,
    pub(crate) protocol: P,
    pub(crate) wake: Arc<Notify>,
    pub(crate) cancel: CancellationToken,
    pub(crate) queue: Arc<Fanout>,
}

/// Bytes read from the socket at most at a time (see `connect`).
const READ_BUFFER: usize = 16 * 1024;

/// How a connection attempt or a connection ended.
enum End {
    /// Retry after a delay.
    Retry(String),
    /// Stop for good.
    Stop(Diagnosis),
    /// The caller shut us down.
    Cancelled,
}

impl<P: Protocol> Worker<P> {
    fn backoff(&self) -> impl Iterator<Item = Duration> + use<P> {
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

    pub(crate) async fn run(self) {
        let mut attempt: u32 = 1;
        let mut backoff = self.backoff();
        loop {
            let token = self.tokens.token();
            let end = match self.connect(token.clone()).await {
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
                End::Stop(d @ (Diagnosis::Unauthorized { .. } | Diagnosis::NoToken))
                    if self.config.await_new_token.is_some() =>
                {
                    tracing::warn!(diagnosis = %d, "feed waiting for a new token");
                    self.queue
                        .push_status(FeedEvent::WaitingForToken { reason: d.to_string() });
                    if !self.await_new_token(token.as_ref()).await {
                        self.queue.close(None);
                        return;
                    }
                    attempt = 1;
                    backoff = self.backoff();
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

    /// Polls the token source until it yields a token other than `refused`; false when cancelled.
    async fn await_new_token(&self, refused: Option<&SecretString>) -> bool {
        let poll = self.config.await_new_token.unwrap_or(Duration::from_secs(5));
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return false,
                () = tokio::time::sleep(poll) => {}
            }
            match self.tokens.token() {
                Some(t) if refused.is_none_or(|r| r.expose_secret() != t.expose_secret()) => return true,
                _ => {}
            }
        }
    }

    /// Authorizes (fresh URI every time) and opens the WebSocket.
    async fn connect(&self, token: Option<SecretString>) -> Result<Ws, End> {
        let Some(token) = token else {
            return Err(End::Stop(Diagnosis::NoToken));
        };
        let client = self.client.with_token(token);
        let attempt = async {
            let uri = match self.protocol.authorize(client).await {
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
            // Nagle off: the subscription requests are small writes that must not wait for an ACK.
            // The read buffer is zero-filled to its full size before every read: 16 KiB rather
            // than tungstenite's 128 KiB (a memset of 128 KiB a frame was 5-7 % of the client's
            // CPU at ~30,000 small frames a second; a large frame takes a few more reads).
            let config = tungstenite::protocol::WebSocketConfig::default().read_buffer_size(READ_BUFFER);
            match tokio_tungstenite::connect_async_with_config(uri.as_str(), Some(config), true).await {
                Ok((ws, _)) => Ok(ws),
                Err(tungstenite::Error::Http(resp)) => {
                    let refusal = crate::error::HandshakeRefusal::from_response(&resp);
                    let status = refusal.status;
                    let detail = format!("handshake answered {refusal}");
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

    /// Runs one connection; answers how it ended and whether it got going.
    async fn serve(&self, mut ws: Ws) -> (End, bool) {
        let mut sent = P::Conn::default();
        let mut healthy = false;
        if let Err(e) = self.protocol.sync(&mut ws, &mut sent).await {
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
                    if let Err(e) = self.protocol.sync(&mut ws, &mut sent).await {
                        return (End::Retry(format!("sending subscriptions failed: {e}")), healthy);
                    }
                }
                () = tokio::time::sleep_until(stall_at) => {
                    return (End::Retry(format!("stalled: no frames and no pings for {:?}", self.config.stall_timeout)), healthy);
                }
                msg = ws.next() => {
                    last_activity = Instant::now();
                    match msg {
                        Some(Ok(msg @ (Message::Binary(_) | Message::Text(_)))) => {
                            if self.protocol.frame(msg, &self.queue) {
                                healthy = true;
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
