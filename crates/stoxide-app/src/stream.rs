//! Streams fed from the vault, and their health as a value.
//!
//! [`start`] runs a market streamer whose token comes from the process's vault handle (re-read
//! every few seconds, so a new login is used at the next connect; after a 401 it waits for one
//! instead of stopping) or from a fixed token. [`StreamHealth`] folds the stream's events into
//! what a front end shows: the state, reconnects, the last error, since when it is connected.

use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;
use stoxide_vault::{TokenEvent, Vault};
use tokio_util::sync::CancellationToken;
use upstox_client::UpstoxClient;
use upstox_feed::{EventStream, FeedEvent, MarketStreamer, StaticToken, StreamState, StreamerConfig};

/// How often a stream re-reads its token from the vault.
pub const TOKEN_POLL: Duration = Duration::from_secs(5);

/// Where a stream's token comes from.
#[derive(Debug, Clone)]
pub enum TokenFrom {
    /// The account in the vault: re-read while the stream runs.
    Vault {
        vault: Vault,
        account: String,
        token: SecretString,
    },
    /// A fixed token (flags, environment, the embedded simulator).
    Fixed(SecretString),
}

/// A running stream: its streamer and events, the token watcher's events (vault tokens only),
/// and the cancellation that ends the watcher with the stream.
#[derive(Debug)]
pub struct Stream {
    pub streamer: MarketStreamer,
    pub events: EventStream,
    pub token_events: Option<tokio::sync::mpsc::UnboundedReceiver<TokenEvent>>,
    /// Ends the token watcher when the stream is shut down or dropped.
    watcher: tokio_util::sync::DropGuard,
}

impl Stream {
    /// Stops the streamer and the token watcher.
    pub async fn shutdown(self) {
        drop(self.watcher);
        self.streamer.shutdown().await;
    }
}

/// Starts a market streamer on `client` (token-less; the streamer adds the token at every
/// connect) with its token from `from`. A vault token is watched: its events arrive on
/// [`Stream::token_events`], and after a 401 the stream waits for a new login.
pub fn start(client: UpstoxClient, from: TokenFrom, mut config: StreamerConfig) -> Stream {
    let cancel = CancellationToken::new();
    match from {
        TokenFrom::Vault { vault, account, token } => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let watch = stoxide_vault::watch_token(vault, account, token, TOKEN_POLL, cancel.clone(), move |e| {
                let _ = tx.send(e);
            });
            if config.await_new_token.is_none() {
                config.await_new_token = Some(Duration::from_secs(2));
            }
            let (streamer, events) = MarketStreamer::start(client, move || watch.current(), config);
            Stream {
                streamer,
                events,
                token_events: Some(rx),
                watcher: cancel.drop_guard(),
            }
        }
        TokenFrom::Fixed(token) => {
            let (streamer, events) = MarketStreamer::start(client, StaticToken(token), config);
            Stream {
                streamer,
                events,
                token_events: None,
                watcher: cancel.drop_guard(),
            }
        }
    }
}

/// What a front end shows of a stream, folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamHealth {
    #[serde(flatten)]
    pub state: StreamState,
    pub account: Option<String>,
    pub reconnects: u64,
    pub last_error: Option<String>,
    /// Epoch ms of the current connection's start.
    pub connected_since_ms: Option<i64>,
}

impl StreamHealth {
    /// A stream starting for `account`.
    pub fn starting(account: Option<String>) -> Self {
        Self {
            state: StreamState::Connecting,
            account,
            ..Self::default()
        }
    }

    /// Takes one event into account (`now_ms`: the time it arrived).
    pub fn apply(&mut self, event: &FeedEvent, now_ms: i64) {
        self.state = self.state.after(event);
        match event {
            FeedEvent::Connected { .. } => self.connected_since_ms = Some(now_ms),
            FeedEvent::Disconnected { reason } => {
                self.connected_since_ms = None;
                self.last_error = Some(reason.clone());
            }
            FeedEvent::Reconnecting { reason, .. } => {
                self.reconnects += 1;
                self.last_error = Some(reason.clone());
            }
            FeedEvent::WaitingForToken { reason } => self.last_error = Some(reason.clone()),
            FeedEvent::Stopped(d) => {
                self.connected_since_ms = None;
                self.last_error = Some(d.to_string());
            }
            _ => {}
        }
    }

    /// The stream was stopped by its owner.
    pub fn stopped(&mut self) {
        self.state = StreamState::Stopped;
        self.connected_since_ms = None;
    }

    /// Whether the stream is healthy: running, or stopped without an error.
    pub fn is_healthy(&self) -> bool {
        !(self.state.is_over() && self.last_error.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_the_events() {
        let mut h = StreamHealth::starting(Some("SIM001".into()));
        h.apply(&FeedEvent::Connected { attempt: 1 }, 10);
        assert_eq!((h.state.is_connected(), h.connected_since_ms), (true, Some(10)));
        h.apply(
            &FeedEvent::Disconnected {
                reason: "dropped".into(),
            },
            20,
        );
        h.apply(
            &FeedEvent::Reconnecting {
                attempt: 2,
                delay: Duration::from_millis(500),
                reason: "dropped".into(),
            },
            20,
        );
        assert_eq!(h.reconnects, 1);
        h.apply(&FeedEvent::Connected { attempt: 2 }, 30);
        assert!(h.is_healthy() && h.state.is_connected());
        assert_eq!(h.last_error.as_deref(), Some("dropped"));
        h.apply(&FeedEvent::Stopped(upstox_feed::Diagnosis::NoToken), 40);
        assert!(!h.is_healthy());
        h.stopped();
        assert!(!h.is_healthy(), "an error stays until the next start");
    }
}
