//! Project automation: `cargo xtask bench-instruments` and `cargo xtask bench-client`.
//! Benchmarks print their figures; they are never pass/fail tests.

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

    // 2. Plain reqwest against the simulator (HTTP + the simulator's own work).
    let http = reqwest::Client::new();
    let url = format!("{base}/v2/user/profile");
    let mut raw = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let r = http.get(&url).bearer_auth(&token).send().await?;
        let _ = r.bytes().await?;
        raw.push(t.elapsed());
    }
    let raw = median(raw);

    // 3. Our client: retry wrapper, timeout, typed decode. The client-side limiter is off here:
    // at the published 50/s it would pace the loop, which measures waiting, not overhead.
    let mut config = ClientConfig::new(Hosts::single(&base));
    config.rate_limits = None;
    let client = UpstoxClient::new(config)?.with_token(token);
    let mut ours = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        client.profile().await?;
        ours.push(t.elapsed());
    }
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
