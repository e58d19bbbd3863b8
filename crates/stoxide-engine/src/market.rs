//! What the engine knows of the market: the instruments its strategies trade (from the
//! instrument master) and their last prices (from Upstox's LTP, polled), shared with the paper
//! broker and the marks of the position book.

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use upstox_client::{InstrumentMaster, UpstoxClient};
use upstox_types::InstrumentKey;

use crate::allocation::InstrumentInfo;
use crate::broker::paper::Prices;
use crate::catalog::Strategy;
use crate::error::{Error, Result};
use crate::service::Instrument;

/// The instruments of `strategies`, from the master: lot and freeze sizes, and the P&L
/// multiplier (the lot size for MCX, whose quantities are lots).
///
/// # Errors
/// [`Error::UnknownInstrument`] for a key the master does not hold.
pub fn instruments(master: &InstrumentMaster, strategies: &[Strategy]) -> Result<HashMap<InstrumentKey, Instrument>> {
    let mut out = HashMap::new();
    for s in strategies {
        for key in &s.instruments {
            if out.contains_key(key) {
                continue;
            }
            let Some(rec) = master.get(&key.to_string()) else {
                return Err(Error::UnknownInstrument {
                    strategy: s.id.clone(),
                    instrument: key.to_string(),
                });
            };
            let lot_size = rec.lot_size.unwrap_or(1).max(1);
            let freeze = rec
                .freeze_quantity
                .filter(|f| f.is_finite() && *f >= 1.0)
                .map(|f| f as u64);
            out.insert(
                key.clone(),
                Instrument {
                    info: InstrumentInfo {
                        key: key.clone(),
                        lot_size,
                        freeze_quantity: freeze,
                    },
                    multiplier: if key.segment().quantity_in_lots() { lot_size } else { 1 },
                },
            );
        }
    }
    Ok(out)
}

/// Polls the last prices of `keys` every `every` until `stop`, through `client` (one user's
/// token; a read, so it uses that user's quote budget only).
pub async fn poll_prices(
    client: UpstoxClient,
    keys: Vec<InstrumentKey>,
    prices: Prices,
    every: Duration,
    stop: CancellationToken,
) {
    poll_prices_when(client, keys, prices, every, stop, || true, |_| {}).await;
}

/// [`poll_prices`], reading only while `polls()` says this process should (a cluster's node
/// holding the feed), and handing each batch read to `read` (to pass on to the other nodes).
pub async fn poll_prices_when(
    client: UpstoxClient,
    keys: Vec<InstrumentKey>,
    prices: Prices,
    every: Duration,
    stop: CancellationToken,
    polls: impl Fn() -> bool,
    read: impl Fn(Vec<(InstrumentKey, f64)>),
) {
    if keys.is_empty() {
        return;
    }
    let texts: Vec<String> = keys.iter().map(ToString::to_string).collect();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if !polls() {
            continue;
        }
        for chunk in texts.chunks(500) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            match client.ltp(&refs).await {
                Ok(map) => {
                    let mut batch = Vec::with_capacity(map.len());
                    for q in map.values() {
                        prices.update(&q.instrument_token, q.last_price, None, None);
                        batch.push((q.instrument_token.clone(), q.last_price));
                    }
                    read(batch);
                }
                Err(e) => tracing::warn!(error = %e, "last prices could not be read; the marks keep their last value"),
            }
        }
    }
}
