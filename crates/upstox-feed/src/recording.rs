//! The recording file format of `stoxide record`, and replay through the streamer's API.
//!
//! ```text
//! file    = magic record*
//! magic   = "STXFEED1"                      (8 bytes)
//! record  = received_ns:u64le length:u32le frame:length bytes
//! ```
//! `received_ns` is the receive time in nanoseconds since the Unix epoch; `frame` is the raw
//! binary WebSocket payload exactly as received (a protobuf `FeedResponse`). Frames longer
//! than [`MAX_FRAME`] are refused when reading, so a corrupt length cannot exhaust memory.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::decode::{Frame, decode};
use crate::events::{EventStream, FeedEvent};

/// The file's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"STXFEED1";
/// The longest frame a reader accepts (real frames with 2,000 keys are ~160 KB).
pub const MAX_FRAME: usize = 64 << 20;

/// One recorded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub received_ns: u64,
    pub bytes: Vec<u8>,
}

/// Why a recording cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordingError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("record {index} at byte {offset} is truncated (the file ends inside it)")]
    Truncated { index: usize, offset: u64 },
    #[error("record {index} at byte {offset} claims {len} bytes, more than the {MAX_FRAME} a frame may have")]
    TooLong { index: usize, offset: u64, len: usize },
    #[error("it is not a feed recording: {0}")]
    NotARecording(&'static str),
}

/// Writes a recording.
#[derive(Debug)]
pub struct RecordingWriter<W: Write> {
    out: W,
    pub frames: u64,
    pub bytes: u64,
}

impl<W: Write> RecordingWriter<W> {
    /// Starts a recording (writes the magic).
    ///
    /// # Errors
    /// I/O errors of `out`.
    pub fn new(mut out: W) -> std::io::Result<Self> {
        out.write_all(MAGIC)?;
        Ok(Self {
            out,
            frames: 0,
            bytes: MAGIC.len() as u64,
        })
    }

    /// Appends one frame.
    ///
    /// # Errors
    /// I/O errors of `out`.
    pub fn write(&mut self, f: &RawFrame) -> std::io::Result<()> {
        self.out.write_all(&f.received_ns.to_le_bytes())?;
        self.out.write_all(&(f.bytes.len() as u32).to_le_bytes())?;
        self.out.write_all(&f.bytes)?;
        self.frames += 1;
        self.bytes += 12 + f.bytes.len() as u64;
        Ok(())
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    /// I/O errors of `out`.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Whether `bytes` start like a recording.
pub fn is_recording(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Parses a whole recording held in memory.
///
/// # Errors
/// A truncated record or an impossible length (with its position).
pub fn parse(bytes: &[u8]) -> Result<Vec<RawFrame>, RecordingError> {
    let mut frames = Vec::new();
    let mut pos = MAGIC.len().min(bytes.len());
    while pos < bytes.len() {
        let offset = pos as u64;
        let index = frames.len();
        let header = bytes
            .get(pos..pos + 12)
            .ok_or(RecordingError::Truncated { index, offset })?;
        let mut ns = [0u8; 8];
        ns.copy_from_slice(&header[..8]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&header[8..]);
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(RecordingError::TooLong { index, offset, len });
        }
        let body = bytes
            .get(pos + 12..pos + 12 + len)
            .ok_or(RecordingError::Truncated { index, offset })?;
        frames.push(RawFrame {
            received_ns: u64::from_le_bytes(ns),
            bytes: body.to_vec(),
        });
        pos += 12 + len;
    }
    Ok(frames)
}

/// Reads a recording file, or a file holding one raw frame (answered as a single frame).
///
/// # Errors
/// I/O errors and malformed recordings.
pub fn read_frames(path: &Path) -> Result<Vec<RawFrame>, RecordingError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    if is_recording(&bytes) {
        parse(&bytes)
    } else {
        Ok(vec![RawFrame { received_ns: 0, bytes }])
    }
}

/// Reads a recording file and refuses anything else: a file without the magic, or one whose
/// first frame is not a Market Data Feed v3 frame.
///
/// # Errors
/// I/O errors, malformed recordings and files of another kind.
pub fn read_recording(path: &Path) -> Result<Vec<RawFrame>, RecordingError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    if !is_recording(&bytes) {
        return Err(RecordingError::NotARecording(
            "it does not start with the STXFEED1 mark every recording starts with",
        ));
    }
    let frames = parse(&bytes)?;
    if frames.first().is_some_and(|f| decode(&f.bytes).is_err()) {
        return Err(RecordingError::NotARecording(
            "its first frame does not decode as a Market Data Feed v3 frame",
        ));
    }
    Ok(frames)
}

/// Plays frames back through the same [`EventStream`] type a live streamer gives: `MarketInfo`
/// and `Ticks` events (one `Ticks` per recorded frame), then the end of the stream. Unlike a
/// live stream, a replay never coalesces: it waits for the consumer, so a backtest sees every
/// tick. `speed` 1.0 keeps the recorded pace, 2.0 plays twice as fast, 0 plays as fast as the
/// consumer takes events. Undecodable frames are skipped with a warning, as live.
pub fn replay(frames: Vec<RawFrame>, speed: f64) -> EventStream {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let stream = EventStream::lossless(rx);
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let first = frames.first().map_or(0, |f| f.received_ns);
        for f in frames {
            if speed > 0.0 {
                let offset = Duration::from_nanos(f.received_ns.saturating_sub(first)).div_f64(speed);
                tokio::time::sleep_until(start + offset).await;
            }
            let event = match decode(&f.bytes) {
                Ok(Frame::MarketInfo(info)) => FeedEvent::MarketInfo(info),
                Ok(Frame::Ticks(t)) => FeedEvent::Ticks(t),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an undecodable recorded frame");
                    continue;
                }
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    stream
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let mut w = RecordingWriter::new(Vec::new()).expect("writer");
        w.write(&RawFrame {
            received_ns: 1,
            bytes: vec![8, 1],
        })
        .expect("write");
        w.write(&RawFrame {
            received_ns: 2,
            bytes: vec![],
        })
        .expect("write");
        let bytes = w.finish().expect("finish");
        let frames = parse(&bytes).expect("parse");
        assert_eq!(frames.len(), 2);
        assert_eq!(
            frames[0],
            RawFrame {
                received_ns: 1,
                bytes: vec![8, 1]
            }
        );
        assert!(matches!(
            parse(&bytes[..bytes.len() - 5]),
            Err(RecordingError::Truncated { index: 1, .. })
        ));
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&0u64.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(parse(&huge), Err(RecordingError::TooLong { .. })));
    }
}
