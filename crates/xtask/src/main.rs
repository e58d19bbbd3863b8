//! Project automation: the benchmarks behind BENCHMARKS.md (`cargo xtask bench-all`, or one of
//! `bench-decode`, `bench-instruments`, `bench-client`, `bench-stream`, `bench-engine`).
//! Benchmarks print their figures; they are never pass/fail tests. `bench-all --quick` is the
//! smoke run the test command makes (small sizes; its figures mean nothing).

mod engine;

use std::collections::HashMap;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use upstox_client::{ClientConfig, Hosts, InstrumentMaster, UpstoxClient};
use upstox_sim::{SimConfig, Simulator};

#[derive(Debug, Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::enum_variant_names,
    reason = "the subcommands are all benchmarks; `bench-*` is what users type"
)]
enum Task {
    /// Parse + index of the full complete.json.gz, next to Python's json.load of the same file.
    BenchInstruments {
        #[arg(long, default_value_t = 7)]
        runs: usize,
        /// Python interpreter for the comparison.
        #[arg(long, default_value = "python3")]
        python: String,
    },
    /// Per-call overhead of the REST client against the simulator, next to the loopback floor.
    BenchClient {
        #[arg(long, default_value_t = 2000)]
        calls: usize,
    },
    /// The market streamer end to end against `stoxide sim` (a separate process): 5,000 ltpc +
    /// 2,000 full subscriptions on two connections; frames/s, latency, CPU, peak RSS; then the
    /// official Python SDK's MarketDataStreamerV3 on the same subscriptions.
    BenchStream {
        #[arg(long, default_value = ".venv/bin/python")]
        python: String,
        /// Seconds to measure each side.
        #[arg(long, default_value_t = 15.0)]
        seconds: f64,
        /// Simulator tick interval (ms) and instruments per frame: together they set the frame rate.
        #[arg(long, default_value_t = 20)]
        tick_ms: u64,
        #[arg(long, default_value_t = 10)]
        keys_per_frame: usize,
        /// Run the simulator on these CPUs only (`taskset -c`, e.g. `1`); with this command
        /// itself started under `taskset -c 0`, the two do not share a core.
        #[arg(long)]
        sim_cpus: Option<String>,
        /// Feed connections, alternately 5,000 ltpc and 2,000 full keys each (2: a standard
        /// user's limit; up to 5, Upstox Plus): more instruments, more frames a second.
        #[arg(long, default_value_t = 2)]
        connections: usize,
        /// Our streamers and consumers on one thread (a current-thread tokio runtime) instead of
        /// the default two-worker runtime: a consumer woken by its streamer then runs on the
        /// same thread, with no cross-thread wake-up.
        #[arg(long)]
        one_thread: bool,
    },
    /// Feed frame decoding: ours (typed ticks, and prost alone) next to the official Python SDK's
    /// path (FromString + MessageToDict) and protobuf's C-accelerated FromString alone.
    BenchDecode {
        /// Python with upstox-python-sdk installed.
        #[arg(long, default_value = ".venv/bin/python")]
        python: String,
        /// Where to keep the captured frames (recording format).
        #[arg(long, default_value = "target/bench-frames")]
        dir: std::path::PathBuf,
        /// Full-mode and ltpc-mode option keys subscribed, frames captured, timed windows (each
        /// at least 50 ms of whole passes over the frames).
        #[arg(long, default_value_t = 2000)]
        full_keys: usize,
        #[arg(long, default_value_t = 5000)]
        ltpc_keys: usize,
        #[arg(long, default_value_t = 20)]
        frames: usize,
        #[arg(long, default_value_t = 20)]
        windows: u32,
    },
    /// The engine's decisions on one core: tick → candle → strategy → signal → sized,
    /// risk-checked, tagged intents for every subscription.
    BenchEngine {
        #[arg(long, default_value_t = 10_000)]
        subscriptions: usize,
        #[arg(long, default_value_t = 200)]
        signals: usize,
    },
    /// Every benchmark in one go, each with its defaults (or small sizes with --quick). The
    /// streamer's needs the CLI built next to xtask (same profile).
    BenchAll {
        /// A smoke run: small sizes, seconds instead of minutes; its figures mean nothing.
        #[arg(long)]
        quick: bool,
        /// Python with upstox-python-sdk installed.
        #[arg(long, default_value = ".venv/bin/python")]
        python: String,
    },
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cli.command {
        Task::BenchInstruments { runs, python } => rt.block_on(bench_instruments(runs, &python)),
        Task::BenchClient { calls } => rt.block_on(bench_client(calls)),
        Task::BenchDecode {
            python,
            dir,
            full_keys,
            ltpc_keys,
            frames,
            windows,
        } => rt.block_on(bench_decode(
            &python,
            &dir,
            Capture {
                full_keys,
                ltpc_keys,
                frames,
                windows,
            },
        )),
        Task::BenchEngine { subscriptions, signals } => engine::bench_engine(subscriptions, signals),
        Task::BenchAll { quick, python } => rt.block_on(bench_all(quick, &python)),
        Task::BenchStream {
            python,
            seconds,
            tick_ms,
            keys_per_frame,
            sim_cpus,
            connections,
            one_thread,
        } => rt.block_on(bench_stream(
            &python,
            StreamRun {
                seconds,
                connections,
                tick_ms,
                keys_per_frame,
                one_thread,
            },
            sim_cpus.as_deref(),
        )),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn bench_instruments(runs: usize, python: &str) -> anyhow::Result<()> {
    let sim = Simulator::start(SimConfig::default(), "127.0.0.1:0".parse()?).await?;
    let client = UpstoxClient::new(ClientConfig::new(Hosts::single(&sim.base_url())))?;
    let gz = client.download_instruments("complete", |_, _| {}).await?;
    sim.shutdown().await;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("complete.json.gz");
    std::fs::File::create(&path)?.write_all(&gz)?;

    let mut ours = Vec::new();
    let mut records = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let m = InstrumentMaster::from_gzip(&gz)?;
        ours.push(t.elapsed());
        records = m.len();
    }
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2_reader(&gz), &mut json)?;
    let json_len = json.len();
    let mut parse_only = Vec::new();
    for _ in 0..runs {
        let copy = json.clone();
        let t = Instant::now();
        InstrumentMaster::from_json(copy)?;
        parse_only.push(t.elapsed());
    }
    let parse_only = median(parse_only);

    let script = format!(
        "import gzip, json, time\nts=[]\nfor _ in range({runs}):\n    t=time.perf_counter()\n    with gzip.open({p:?}) as f: d=json.load(f)\n    ts.append(time.perf_counter()-t)\nts.sort()\nprint(ts[len(ts)//2])",
        p = path.display().to_string()
    );
    let out = Command::new(python)
        .args(["-c", &script])
        .output()
        .with_context(|| format!("running {python}"))?;
    anyhow::ensure!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py = Duration::from_secs_f64(String::from_utf8_lossy(&out.stdout).trim().parse()?);

    let ours = median(ours);
    println!(
        "instrument master: {records} records, {:.1} MB gzipped, {:.1} MB JSON; median of {runs} runs",
        gz.len() as f64 / 1e6,
        json_len as f64 / 1e6
    );
    println!("| what | median |");
    println!("|---|---|");
    println!(
        "| stoxide: gunzip + parse + index (InstrumentMaster::from_gzip) | {:.0} ms |",
        ms(ours)
    );
    println!(
        "| of which parse + index (InstrumentMaster::from_json) | {:.0} ms |",
        ms(parse_only)
    );
    println!("| Python: gzip.open + json.load (no index) | {:.0} ms |", ms(py));
    println!("| ratio | {:.1}× faster |", py.as_secs_f64() / ours.as_secs_f64());
    Ok(())
}

fn flate2_reader(gz: &[u8]) -> impl std::io::Read + '_ {
    flate2::read::MultiGzDecoder::new(gz)
}

async fn bench_client(calls: usize) -> anyhow::Result<()> {
    let mut config = SimConfig::default();
    // Limits would measure waiting, not overhead.
    let unlimited = upstox_types::WindowLimit {
        max: u32::MAX,
        window: Duration::from_secs(1),
    };
    config.rate_limits.standard = vec![unlimited];
    let sim = Simulator::start(config, "127.0.0.1:0".parse()?).await?;
    let token = sim.token_of("SIM001").context("token")?.to_owned();
    let base = sim.base_url();

    // 1. The loopback floor: one small request and response over a kept-alive TCP connection.
    let floor = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 256];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; 256];
        let mut v = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            s.write_all(b"GET /v2/user/profile HTTP/1.1\r\n\r\n").await?;
            let _ = s.read(&mut buf).await?;
            v.push(t.elapsed());
        }
        median(v)
    };

    // 2. Plain reqwest against the simulator (HTTP + the simulator's own work), and 3. our
    // client (retry wrapper, timeout, typed decode), call for call in turn, so that this shared
    // machine's swings fall on both alike (timed one loop after the other, the difference had
    // swung 25–75 µs between runs). The client-side limiter is off here: at the published 50/s
    // it would pace the loop, which measures waiting, not overhead.
    let http = reqwest::Client::new();
    let url = format!("{base}/v2/user/profile");
    let mut config = ClientConfig::new(Hosts::single(&base));
    config.limiter = None;
    let client = UpstoxClient::new(config)?.with_token(token.clone().into());
    let mut raw = Vec::with_capacity(calls);
    let mut ours = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let r = http.get(&url).bearer_auth(&token).send().await?;
        let _ = r.bytes().await?;
        raw.push(t.elapsed());
        let t = Instant::now();
        client.profile().await?;
        ours.push(t.elapsed());
    }
    let raw = median(raw);
    let ours = median(ours);
    sim.shutdown().await;
    println!("REST client per call, GET /v2/user/profile on loopback, median of {calls} calls");
    println!("| what | median |");
    println!("|---|---|");
    println!(
        "| loopback floor (TCP echo of a request line) | {:.1} µs |",
        floor.as_secs_f64() * 1e6
    );
    println!("| plain reqwest → simulator | {:.1} µs |", raw.as_secs_f64() * 1e6);
    println!(
        "| UpstoxClient::profile → simulator | {:.1} µs |",
        ours.as_secs_f64() * 1e6
    );
    println!(
        "| client overhead over plain reqwest | {:.1} µs |",
        (ours.as_secs_f64() - raw.as_secs_f64()) * 1e6
    );
    Ok(())
}

/// Captures live frames from the simulator: `keys` subscribed in `mode`, `frames` data frames.
async fn capture(
    sim: &Simulator,
    keys: &[String],
    mode: upstox_types::FeedMode,
    frames: usize,
) -> anyhow::Result<Vec<upstox_feed::recording::RawFrame>> {
    use upstox_feed::{MarketStreamer, StaticToken, StreamerConfig};
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    let config = StreamerConfig {
        raw_frames: Some(tx),
        ..StreamerConfig::default()
    };
    let client = UpstoxClient::new(ClientConfig::new(Hosts::single(&sim.base_url())))?;
    let token = sim.token_of("SIM001").context("token")?.to_owned();
    let (streamer, _events) = MarketStreamer::start(client, StaticToken(token.into()), config);
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    streamer.subscribe(&refs, mode)?;
    let mut out = Vec::new();
    while out.len() < frames {
        let f = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await?
            .context("streamer ended")?;
        // Skip market_info and tiny frames: keep frames that carry many instruments.
        if f.bytes.len() > 1000 {
            out.push(f);
        }
    }
    streamer.shutdown().await;
    Ok(out)
}

fn save(path: &std::path::Path, frames: &[upstox_feed::recording::RawFrame]) -> anyhow::Result<()> {
    let mut w = upstox_feed::recording::RecordingWriter::new(std::io::BufWriter::new(std::fs::File::create(path)?))?;
    for f in frames {
        w.write(f)?;
    }
    w.finish()?;
    Ok(())
}

/// A decoder's speed: frames/s and MB/s of the median window, MB/s of the best.
#[derive(Debug, Clone, Copy)]
struct Rate {
    fps: f64,
    mbs: f64,
    best_mbs: f64,
}

/// Decodes the frames with `f` in `windows` timed windows of at least 50 ms each (whole passes
/// over the frames): the median window, and the best one — on a shared machine the best is the
/// figure least disturbed by other processes (as `timeit` advises); Python's side is timed the
/// same way.
fn rate(frames: &[upstox_feed::recording::RawFrame], windows: u32, mut f: impl FnMut(&[u8]) -> usize) -> Rate {
    let bytes: usize = frames.iter().map(|f| f.bytes.len()).sum();
    let mut sink = 0usize;
    let mut pass = || {
        for fr in frames {
            sink = sink.wrapping_add(f(&fr.bytes));
        }
    };
    // One untimed pass warms the decoder; a timed one sizes the windows.
    pass();
    let t = Instant::now();
    pass();
    let passes = (0.05 / t.elapsed().as_secs_f64().max(1e-9)).ceil().max(1.0) as u32;
    let mut secs: Vec<f64> = (0..windows.max(1))
        .map(|_| {
            let t = Instant::now();
            for _ in 0..passes {
                pass();
            }
            t.elapsed().as_secs_f64() / f64::from(passes)
        })
        .collect();
    std::hint::black_box(sink);
    secs.sort_by(f64::total_cmp);
    let median = percentile(&secs, 0.5);
    Rate {
        fps: frames.len() as f64 / median,
        mbs: bytes as f64 / median / 1e6,
        best_mbs: bytes as f64 / secs[0] / 1e6,
    }
}

const PY_DECODE: &str = r#"
import sys, time, struct
from google.protobuf import json_format
from google.protobuf.internal import api_implementation
from upstox_client.feeder.proto import MarketDataFeedV3_pb2 as pb
data = open(sys.argv[1], "rb").read()
frames, pos = [], 8
while pos < len(data):
    ns, n = struct.unpack_from("<QI", data, pos); pos += 12
    frames.append(data[pos:pos+n]); pos += n
total = sum(map(len, frames))
def bench(fn, min_secs):
    # Windows of at least 50 ms (whole passes), for at least min_secs: the median window and
    # the best, as on the Rust side.
    for f in frames: fn(f)
    t = time.perf_counter()
    for f in frames: fn(f)
    passes = max(1, int(0.05 / max(time.perf_counter() - t, 1e-9)) + 1)
    secs, start = [], time.perf_counter()
    while time.perf_counter() - start < min_secs or len(secs) < 5:
        t = time.perf_counter()
        for _ in range(passes):
            for f in frames: fn(f)
        secs.append((time.perf_counter() - t) / passes)
    secs.sort()
    med = secs[len(secs) // 2]
    return len(frames) / med, total / med / 1e6, total / secs[0] / 1e6
fs = bench(lambda f: pb.FeedResponse.FromString(f), 2.0)
sdk = bench(lambda f: json_format.MessageToDict(pb.FeedResponse.FromString(f)), 2.0)
print(api_implementation.Type(), *fs, *sdk)
"#;

/// What `bench-decode` captures, and how many timed windows it decodes it in.
#[derive(Debug, Clone, Copy)]
struct Capture {
    full_keys: usize,
    ltpc_keys: usize,
    frames: usize,
    windows: u32,
}

/// Runs every benchmark, one after the other, each under its own heading.
async fn bench_all(quick: bool, python: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let step = |name: &str| println!("\n## {name} ({:.0} s in)\n", started.elapsed().as_secs_f64());
    step("feed decoding");
    let capture = if quick {
        Capture {
            full_keys: 100,
            ltpc_keys: 200,
            frames: 3,
            windows: 2,
        }
    } else {
        Capture {
            full_keys: 2000,
            ltpc_keys: 5000,
            frames: 20,
            windows: 20,
        }
    };
    let dir = tempfile::tempdir()?;
    bench_decode(python, dir.path(), capture).await?;
    step("instrument master");
    bench_instruments(if quick { 1 } else { 7 }, python).await?;
    step("REST client");
    bench_client(if quick { 50 } else { 2000 }).await?;
    step("streamer end to end");
    // In a process of its own: the peak RSS it reports is then the streamer's, not the frames
    // and instrument master the steps above left in this process's heap.
    let seconds = if quick { "2" } else { "15" };
    for one_thread in [false, true] {
        let mut command = Command::new(std::env::current_exe().context("where xtask runs from")?);
        command.args(["bench-stream", "--python", python, "--seconds", seconds]);
        command.args(["--tick-ms", "20", "--keys-per-frame", "10", "--connections", "2"]);
        if one_thread {
            command.arg("--one-thread");
        }
        let status = command.status().context("running xtask bench-stream")?;
        anyhow::ensure!(status.success(), "bench-stream failed: {status}");
    }
    step("engine decisions");
    if quick {
        engine::bench_engine(500, 5)?;
    } else {
        engine::bench_engine(10_000, 200)?;
    }
    println!(
        "\nall benchmarks ran in {:.0} s{}",
        started.elapsed().as_secs_f64(),
        if quick {
            " (--quick: smoke sizes, figures not comparable)"
        } else {
            ""
        }
    );
    Ok(())
}

async fn bench_decode(python: &str, dir: &std::path::Path, size: Capture) -> anyhow::Result<()> {
    use upstox_types::{FeedMode, Segment};
    let mut config = SimConfig::default();
    config.feed.tick_interval_ms = 200;
    let sim = Simulator::start(config, "127.0.0.1:0".parse()?).await?;
    let market = &sim.state().market;
    let options: Vec<String> = market
        .instruments()
        .iter()
        .filter(|i| i.segment == Segment::NseFo && i.is_option())
        .map(|i| i.instrument_key.clone())
        .collect();
    let full_keys: Vec<String> = options.iter().take(size.full_keys).cloned().collect();
    let ltpc_keys: Vec<String> = options
        .iter()
        .skip(size.full_keys)
        .take(size.ltpc_keys)
        .cloned()
        .collect();
    std::fs::create_dir_all(dir)?;
    let full = capture(&sim, &full_keys, FeedMode::Full, size.frames).await?;
    let ltpc = capture(&sim, &ltpc_keys, FeedMode::Ltpc, size.frames).await?;
    sim.shutdown().await;
    println!(
        "| frames ({}) | decoder | frames/s | MB/s | MB/s, best window |",
        chrono::Utc::now().date_naive()
    );
    println!("|---|---|---|---|---|");
    let names = [
        format!("full ({} option keys)", size.full_keys),
        format!("ltpc ({} option keys)", size.ltpc_keys),
    ];
    let row = |name: &str, what: &str, r: Rate| {
        println!("| {name} | {what} | {:.0} | {:.0} | {:.0} |", r.fps, r.mbs, r.best_mbs);
    };
    for (name, frames) in [(&names[0], &full), (&names[1], &ltpc)] {
        let path = dir.join(format!("{}.stx", name.split(' ').next().unwrap_or("frames")));
        save(&path, frames)?;
        let avg = frames.iter().map(|f| f.bytes.len()).sum::<usize>() as f64 / frames.len() as f64 / 1e3;
        let r = rate(frames, size.windows, |b| match upstox_feed::decode(b) {
            Ok(upstox_feed::Frame::Ticks(t)) => t.len(),
            _ => 0,
        });
        row(
            &format!("{name}, avg {avg:.0} KB"),
            "stoxide: typed ticks, owned (upstox_feed::decode)",
            r,
        );
        let mut decoder = upstox_feed::FrameDecoder::default();
        let r = rate(frames, size.windows, |b| match decoder.decode(b) {
            Ok(upstox_feed::Decoded::Ticks(t)) => t.len(),
            _ => 0,
        });
        row("", "stoxide: typed ticks, reused storage (FrameDecoder)", r);
        let r = rate(frames, size.windows, |b| {
            upstox_feed::decode::decode_wire(b).map(|m| m.feeds.len()).unwrap_or(0)
        });
        row("", "stoxide: prost message only", r);
        let out = Command::new(python)
            .args(["-c", PY_DECODE, path.to_str().context("utf8 path")?])
            .output()
            .with_context(|| format!("running {python}"))?;
        anyhow::ensure!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Vec<&str> = text.split_whitespace().collect();
        anyhow::ensure!(v.len() == 7, "unexpected python output: {text}");
        let num = |i: usize| v[i].parse::<f64>().with_context(|| format!("python printed {text}"));
        let py = |i: usize| -> anyhow::Result<Rate> {
            Ok(Rate {
                fps: num(i)?,
                mbs: num(i + 1)?,
                best_mbs: num(i + 2)?,
            })
        };
        row("", &format!("Python protobuf ({}) FromString only", v[0]), py(1)?);
        let sdk = py(4)?;
        println!(
            "| | official SDK path: FromString + MessageToDict | {:.0} | {:.1} | {:.1} |",
            sdk.fps, sdk.mbs, sdk.best_mbs
        );
    }
    Ok(())
}

/// (user+system CPU seconds, peak RSS in MB) of this process, from /proc.
fn self_usage() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the ')'.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm / 1024.0)
}

/// The `p` quantile (0..=1) of sorted values; the default value when there are none.
pub(crate) fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    sorted
        .get((sorted.len().saturating_sub(1) as f64 * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

const PY_STREAM: &str = r#"
import json, resource, sys, time
import upstox_client, websocket
base, token, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
plan, out_path = json.load(open(sys.argv[4])), sys.argv[5]
real = websocket.WebSocketApp
def patched(url, *a, **k):
    return real(url.replace("wss://api.upstox.com", base.replace("http://", "ws://")), *a, **k)
websocket.WebSocketApp = patched
cfg = upstox_client.Configuration(); cfg.host = base; cfg.access_token = token
client = upstox_client.ApiClient(cfg)
count = [0]
window = [False]
seen = []
def on_message(m):
    count[0] += 1
    if window[0]:
        now = time.time_ns()
        ts = m.get("currentTs", "0")
        for k in m.get("feeds", {}):
            seen.append("%d\t%s\t%s\n" % (now, ts, k))
streamers = []
for keys, mode in plan:
    s = upstox_client.MarketDataStreamerV3(client, keys, mode)
    s.on("message", on_message)
    s.connect()
    streamers.append(s)
time.sleep(3)
c0, r0 = count[0], resource.getrusage(resource.RUSAGE_SELF)
t0 = time.time()
window[0] = True
time.sleep(secs)
window[0] = False
c1, r1 = count[0], resource.getrusage(resource.RUSAGE_SELF)
el = time.time() - t0
for s in streamers: s.disconnect()
with open(out_path, "w") as f: f.writelines(seen)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
# Peak RSS from /proc (VmHWM is this process's own; ru_maxrss would carry the parent's peak
# across fork and exec).
hwm = next((int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")), 0)
print((c1 - c0) / el, cpu, hwm / 1024, c1 - c0)
"#;

/// A 64-bit FNV-1a hash of an instrument key's text, for joining ticks with the send log
/// without keeping a string per tick.
fn key_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn unix_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// (currentTs, key hash) → when the frame carrying that tick was sent (ns).
type SendTimes = HashMap<(i64, u64), u128>;

/// The simulator's send log: each tick's send time, and each frame's (send ns, currentTs).
fn read_send_log(path: &std::path::Path) -> anyhow::Result<(SendTimes, Vec<(u128, i64)>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut sent = HashMap::new();
    let mut frames = Vec::new();
    for line in text.lines() {
        let mut f = line.split('\t');
        let (Some(ns), Some(ts)) = (f.next(), f.next()) else {
            continue;
        };
        let (Ok(ns), Ok(ts)) = (ns.parse::<u128>(), ts.parse::<i64>()) else {
            continue;
        };
        frames.push((ns, ts));
        for key in f {
            sent.insert((ts, key_hash(&[key.as_bytes()])), ns);
        }
    }
    Ok((sent, frames))
}

/// Latencies (µs) of received ticks `(recv ns, currentTs, key hash)` against the send log,
/// for ticks sent from `from` on (ticks that waited in the queue from before the window are
/// not the stream's latency); answers the latencies and how many ticks found no send record.
fn join_latencies(sent: &SendTimes, seen: &[(u128, i64, u64)], from: u128) -> (Vec<f64>, usize) {
    let mut lat = Vec::with_capacity(seen.len());
    let mut unmatched = 0;
    for (recv, ts, key) in seen {
        match sent.get(&(*ts, *key)) {
            Some(ns) if *ns >= from => lat.push((*recv as f64 - *ns as f64) / 1e3),
            Some(_) => {}
            None => unmatched += 1,
        }
    }
    lat.sort_by(f64::total_cmp);
    (lat, unmatched)
}

/// What one `bench-stream` run measures.
#[derive(Clone, Copy)]
struct StreamRun {
    seconds: f64,
    connections: usize,
    tick_ms: u64,
    keys_per_frame: usize,
    one_thread: bool,
}

/// What our side saw in its window.
struct OurSide {
    /// (receive ns, currentTs, key hash) of every tick a consumer got.
    seen: Vec<(u128, i64, u64)>,
    window_start: u128,
    window_end: u128,
    elapsed: f64,
    cpu: f64,
    rss: f64,
    ticks: u64,
    coalesced: u64,
}

/// Our streamers, one per planned connection, each with a consumer task recording what it
/// gets; CPU and the window are measured here (the simulator is another process).
async fn our_side(
    client: UpstoxClient,
    token: String,
    plan: Vec<(Vec<String>, upstox_types::FeedMode)>,
    seconds: f64,
) -> anyhow::Result<OurSide> {
    use upstox_feed::{FeedEvent, MarketStreamer, StaticToken, StreamerConfig};
    let mut handles = Vec::new();
    for (keys, mode) in &plan {
        let (s, events) = MarketStreamer::start(
            client.clone(),
            StaticToken(token.clone().into()),
            StreamerConfig::default(),
        );
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        s.subscribe(&refs, *mode)?;
        handles.push((s, std::sync::Arc::new(events)));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Peak RSS from here on (Linux: "5" resets VmHWM to the current RSS), so what the process
    // held before — the instrument master read for the keys — is not counted as the stream's.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (cpu0, _) = self_usage();
    let started = Instant::now();
    let (window_start, frames_before) = (unix_ns(), handles.iter().map(|(_, e)| e.ticks_received()).sum::<u64>());
    // The queues count from the stream's start (the initial snapshot included): the window's
    // figure is the difference.
    let coalesced_before: u64 = handles.iter().map(|(_, e)| e.coalesced()).sum();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(seconds);
    let consumers: Vec<_> = handles
        .iter()
        .map(|(_, events)| {
            let events = events.clone();
            tokio::spawn(async move {
                let mut seen: Vec<(u128, i64, u64)> = Vec::with_capacity(1 << 19);
                // One timer for the window, not one per event (its registration was counted
                // as the streamer's CPU).
                let end = tokio::time::sleep_until(deadline);
                tokio::pin!(end);
                loop {
                    tokio::select! {
                        () = &mut end => return Ok(seen),
                        e = events.next() => match e {
                            Some(FeedEvent::Ticks(t)) => {
                                let now = unix_ns();
                                for tick in &t {
                                    let k = &tick.instrument_key;
                                    seen.push((now, tick.current_ts, key_hash(&[k.segment().as_str().as_bytes(), b"|", k.id().as_bytes()])));
                                }
                            }
                            Some(FeedEvent::Stopped(d)) => anyhow::bail!("stream stopped: {d}"),
                            Some(_) => {}
                            None => anyhow::bail!("stream ended"),
                        }
                    }
                }
            })
        })
        .collect();
    let mut seen: Vec<(u128, i64, u64)> = Vec::new();
    for c in consumers {
        seen.extend(c.await??);
    }
    let window_end = unix_ns();
    let elapsed = started.elapsed().as_secs_f64();
    let (cpu1, rss) = self_usage();
    let ticks: u64 = handles.iter().map(|(_, e)| e.ticks_received()).sum::<u64>() - frames_before;
    let coalesced: u64 = handles.iter().map(|(_, e)| e.coalesced()).sum::<u64>() - coalesced_before;
    for (s, _) in handles {
        s.shutdown().await;
    }
    Ok(OurSide {
        seen,
        window_start,
        window_end,
        elapsed,
        cpu: cpu1 - cpu0,
        rss,
        ticks,
        coalesced,
    })
}

async fn bench_stream(python: &str, run: StreamRun, sim_cpus: Option<&str>) -> anyhow::Result<()> {
    use upstox_types::FeedMode;
    let StreamRun {
        seconds,
        connections,
        tick_ms,
        keys_per_frame,
        one_thread,
    } = run;
    anyhow::ensure!(
        (1..=5).contains(&connections),
        "--connections takes 1 to 5 (Upstox allows 2 feed connections a user, 5 with Upstox Plus)"
    );
    // The simulator runs as its own process so its CPU is not counted as ours; it records each
    // frame's send time (ns, this machine's clock) in a side file, never on the wire.
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("sim.toml");
    let send_log = dir.path().join("sent.tsv");
    std::fs::write(
        &conf,
        format!(
            "[feed]\ntick_interval_ms = {tick_ms}\nmax_keys_per_frame = {keys_per_frame}\nmax_connections_per_user = {}\nsend_log = {:?}\n",
            connections.max(2),
            send_log.to_str().context("utf8 path")?
        ),
    )?;
    let exe = std::env::current_exe()?.with_file_name("stoxide");
    anyhow::ensure!(
        exe.exists(),
        "build the CLI first: cargo build --release -p stoxide-cli"
    );
    let mut command = match sim_cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus]).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let mut child = command
        .args([
            "sim",
            "--addr",
            "127.0.0.1:0",
            "--sim-config",
            conf.to_str().context("utf8")?,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().context("stdout")?),
        &mut line,
    )?;
    let banner: serde_json::Value = serde_json::from_str(&line)?;
    let base = banner["base_url"].as_str().context("base_url")?.to_owned();
    let token = banner["users"][0]["access_token"].as_str().context("token")?.to_owned();

    // Keys: NSE_FO options from the instrument master.
    let client = UpstoxClient::new(ClientConfig::new(Hosts::single(&base)))?;
    let gz = client.download_instruments("NSE", |_, _| {}).await?;
    let master = InstrumentMaster::from_gzip(&gz)?;
    let options: Vec<String> = master
        .iter()
        .filter(|r| r.is_option())
        .map(|r| r.instrument_key.to_owned())
        .collect();
    drop(master);
    // Connection i: 5,000 ltpc keys when i is even, 2,000 full when odd (the caps forbid mixing
    // 5,000 ltpc with full on one connection); every connection its own keys.
    let mut plan: Vec<(Vec<String>, FeedMode)> = Vec::new();
    let mut next_key = 0;
    for i in 0..connections {
        let (n, mode) = if i % 2 == 0 {
            (5000, FeedMode::Ltpc)
        } else {
            (2000, FeedMode::Full)
        };
        let keys: Vec<String> = options.iter().skip(next_key).take(n).cloned().collect();
        anyhow::ensure!(
            keys.len() == n,
            "the instrument master has too few options for {connections} connections"
        );
        next_key += n;
        plan.push((keys, mode));
    }

    // Our side, on this runtime's two workers or on a current-thread runtime of its own.
    let ours = if one_thread {
        let (client, token, plan) = (client.clone(), token.clone(), plan.clone());
        tokio::task::spawn_blocking(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(our_side(client, token, plan, seconds))
        })
        .await??
    } else {
        our_side(client.clone(), token.clone(), plan.clone(), seconds).await?
    };
    let OurSide {
        seen,
        window_start,
        window_end,
        elapsed,
        cpu,
        rss,
        ticks,
        coalesced,
    } = ours;

    // The official SDK on the same subscriptions, recording when each tick reached its callback
    // (the plan goes in a file: 14,000 keys are more than one argument may hold).
    let plan_path = dir.path().join("plan.json");
    std::fs::write(
        &plan_path,
        serde_json::to_string(
            &plan
                .iter()
                .map(|(k, m)| (k, if *m == FeedMode::Ltpc { "ltpc" } else { "full" }))
                .collect::<Vec<_>>(),
        )?,
    )?;
    let py_seen = dir.path().join("py_seen.tsv");
    let out = Command::new(python)
        .args([
            "-c",
            PY_STREAM,
            &base,
            &token,
            &seconds.to_string(),
            plan_path.to_str().context("utf8 path")?,
            py_seen.to_str().context("utf8 path")?,
        ])
        .output()
        .with_context(|| format!("running {python}"))?;
    let _ = child.kill();
    let _ = child.wait();
    anyhow::ensure!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    anyhow::ensure!(v.len() == 4, "unexpected python output: {text}");

    let (sent, frame_times) = read_send_log(&send_log)?;
    let frames_in = |a: u128, b: u128| frame_times.iter().filter(|t| (a..b).contains(&t.0)).count() as f64;
    let our_frames = frames_in(window_start, window_end);
    let (lat, unmatched) = join_latencies(&sent, &seen, window_start);
    let py_lines = std::fs::read_to_string(&py_seen).unwrap_or_default();
    let py_ticks: Vec<(u128, i64, u64)> = py_lines
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((
                f.next()?.parse().ok()?,
                f.next()?.parse().ok()?,
                key_hash(&[f.next()?.as_bytes()]),
            ))
        })
        .collect();
    // The SDK's window starts 3 s after it connected; its ticks sent before are left out alike.
    let py_from = py_ticks.iter().map(|t| t.0).min().unwrap_or(0);
    let (py_lat, py_unmatched) = join_latencies(&sent, &py_ticks, py_from);
    let py_frames = v[3];
    let us = |l: &[f64], p: f64| percentile(l, p);
    println!(
        "streamer end to end vs `stoxide sim` (tick {tick_ms} ms, {keys_per_frame} instruments per frame), {connections} connections (5,000 ltpc / 2,000 full keys alternately), {seconds:.0} s each side, ours on {}; latency = consumer's clock − the simulator's send time (ns, same machine)",
        if one_thread {
            "one thread (current-thread runtime)"
        } else {
            "a two-worker runtime"
        }
    );
    println!(
        "| client | frames/s sent | ticks/s | CPU % of one core | CPU µs per frame | peak RSS | send→consumer p50 / p99 / p99.9 |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| stoxide MarketStreamer | {:.0} | {:.0} | {:.0}% | {:.1} | {rss:.0} MB | {:.0} µs / {:.0} µs / {:.0} µs ({} ticks timed, {unmatched} unmatched, {coalesced} coalesced) |",
        our_frames / elapsed,
        ticks as f64 / elapsed,
        cpu / elapsed * 100.0,
        cpu * 1e6 / our_frames.max(1.0),
        us(&lat, 0.5),
        us(&lat, 0.99),
        us(&lat, 0.999),
        lat.len()
    );
    println!(
        "| official SDK MarketDataStreamerV3 (Python) | {:.0} (callbacks) | – | {:.0}% | {:.1} | {:.0} MB | {:.0} µs / {:.0} µs / {:.0} µs ({} ticks timed, {py_unmatched} unmatched) |",
        v[0],
        v[1] / seconds * 100.0,
        v[1] * 1e6 / py_frames.max(1.0),
        v[2],
        us(&py_lat, 0.5),
        us(&py_lat, 0.99),
        us(&py_lat, 0.999),
        py_lat.len()
    );
    burst_breakdown(&sent, &frame_times, &seen, window_start);
    Ok(())
}

/// Where the latency comes from: the simulator sends each tick's moved instruments as a burst
/// of frames (one `currentTs`); each received tick's latency is split by how far into its burst
/// its frame left (the send-side offset from the burst's first frame) — queueing behind the
/// burst shows as latency growing with the offset.
fn burst_breakdown(sent: &SendTimes, frames: &[(u128, i64)], seen: &[(u128, i64, u64)], from: u128) {
    let mut bursts: HashMap<i64, (u128, u128, usize)> = HashMap::new();
    for (ns, ts) in frames {
        let b = bursts.entry(*ts).or_insert((*ns, *ns, 0));
        b.0 = b.0.min(*ns);
        b.1 = b.1.max(*ns);
        b.2 += 1;
    }
    let mut sizes: Vec<usize> = bursts.values().map(|b| b.2).collect();
    let mut spans: Vec<f64> = bursts.values().map(|b| (b.1 - b.0) as f64 / 1e3).collect();
    sizes.sort_unstable();
    spans.sort_by(f64::total_cmp);
    // (place in the burst 0..1, send offset µs, latency µs)
    let mut rows: Vec<(f64, f64, f64)> = Vec::new();
    for (recv, ts, key) in seen {
        let (Some(ns), Some(b)) = (sent.get(&(*ts, *key)), bursts.get(ts)) else {
            continue;
        };
        if *ns < from {
            continue;
        }
        let span = (b.1 - b.0).max(1) as f64;
        let offset = (*ns - b.0) as f64;
        rows.push((offset / span, offset / 1e3, (*recv as f64 - *ns as f64) / 1e3));
    }
    println!(
        "bursts: {} (frames per burst p50 {} / max {}; first → last frame sent p50 {:.0} µs / p99 {:.0} µs)",
        bursts.len(),
        percentile(&sizes, 0.5),
        sizes.last().copied().unwrap_or(0),
        percentile(&spans, 0.5),
        percentile(&spans, 0.99)
    );
    println!("| frame's place in its burst | ticks | send offset p50 | send → consumer p50 / p99 |");
    println!("|---|---|---|---|");
    for (lo, hi) in [(0.0, 0.1), (0.1, 0.5), (0.5, 0.9), (0.9, 1.01)] {
        let pick = |f: fn(&(f64, f64, f64)) -> f64| {
            let mut v: Vec<f64> = rows.iter().filter(|r| (lo..hi).contains(&r.0)).map(f).collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let (lat, off) = (pick(|r| r.2), pick(|r| r.1));
        println!(
            "| {:.0}–{:.0} % | {} | {:.0} µs | {:.0} µs / {:.0} µs |",
            lo * 100.0,
            hi.min(1.0) * 100.0,
            lat.len(),
            percentile(&off, 0.5),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99)
        );
    }
}
