//! Downloading an instrument file: a connect timeout and a deadline on every read (no overall
//! deadline: the file is tens of MB on a slow link), progress as it goes, and a bound on the
//! size whatever the server announces.

use std::time::Duration;

use futures::StreamExt;

/// The largest instrument file accepted (the complete file is tens of MB gzipped).
pub const MAX_INSTRUMENT_FILE: u64 = 256 << 20;

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// No connection, a broken one, or a read that timed out.
    #[error("{message}")]
    Transport {
        message: String,
        timed_out: bool,
        connect: bool,
    },
    /// The server answered with an error status.
    #[error("HTTP {0}")]
    Status(u16),
    /// The file is larger than [`MAX_INSTRUMENT_FILE`] (announced or actual).
    #[error("the file is larger than the {MAX_INSTRUMENT_FILE} bytes an instrument file may have")]
    TooLarge,
}

fn transport(e: &reqwest::Error) -> DownloadError {
    DownloadError::Transport {
        message: e.to_string(),
        timed_out: e.is_timeout(),
        connect: e.is_connect(),
    }
}

/// Downloads `url`, calling `progress(bytes_so_far, total_if_known)` as it goes.
///
/// # Errors
/// [`DownloadError`].
pub async fn download(
    url: &str,
    connect_timeout: Duration,
    read_timeout: Duration,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<Vec<u8>, DownloadError> {
    let http = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .read_timeout(read_timeout)
        .build()
        .map_err(|e| transport(&e))?;
    let resp = http.get(url).send().await.map_err(|e| transport(&e))?;
    if !resp.status().is_success() {
        return Err(DownloadError::Status(resp.status().as_u16()));
    }
    let total = resp.content_length();
    if total.is_some_and(|t| t > MAX_INSTRUMENT_FILE) {
        return Err(DownloadError::TooLarge);
    }
    // The announced length only sizes the buffer up to a bound: a server may lie.
    let mut body = Vec::with_capacity(total.unwrap_or(1 << 20).min(64 << 20) as usize);
    let mut stream = resp.bytes_stream();
    progress(0, total);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transport(&e))?;
        if body.len() as u64 + chunk.len() as u64 > MAX_INSTRUMENT_FILE {
            return Err(DownloadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
        progress(body.len() as u64, total);
    }
    Ok(body)
}
