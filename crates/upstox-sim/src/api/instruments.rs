//! The instrument master, served gzipped under the same path layout as the real BOD files:
//! `/market-quote/instruments/exchange/{complete,NSE,BSE,MCX}.json.gz`.

use std::io::Write;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::error::ApiError;
use crate::market::Market;
use crate::state::{AppState, InstrumentFiles};

const FILES: [(&str, Option<&str>); 4] = [
    ("complete.json.gz", None),
    ("NSE.json.gz", Some("NSE")),
    ("BSE.json.gz", Some("BSE")),
    ("MCX.json.gz", Some("MCX")),
];

/// Serializes and gzips every file (a second or two for the full universe; done once).
pub fn build_instrument_files(market: &Market) -> InstrumentFiles {
    FILES
        .iter()
        .map(|(name, exchange)| {
            let records: Vec<_> = market
                .instruments()
                .iter()
                .filter(|i| exchange.is_none_or(|e| i.exchange == e))
                .collect();
            let json = serde_json::to_vec(&records).unwrap_or_default();
            let mut gz = GzEncoder::new(Vec::with_capacity(json.len() / 6), Compression::fast());
            // Writing into a Vec cannot fail.
            let _ = gz.write_all(&json);
            (*name, bytes::Bytes::from(gz.finish().unwrap_or_default()))
        })
        .collect()
}

/// `GET /market-quote/instruments/exchange/{file}`.
pub(super) async fn file(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    if !FILES.iter().any(|(n, _)| *n == name) {
        return ApiError::not_found_path().into_response();
    }
    if state.instrument_files.get().is_none() {
        let st = state.clone();
        let built = tokio::task::spawn_blocking(move || build_instrument_files(&st.market)).await;
        if let Ok(files) = built {
            let _ = state.instrument_files.set(files);
        }
    }
    match state.instrument_files.get().and_then(|f| f.get(name.as_str())) {
        Some(body) => ([(header::CONTENT_TYPE, "application/gzip")], body.clone()).into_response(),
        None => ApiError::internal().into_response(),
    }
}
