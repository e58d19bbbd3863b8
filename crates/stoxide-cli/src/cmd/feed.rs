//! `stoxide feed decode FILE` and `stoxide feed bench FILE...`.

use crate::output::say;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use upstox_feed::decode::{decode, decode_wire};
use upstox_feed::recording::read_frames;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum FeedCommand {
    /// Print a raw frame (or every frame of a recording) as the official proto3 JSON.
    Decode { file: PathBuf },
    /// Decode every frame of the files many times into typed ticks; print frames/s and MB/s.
    Bench {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Passes over all frames.
        #[arg(long, default_value_t = 50)]
        iterations: u32,
    },
}

pub(crate) fn run(cmd: FeedCommand) -> anyhow::Result<()> {
    match cmd {
        FeedCommand::Decode { file } => {
            let frames = read_frames(&file).with_context(|| format!("reading {}", file.display()))?;
            let single = frames.len() == 1;
            let mut stdout = std::io::stdout().lock();
            for (i, f) in frames.iter().enumerate() {
                let msg = decode_wire(&f.bytes).map_err(|e| {
                    if single {
                        anyhow::anyhow!("{}: {e}", file.display())
                    } else {
                        anyhow::anyhow!("{}: frame {i}: {e}", file.display())
                    }
                })?;
                let json = upstox_proto::json::feed_response(&msg);
                let text = if single {
                    serde_json::to_string_pretty(&json)?
                } else {
                    serde_json::to_string(&json)?
                };
                writeln!(stdout, "{text}")?;
            }
            Ok(())
        }
        FeedCommand::Bench { files, iterations } => {
            anyhow::ensure!(iterations > 0, "--iterations must be at least 1");
            let mut frames = Vec::new();
            for f in &files {
                frames.extend(
                    read_frames(f)
                        .with_context(|| format!("reading {}", f.display()))?
                        .into_iter()
                        .map(|r| r.bytes),
                );
            }
            anyhow::ensure!(!frames.is_empty(), "no frames in {files:?}");
            for (i, f) in frames.iter().enumerate() {
                decode(f).map_err(|e| anyhow::anyhow!("frame {i}: {e}"))?;
            }
            let bytes: usize = frames.iter().map(Vec::len).sum();
            let mut ticks = 0usize;
            let t = Instant::now();
            for _ in 0..iterations {
                for f in &frames {
                    if let Ok(upstox_feed::Frame::Ticks(v)) = decode(f) {
                        ticks += v.len();
                    }
                }
            }
            let secs = t.elapsed().as_secs_f64();
            let n = frames.len() as f64 * f64::from(iterations);
            say!(
                "decoded {} frames ({:.1} KB each on average) x {iterations}: {:.0} frames/s, {:.1} MB/s, {:.0} ticks/s (one core)",
                frames.len(),
                bytes as f64 / frames.len() as f64 / 1e3,
                n / secs,
                bytes as f64 * f64::from(iterations) / secs / 1e6,
                ticks as f64 / secs
            );
            Ok(())
        }
    }
}
