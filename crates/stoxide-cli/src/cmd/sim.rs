//! `stoxide sim`: run the simulator until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use upstox_sim::config::ClockMode;
use upstox_sim::{SimConfig, Simulator};

use crate::settings::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct SimArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8787")]
    addr: SocketAddr,
    /// Seed of the price process (same seed, same prices).
    #[arg(long)]
    seed: Option<u64>,
    /// `session`: a trading session that is open whenever you run it; `real`: the wall clock.
    #[arg(long, value_enum)]
    clock: Option<ClockArg>,
    /// Simulator config file (TOML: apps, users, clock, faults, rate_limits, market).
    #[arg(long = "sim-config", value_name = "FILE")]
    sim_config: Option<PathBuf>,
    /// Latency added to every API answer, ms.
    #[arg(long)]
    latency_ms: Option<u64>,
    /// Fraction (0..1) of API calls answered 500.
    #[arg(long)]
    error_rate: Option<f64>,
    /// Fraction (0..1) of API calls that hang.
    #[arg(long)]
    timeout_rate: Option<f64>,
    /// Also seed this many users `SIMU00001`, `SIMU00002`, … each with a token and ₹10 lakh.
    #[arg(long, value_name = "N")]
    seed_users: Option<usize>,
    /// Number the seeded users from N (`SIMU{N:05}` on): several simulators seed disjoint users.
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed_first: usize,
    /// Write each seeded user's id and token, tab-separated, one a line, to FILE (owner-only).
    #[arg(long, value_name = "FILE")]
    tokens_file: Option<std::path::PathBuf>,
    /// Accept only these names in `X-Algo-Name` on order APIs (repeatable; `UDAPI1156` otherwise).
    #[arg(long = "algo-name", value_name = "NAME")]
    algo_names: Vec<String>,
    /// Answer order APIs only from these addresses, for every app (repeatable; `UDAPI1154` otherwise).
    #[arg(long = "static-ip", value_name = "IP")]
    static_ips: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ClockArg {
    Real,
    Session,
}

fn fraction(name: &str, v: Option<f64>) -> anyhow::Result<Option<f64>> {
    match v {
        Some(x) if !(0.0..=1.0).contains(&x) => {
            anyhow::bail!("--{name} must be between 0 and 1, not {x}")
        }
        other => Ok(other),
    }
}

/// Builds the simulator's configuration from the file and the flags.
pub(crate) fn build_config(args: &SimArgs) -> anyhow::Result<SimConfig> {
    let mut config = match &args.sim_config {
        Some(path) => SimConfig::from_file(path)?,
        None => SimConfig::default(),
    };
    if let Some(s) = args.seed {
        config.seed = s;
    }
    if let Some(c) = args.clock {
        config.clock.mode = match c {
            ClockArg::Real => ClockMode::Real,
            ClockArg::Session => ClockMode::Session,
        };
    }
    if let Some(l) = args.latency_ms {
        config.faults.latency_ms = l;
    }
    if let Some(r) = fraction("error-rate", args.error_rate)? {
        config.faults.error_rate = r;
    }
    if let Some(r) = fraction("timeout-rate", args.timeout_rate)? {
        config.faults.timeout_rate = r;
        if config.faults.timeout_hang_ms == 0 {
            config.faults.timeout_hang_ms = 30_000;
        }
    }
    if let Some(n) = args.seed_users {
        config.seed_users = n;
    }
    config.seed_first = args.seed_first;
    if !args.algo_names.is_empty() {
        config.algo_names = Some(args.algo_names.clone());
    }
    if !args.static_ips.is_empty() {
        for app in &mut config.apps {
            app.static_ips = Some(args.static_ips.clone());
        }
    }
    config.validate()?;
    Ok(config)
}

pub(crate) async fn run(args: SimArgs, _globals: &Globals) -> anyhow::Result<()> {
    let config = build_config(&args)?;
    let sim = Simulator::start(config, args.addr)
        .await
        .with_context(|| format!("starting the simulator on {}", args.addr))?;
    if let Some(path) = &args.tokens_file {
        let text: String = sim
            .seeded_tokens()
            .iter()
            .filter(|(u, _)| u.starts_with("SIMU"))
            .map(|(u, t)| format!("{u}\t{t}\n"))
            .collect();
        crate::cmd::engine::write_private(path, &text)?;
    }
    // The first stdout line is for scripts: one JSON object.
    let base = sim.base_url();
    crate::output::announce(&format!(
        "{}\nstoxide simulator listening on {base}\n  REST and order host:  {base}\n  instrument master:    {base}/market-quote/instruments/exchange/complete.json.gz\n  login dialog:         {base}/v2/login/authorization/dialog\n  control:              {base}/sim/state\n  try: UPSTOX_BASE_URL={base} UPSTOX_ACCESS_TOKEN=<token above> stoxide profile\nCtrl-C stops it.\n",
        sim.banner()
    ));
    shutdown_signal().await;
    eprintln!("stopping simulator");
    sim.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
