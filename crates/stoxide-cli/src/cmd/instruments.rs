//! `stoxide instruments search TEXT`: downloads the instrument master with a progress bar.

use std::time::Duration;

use chrono::TimeZone;
use indicatif::{ProgressBar, ProgressStyle};
use upstox_client::InstrumentMaster;

use crate::output::{Output, table};
use crate::settings::{Globals, Session};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum InstrumentsCommand {
    /// Find instruments by trading symbol or name.
    Search {
        text: String,
        /// At most this many results.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// Downloads and indexes the complete master, showing progress on stderr.
pub(crate) async fn load_master(client: &upstox_client::UpstoxClient) -> anyhow::Result<InstrumentMaster> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} instruments {bytes}/{total_bytes} {bytes_per_sec} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let gz = client
        .download_instruments("complete", |done, total| {
            if let Some(t) = total {
                bar.set_length(t);
            }
            bar.set_position(done);
        })
        .await?;
    bar.set_message("parsing");
    let master = tokio::task::spawn_blocking(move || InstrumentMaster::from_gzip(&gz)).await??;
    bar.finish_and_clear();
    Ok(master)
}

pub(crate) async fn run(globals: &Globals, out: &Output, cmd: InstrumentsCommand) -> anyhow::Result<()> {
    let InstrumentsCommand::Search { text, limit } = cmd;
    anyhow::ensure!(
        !text.trim().is_empty(),
        "give some text to search for, e.g. `stoxide instruments search NIFTY`"
    );
    let s = Session::open(globals).await?;
    let master = load_master(&s.client).await;
    s.close().await;
    let master = master?;
    let hits = master.search(&text, limit);
    out.show(&hits, || {
        let mut t = table(&["instrument key", "trading symbol", "name", "type", "lot", "expiry"]);
        for r in &hits {
            let expiry = r
                .expiry
                .and_then(|ms| upstox_types::IST.timestamp_millis_opt(ms).single())
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            t.add_row(vec![
                r.instrument_key.to_owned(),
                r.trading_symbol.to_owned(),
                r.name.to_owned(),
                r.instrument_type.to_owned(),
                r.lot_size.map(|l| l.to_string()).unwrap_or_default(),
                expiry,
            ]);
        }
        if hits.is_empty() {
            t.add_row(vec![format!(
                "(nothing matches {text:?} among {} instruments)",
                master.len()
            )]);
        }
        t
    })
}
