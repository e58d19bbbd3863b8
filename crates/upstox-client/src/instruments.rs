//! The instrument master (parsed and indexed by `upstox-instruments`), downloaded through the
//! client's hosts and timeouts.

use crate::client::UpstoxClient;
use crate::error::{Error, Result};

use upstox_instruments::DownloadError;
pub use upstox_instruments::{
    Instrument, InstrumentMaster, InstrumentRecord, MAX_INSTRUMENT_FILE, OptionKind, Suggestion, Why,
};

impl UpstoxClient {
    /// The URL of an instrument file (`complete`, `NSE`, `BSE`, `MCX`).
    pub fn instruments_url(&self, file: &str) -> String {
        format!(
            "{}/market-quote/instruments/exchange/{file}.json.gz",
            self.hosts().assets.trim_end_matches('/')
        )
    }

    /// Downloads an instrument file, calling `progress(bytes_so_far, total_if_known)` as it goes.
    ///
    /// # Errors
    /// Transport errors and non-2xx answers.
    pub async fn download_instruments(
        &self,
        file: &str,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<Vec<u8>> {
        let endpoint = format!("GET {file}.json.gz");
        let config = self.config();
        upstox_instruments::download(
            &self.instruments_url(file),
            config.connect_timeout,
            config.timeout,
            &mut progress,
        )
        .await
        .map_err(|e| match e {
            DownloadError::Status(status) => Error::Api {
                endpoint,
                status,
                errors: Vec::new(),
            },
            DownloadError::Transport { timed_out: true, .. } => Error::Timeout {
                endpoint,
                timeout_ms: config.timeout.as_millis() as u64,
            },
            DownloadError::Transport { message, connect, .. } => Error::Transport {
                endpoint,
                message,
                connect,
            },
            other => Error::Instruments(format!("{file}.json.gz: {other}")),
        })
    }
}
