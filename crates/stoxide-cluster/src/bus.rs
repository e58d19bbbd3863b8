//! Signals over NATS JetStream: one stream, a durable consumer per node.
//!
//! Every node takes every signal (each decides only for the accounts it holds), so each node
//! has its own durable consumer: a signal is acknowledged by a node once that node's intents
//! are written, and redelivered to it (after `ack_wait`, or when it restarts) if it died first.
//! A node takes one signal at a time (`max_ack_pending` 1), in the stream's order, and keeps it
//! (saying "in progress") until it is written: a strategy's signals are decided in the order
//! they were sent, however slow a node is.
//! A signal published twice with the same id within the stream's duplicate window is stored
//! once (`Nats-Msg-Id`), and the engine's tags make the same signal one intent per
//! subscription whatever else happens.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use stoxide_engine::Engine;
use stoxide_engine::signal::Signal;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// The JetStream stream signals are kept in.
pub const SIGNAL_STREAM: &str = "STOXIDE_SIGNALS";
const SUBJECT_PREFIX: &str = "stoxide.signals";
/// How long a node may hold a signal without a word before the stream gives it out again; a
/// node deciding one says "in progress" every third of it.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// A connection to the signal stream.
#[derive(Debug, Clone)]
pub struct SignalBus {
    url: String,
    client: async_nats::Client,
    js: jetstream::Context,
    stream: String,
}

/// The lease name of the market feed: the node holding it reads the last prices for every node.
pub const FEED_LEASE: &str = "~feed";

/// `url` as it may be shown: any user and password replaced.
fn shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

fn subject_token(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl SignalBus {
    /// Connects and makes sure the stream exists (named [`SIGNAL_STREAM`], or `stream` for a
    /// test's own).
    ///
    /// # Errors
    /// NATS cannot be reached, or JetStream is not enabled there.
    pub async fn connect(url: &str, stream: Option<&str>) -> Result<Self> {
        let nats = |detail: String| Error::Nats {
            url: shown(url),
            detail,
        };
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| nats(e.to_string()))?;
        let js = jetstream::new(client.clone());
        let name = stream.unwrap_or(SIGNAL_STREAM).to_owned();
        js.get_or_create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{}.{}.>", SUBJECT_PREFIX, subject_token(&name))],
            max_age: Duration::from_secs(24 * 3600),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(|e| nats(e.to_string()))?;
        Ok(Self {
            url: shown(url),
            client,
            js,
            stream: name,
        })
    }

    fn nats(&self, e: impl std::fmt::Display) -> Error {
        Error::Nats {
            url: self.url.clone(),
            detail: e.to_string(),
        }
    }

    /// Publishes a signal; answers its sequence in the stream and whether the stream already
    /// had it (the same strategy and id within the duplicate window).
    ///
    /// # Errors
    /// NATS errors.
    pub async fn publish(&self, signal: &Signal) -> Result<(u64, bool)> {
        let subject = format!(
            "{}.{}.{}",
            SUBJECT_PREFIX,
            subject_token(&self.stream),
            subject_token(&signal.strategy)
        );
        let body = serde_json::to_vec(signal).map_err(|e| self.nats(e))?;
        let ack = self
            .js
            .send_publish(
                subject,
                jetstream::message::PublishMessage::build()
                    .message_id(format!("{}:{}", signal.strategy, signal.id))
                    .payload(body.into()),
            )
            .await
            .map_err(|e| self.nats(e))?
            .await
            .map_err(|e| self.nats(e))?;
        Ok((ack.sequence, ack.duplicate))
    }

    fn prices_subject(&self) -> String {
        format!("stoxide.prices.{}", subject_token(&self.stream))
    }

    /// Passes last prices on to every node (plain NATS: a mark missed is replaced by the next).
    pub async fn publish_prices(&self, batch: &[(upstox_types::InstrumentKey, f64)]) {
        let body: Vec<(String, f64)> = batch.iter().map(|(k, p)| (k.to_string(), *p)).collect();
        let Ok(bytes) = serde_json::to_vec(&body) else { return };
        if let Err(e) = self.client.publish(self.prices_subject(), bytes.into()).await {
            tracing::warn!(error = %e, "last prices could not be passed on");
        }
    }

    /// Takes the last prices the feed's node passes on into `prices` until `stop`.
    ///
    /// # Errors
    /// The subscription could not be made.
    pub async fn follow_prices(
        &self,
        prices: stoxide_engine::broker::paper::Prices,
        stop: CancellationToken,
    ) -> Result<()> {
        let mut sub = self
            .client
            .subscribe(self.prices_subject())
            .await
            .map_err(|e| self.nats(e))?;
        loop {
            let msg = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                m = sub.next() => m,
            };
            let Some(msg) = msg else { return Ok(()) };
            let Ok(batch) = serde_json::from_slice::<Vec<(String, f64)>>(&msg.payload) else {
                tracing::warn!("a price message that is not prices; ignored");
                continue;
            };
            for (k, p) in batch {
                if let Ok(key) = k.parse::<upstox_types::InstrumentKey>() {
                    prices.update(&key, p, None, None);
                }
            }
        }
    }

    async fn consumer(&self, node: &str) -> Result<consumer::Consumer<consumer::pull::Config>> {
        let stream = self.js.get_stream(&self.stream).await.map_err(|e| self.nats(e))?;
        let name = format!("node-{}", subject_token(node));
        // Created, or brought up to this configuration if an older node made it differently.
        stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(name.clone()),
                deliver_policy: consumer::DeliverPolicy::New,
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                // One signal at a time, in the stream's order: a strategy's signals are decided
                // in the order it sent them, however long one takes (a second one in flight
                // could be redelivered after a later one and decided out of turn).
                max_ack_pending: 1,
                max_deliver: -1,
                ..Default::default()
            })
            .await
            .map_err(|e| self.nats(e))
    }

    /// Signals waiting for `node` (not yet delivered, or delivered and not acknowledged).
    ///
    /// # Errors
    /// NATS errors.
    pub async fn lag(&self, node: &str) -> Result<u64> {
        let mut c = self.consumer(node).await?;
        let info = c.info().await.map_err(|e| self.nats(e))?;
        Ok(info.num_pending + u64::try_from(info.num_ack_pending).unwrap_or(0))
    }

    /// Takes `node`'s signals into `engine` until `stop`: each is acknowledged once the engine
    /// has written its intents (or refused it); a store error asks for it again in 1 s.
    ///
    /// # Errors
    /// The consumer could not be made.
    pub async fn consume(&self, node: &str, engine: Engine, stop: CancellationToken) -> Result<()> {
        let consumer = self.consumer(node).await?;
        let mut messages = consumer.messages().await.map_err(|e| self.nats(e))?;
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                m = messages.next() => m,
            };
            let msg = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the signal stream");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                None => return Ok(()),
            };
            let signal: Signal = match serde_json::from_slice(&msg.payload) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(subject = %msg.subject, error = %e, "not a signal; dropped from the stream");
                    let _ = msg.ack_with(jetstream::AckKind::Term).await;
                    continue;
                }
            };
            // Taken here until it is written: the stream hears that it is in progress (so it is
            // not given to this node again meanwhile), and a store error is retried here rather
            // than handed back (which would let the next signal pass it).
            loop {
                let submit = engine.submit(signal.clone(), "nats");
                tokio::pin!(submit);
                let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + ACK_WAIT / 3, ACK_WAIT / 3);
                let outcome = loop {
                    tokio::select! {
                        r = &mut submit => break r,
                        _ = progress.tick() => {
                            let _ = msg.ack_with(jetstream::AckKind::Progress).await;
                        }
                    }
                };
                match outcome {
                    Ok(report) => {
                        tracing::debug!(strategy = %report.strategy, id = %report.signal_id, intents = report.intents.len(), "signal taken");
                        if let Err(e) = msg.ack().await {
                            tracing::warn!(error = %e, "a signal's acknowledgement was lost; it comes again and is one signal");
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "a signal could not be taken; tried again in 1 s");
                        let _ = msg.ack_with(jetstream::AckKind::Progress).await;
                        tokio::select! {
                            () = stop.cancelled() => return Ok(()),
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_is_shown_without_its_credentials() {
        assert_eq!(
            super::shown("nats://u:secret@10.0.0.1:4222"),
            "nats://***@10.0.0.1:4222"
        );
        assert_eq!(super::shown("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
