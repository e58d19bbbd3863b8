//! Loads an instrument file N times, for profiling (`perf record`, `valgrind --tool=callgrind`):
//! `load_master complete.json.gz [runs]`; prints each load's time.
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: load_master FILE.json.gz [runs]")?;
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let gz = std::fs::read(&path)?;
    for _ in 0..runs {
        let t = Instant::now();
        let m = upstox_instruments::InstrumentMaster::from_gzip(&gz)?;
        println!("{} records in {:.1} ms", m.len(), t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(())
}
