//! `stoxide stream`, `stoxide record`, `stoxide replay`: the market feed from the command line.

use crate::output::say;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use upstox_feed::recording::{RecordingWriter, read_recording, replay};
use upstox_feed::{EventStream, FeedEvent, StreamerConfig, Tick};
use upstox_types::{FeedMode, InstrumentKey};

use crate::output::{money, table};
use crate::settings::{Globals, Session};

fn parse_mode(s: &str) -> Result<FeedMode, String> {
    s.parse()
}

#[derive(Debug, clap::Args)]
pub(crate) struct StreamArgs {
    /// Instrument keys, e.g. "NSE_INDEX|Nifty 50".
    #[arg(required = true, value_name = "KEY")]
    keys: Vec<String>,
    /// ltpc, option_greeks, full or full_d30.
    #[arg(long, default_value = "ltpc", value_parser = parse_mode)]
    mode: FeedMode,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    duration: Option<f64>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RecordArgs {
    #[arg(required = true, value_name = "KEY")]
    keys: Vec<String>,
    #[arg(long, default_value = "full", value_parser = parse_mode)]
    mode: FeedMode,
    /// The recording file to write (format: README, "Recordings").
    #[arg(long)]
    out: PathBuf,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    duration: Option<f64>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    file: PathBuf,
    /// 1 = recorded pace, 10 = ten times faster, 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    speed: f64,
}

fn check_keys(keys: &[String]) -> anyhow::Result<Vec<&str>> {
    for k in keys {
        k.parse::<InstrumentKey>().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(keys.iter().map(String::as_str).collect())
}

fn deadline(duration: Option<f64>) -> anyhow::Result<Option<tokio::time::Instant>> {
    match duration {
        Some(d) if !(d.is_finite() && d > 0.0) => anyhow::bail!("--duration must be a positive number of seconds"),
        Some(d) => Ok(Some(tokio::time::Instant::now() + Duration::from_secs_f64(d))),
        None => Ok(None),
    }
}

async fn until_deadline(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Notices from the vault watcher (expiry ahead, a new token picked up), in words; none for a
/// fixed token.
struct Notices {
    rx: Option<tokio::sync::mpsc::UnboundedReceiver<stoxide_vault::TokenEvent>>,
    /// Each key's trading symbol, for the table (people read "RELIANCE", not the ISIN).
    names: std::collections::HashMap<String, String>,
}

impl Notices {
    async fn next(&mut self) -> Option<String> {
        match &mut self.rx {
            Some(rx) => rx.recv().await.map(|e| crate::words::token_event(&e)),
            None => std::future::pending().await,
        }
    }
}

async fn open_streamer(
    globals: &Globals,
    keys: &[&str],
    mode: FeedMode,
    config: StreamerConfig,
) -> anyhow::Result<(Session, stoxide_app::stream::Stream, Notices)> {
    let session = Session::open(globals).await?;
    // A key Upstox does not know streams nothing at all: say so instead of waiting silently.
    let names = crate::cmd::quote::key_names(&session.client, keys).await;
    if let Some(names) = &names {
        let unknown: Vec<String> = keys
            .iter()
            .filter(|k| !names.contains_key(**k))
            .map(|k| (*k).to_owned())
            .collect();
        if !unknown.is_empty() {
            session.close().await;
            return Err(crate::cmd::quote::unknown_keys_error(&unknown));
        }
    }
    let token = session
        .token
        .clone()
        .context("no access token: log in (`stoxide login`) or set UPSTOX_ACCESS_TOKEN")?;
    // A vault token is re-read at every connect, and after a 401 the stream waits for a new login.
    let from = match &session.account {
        Some(va) => stoxide_app::stream::TokenFrom::Vault {
            vault: va.vault.clone(),
            account: va.account.id.clone(),
            token,
        },
        None => stoxide_app::stream::TokenFrom::Fixed(token),
    };
    let mut stream = stoxide_app::stream::start(session.anonymous_client()?, from, config);
    stream.streamer.subscribe(keys, mode)?;
    let notices = Notices {
        rx: stream.token_events.take(),
        names: names.unwrap_or_default(),
    };
    Ok((session, stream, notices))
}

/// What the live table shows per instrument.
#[derive(Debug, Default)]
struct Row {
    /// The trading symbol, when known.
    name: String,
    ltp: f64,
    cp: f64,
    volume: Option<i64>,
    bid: Option<f64>,
    ask: Option<f64>,
    last_tick: Option<Instant>,
}

fn render(rows: &BTreeMap<InstrumentKey, Row>, status: &str, ticks: u64) -> String {
    let mut t = table(&[
        "symbol",
        "instrument",
        "ltp",
        "change",
        "change %",
        "volume",
        "bid",
        "ask",
        "last tick",
    ]);
    for (k, r) in rows {
        let upstox_types::PriceChange { change, percent: pct } = upstox_types::PriceChange::of(r.ltp, r.cp);
        t.add_row(vec![
            r.name.clone(),
            k.to_string(),
            if r.last_tick.is_some() {
                money(r.ltp)
            } else {
                "…".into()
            },
            format!("{change:+.2}"),
            format!("{pct:+.2}%"),
            r.volume.map(|v| v.to_string()).unwrap_or_default(),
            r.bid.map(money).unwrap_or_default(),
            r.ask.map(money).unwrap_or_default(),
            r.last_tick
                .map(|t| format!("{:.1}s ago", t.elapsed().as_secs_f64()))
                .unwrap_or_else(|| "never".into()),
        ]);
    }
    format!("{status}   ticks: {ticks}\n{t}")
}

fn apply(rows: &mut BTreeMap<InstrumentKey, Row>, tick: &Tick) {
    let r = rows.entry(tick.instrument_key.clone()).or_default();
    if let Some(l) = tick.ltpc() {
        r.ltp = l.ltp;
        r.cp = l.cp;
    }
    if let Some(v) = tick.volume() {
        r.volume = Some(v);
    }
    if let Some(q) = tick.best() {
        r.bid = Some(q.bid);
        r.ask = Some(q.ask);
    }
    r.last_tick = Some(Instant::now());
}

/// Prints events as JSON lines (one per tick) or a live table; answers an error on a stop.
async fn show(
    events: &EventStream,
    keys: &[&str],
    json: bool,
    deadline: Option<tokio::time::Instant>,
    notices: &mut Notices,
) -> anyhow::Result<()> {
    let mut rows: BTreeMap<InstrumentKey, Row> = keys
        .iter()
        .filter_map(|k| {
            let key: InstrumentKey = k.parse().ok()?;
            let name = notices.names.get(*k).cloned().unwrap_or_default();
            Some((key, Row { name, ..Row::default() }))
        })
        .collect();
    let mut status = "connecting…".to_owned();
    let mut ticks = 0u64;
    let tty = std::io::stdout().is_terminal();
    let mut redraw = tokio::time::interval(Duration::from_millis(500));
    let mut stdout = std::io::stdout();
    loop {
        tokio::select! {
            () = until_deadline(deadline) => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = redraw.tick(), if !json => {
                let screen = render(&rows, &status, ticks);
                if tty {
                    writeln!(stdout, "\x1b[H\x1b[2J{screen}")?;
                } else {
                    writeln!(stdout, "{screen}")?;
                }
                stdout.flush()?;
            }
            n = notices.next() => if let Some(n) = n {
                if json || !tty {
                    eprintln!("{n}");
                }
                status = format!("{status} — {n}");
            },
            e = events.next() => match e {
                None => return Ok(()),
                Some(FeedEvent::WaitingForToken { reason }) => {
                    status = format!("waiting for a new login: {reason}");
                    eprintln!("{status}");
                }
                Some(FeedEvent::Ticks(batch)) => {
                    ticks += batch.len() as u64;
                    for t in &batch {
                        if json {
                            writeln!(stdout, "{}", serde_json::to_string(t)?)?;
                        } else {
                            apply(&mut rows, t);
                        }
                    }
                }
                Some(FeedEvent::Connected { attempt }) => status = format!("connected (attempt {attempt})"),
                Some(FeedEvent::MarketInfo(info)) => {
                    let nse = info.segment_status.iter().find(|(s, _)| s == "NSE_EQ").map(|(_, v)| v.as_str()).unwrap_or("?");
                    status = format!("connected; NSE_EQ {nse}");
                }
                Some(FeedEvent::Disconnected { reason }) => status = format!("disconnected: {reason}"),
                Some(FeedEvent::Reconnecting { attempt, delay, reason }) => {
                    status = format!("reconnecting (attempt {attempt} in {:.1}s): {reason}", delay.as_secs_f64());
                    if json {
                        eprintln!("{status}");
                    }
                }
                Some(FeedEvent::Stopped(d)) => anyhow::bail!("feed stopped: {d}"),
                Some(_) => {}
            }
        }
    }
}

pub(crate) async fn stream(globals: &Globals, json: bool, args: StreamArgs) -> anyhow::Result<()> {
    let keys = check_keys(&args.keys)?;
    let deadline = deadline(args.duration)?;
    let (session, stream, mut notices) = open_streamer(globals, &keys, args.mode, StreamerConfig::default()).await?;
    let result = show(&stream.events, &keys, json, deadline, &mut notices).await;
    stream.shutdown().await;
    session.close().await;
    result
}

pub(crate) async fn record(globals: &Globals, args: RecordArgs) -> anyhow::Result<()> {
    let keys = check_keys(&args.keys)?;
    let deadline = deadline(args.duration)?;
    let file = std::fs::File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut writer = RecordingWriter::new(std::io::BufWriter::new(file))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(65_536);
    let config = StreamerConfig {
        raw_frames: Some(tx),
        ..StreamerConfig::default()
    };
    let (session, stream, mut notices) = open_streamer(globals, &keys, args.mode, config).await?;
    let events = &stream.events;
    let started = Instant::now();
    let mut progress = tokio::time::interval(Duration::from_millis(500));
    let result = loop {
        tokio::select! {
            () = until_deadline(deadline) => break Ok(()),
            _ = tokio::signal::ctrl_c() => break Ok(()),
            f = rx.recv() => match f {
                Some(f) => writer.write(&f)?,
                None => break Ok(()),
            },
            n = notices.next() => if let Some(n) = n {
                eprintln!("\n{n}");
            },
            e = events.next() => match e {
                Some(FeedEvent::Stopped(d)) => break Err(anyhow::anyhow!("feed stopped: {d}")),
                Some(FeedEvent::WaitingForToken { reason }) => eprintln!("\nwaiting for a new login: {reason}"),
                None => break Ok(()),
                Some(_) => {}
            },
            _ = progress.tick() => {
                eprint!("\rrecording {}: {} frames, {:.1} KB, {:.0}s", args.out.display(), writer.frames, writer.bytes as f64 / 1e3, started.elapsed().as_secs_f64());
            }
        }
    };
    stream.shutdown().await;
    while let Ok(f) = rx.try_recv() {
        writer.write(&f)?;
    }
    let frames = writer.frames;
    writer.finish()?;
    eprintln!(
        "\rrecorded {frames} frames to {}                    ",
        args.out.display()
    );
    session.close().await;
    result
}

pub(crate) async fn replay_cmd(json: bool, args: ReplayArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.speed.is_finite() && args.speed >= 0.0,
        "--speed must be 0 (as fast as possible) or more"
    );
    let frames = read_recording(&args.file).map_err(|e| {
        let hint = match e {
            upstox_feed::recording::RecordingError::NotARecording(_) => {
                "; make one with `stoxide record KEY --out FILE`"
            }
            _ => "",
        };
        anyhow::anyhow!("cannot replay {}: {e}{hint}", args.file.display())
    })?;
    let events = replay(frames, args.speed);
    if json {
        let mut none = Notices {
            rx: None,
            names: std::collections::HashMap::new(),
        };
        return show(&events, &[], true, None, &mut none).await;
    }
    let mut rows = BTreeMap::new();
    let mut ticks = 0;
    while let Some(e) = events.next().await {
        if let FeedEvent::Ticks(batch) = e {
            ticks += batch.len() as u64;
            for t in &batch {
                apply(&mut rows, t);
            }
        }
    }
    say!("{}", render(&rows, &format!("replayed {}", args.file.display()), ticks));
    Ok(())
}
