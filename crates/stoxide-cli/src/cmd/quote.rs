//! `stoxide quote KEY...`.

use crate::output::say;
use upstox_types::InstrumentKey;

use crate::output::{Output, money, table};
use crate::settings::{Globals, Session};

/// The trading symbol of each key Upstox knows, from a quote of their last prices (500 keys a
/// call; the answer is keyed `SEGMENT:SYMBOL` and leaves unknown keys out); `None` when the
/// call itself fails (an expired token, say: a stream then diagnoses that itself).
pub(crate) async fn key_names(
    client: &upstox_client::UpstoxClient,
    keys: &[&str],
) -> Option<std::collections::HashMap<String, String>> {
    let mut names = std::collections::HashMap::new();
    for chunk in keys.chunks(500) {
        match client.ltp(chunk).await {
            Ok(quotes) => {
                for (name, q) in quotes {
                    let symbol = name.split_once(':').map_or(name.as_str(), |(_, s)| s).to_owned();
                    names.insert(q.instrument_token.to_string(), symbol);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot check the instrument keys with a quote");
                return None;
            }
        }
    }
    Some(names)
}

/// The one-line error for keys Upstox does not know.
pub(crate) fn unknown_keys_error(unknown: &[String]) -> anyhow::Error {
    anyhow::anyhow!(
        "unknown instrument key(s): {}; find the right key with `stoxide instruments search TEXT` (or `stoxide doctor KEY`)",
        unknown.join(", ")
    )
}

pub(crate) async fn run(globals: &Globals, out: &Output, keys: &[String]) -> anyhow::Result<()> {
    for k in keys {
        k.parse::<InstrumentKey>().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let s = Session::open(globals).await?;
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let quotes = s.client.full_quote(&refs).await?;
    let mut rows: Vec<_> = keys
        .iter()
        .filter_map(|k| {
            quotes
                .iter()
                .find(|(_, q)| q.instrument_token == k.as_str())
                .map(|(name, q)| (k.clone(), name.clone(), q.clone()))
        })
        .collect();
    let missing: Vec<&String> = keys.iter().filter(|k| !rows.iter().any(|r| &r.0 == *k)).collect();
    if out.json {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(_, name, q)| Ok((name.clone(), serde_json::to_value(q)?)))
            .collect::<anyhow::Result<_>>()?;
        out.print_json(&map)?;
    } else if !rows.is_empty() {
        let mut t = table(&[
            "instrument",
            "symbol",
            "ltp",
            "change",
            "change %",
            "volume",
            "bid",
            "ask",
            "oi",
        ]);
        rows.sort_by(|a, b| a.1.cmp(&b.1));
        for (key, name, q) in &rows {
            let pct = upstox_types::PriceChange::from_net_change(q.last_price, q.net_change).percent;
            let bid = q
                .depth
                .as_ref()
                .and_then(|d| d.buy.first())
                .map(|l| money(l.price))
                .unwrap_or_default();
            let ask = q
                .depth
                .as_ref()
                .and_then(|d| d.sell.first())
                .map(|l| money(l.price))
                .unwrap_or_default();
            t.add_row(vec![
                key.clone(),
                name.clone(),
                money(q.last_price),
                format!("{:+.2}", q.net_change),
                format!("{pct:+.2}%"),
                q.volume.to_string(),
                bid,
                ask,
                format!("{}", q.oi),
            ]);
        }
        say!("{t}");
    }
    s.close().await;
    if !missing.is_empty() {
        let list: Vec<String> = missing.into_iter().cloned().collect();
        return Err(unknown_keys_error(&list));
    }
    Ok(())
}
