//! Decodes a recording's frames `N` times with one decoder, for profilers and instruction
//! counts (`valgrind --tool=callgrind`): the figures go to BENCHMARKS.md.
//!
//! `cargo run --release -p upstox-feed --example decode_frames -- FILE.stx reused|owned|prost [N]`

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(which)) = (args.next(), args.next()) else {
        return Err("usage: decode_frames FILE.stx reused|owned|prost [N]".into());
    };
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1);
    let frames = upstox_feed::recording::read_recording(std::path::Path::new(&path))?;
    let bytes: usize = frames.iter().map(|f| f.bytes.len()).sum();
    let mut decoder = upstox_feed::FrameDecoder::default();
    let mut ticks = 0usize;
    let t = Instant::now();
    for _ in 0..n {
        for f in &frames {
            ticks += match which.as_str() {
                "reused" => match decoder.decode(&f.bytes)? {
                    upstox_feed::Decoded::Ticks(t) => t.len(),
                    upstox_feed::Decoded::MarketInfo(_) => 0,
                },
                "owned" => match upstox_feed::decode(&f.bytes)? {
                    upstox_feed::Frame::Ticks(t) => t.len(),
                    upstox_feed::Frame::MarketInfo(_) => 0,
                },
                "prost" => upstox_feed::decode::decode_wire(&f.bytes)?.feeds.len(),
                other => return Err(format!("{other}: one of reused, owned, prost").into()),
            };
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{which}: {} frames ({ticks} ticks, {bytes} bytes each pass) x {n} in {secs:.3} s: {:.0} MB/s",
        frames.len(),
        (bytes * n) as f64 / secs / 1e6
    );
    Ok(())
}
