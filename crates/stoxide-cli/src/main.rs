//! `stoxide`: the command line of the stoxide workspace — the simulator, the demo, and the
//! everyday Upstox calls (profile, funds, quotes, orders, positions, holdings, instruments),
//! against the embedded simulator by default and the real Upstox when configured.

// Every stdout line goes through `output::line`, which turns a closed pipe into an error
// instead of a panic.
#![deny(clippy::print_stdout)]

mod cmd;
mod output;
mod settings;
mod vault;
mod words;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Trading through the Upstox API, with an embedded Upstox-compatible simulator.
#[derive(Debug, Parser)]
#[command(name = "stoxide", version, about, long_about = None)]
struct Cli {
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Config file (default: $XDG_CONFIG_HOME/stoxide/config.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Upstox base URL (default: an embedded simulator). Env: UPSTOX_BASE_URL.
    #[arg(long, global = true, value_name = "URL")]
    base_url: Option<String>,
    /// Where the token vault lives (default: $XDG_DATA_HOME/stoxide).
    #[arg(long, global = true, value_name = "DIR", env = "STOXIDE_DATA_DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// The vault account (Upstox user id) to act for (default: the vault's only account).
    #[arg(long, global = true, value_name = "ID", env = "STOXIDE_ACCOUNT")]
    account: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Upstox-compatible simulator (first stdout line: JSON for scripts).
    Sim(cmd::sim::SimArgs),
    /// The simulator and the web dashboard in one process, an account linked and streaming.
    Demo(cmd::demo::DemoArgs),
    /// The web dashboard: token status, account linking, live prices, stream health.
    Serve(cmd::serve::ServeArgs),
    /// Show the user's profile.
    Profile,
    /// Show funds and margin.
    Funds,
    /// Quotes of one or more instrument keys (e.g. "NSE_INDEX|Nifty 50").
    Quote {
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
    /// Place, modify, cancel and list orders.
    #[command(subcommand)]
    Order(cmd::order::OrderCommand),
    /// GTT orders: an entry, target and stop loss that Upstox fires when the price gets there.
    #[command(subcommand)]
    Gtt(cmd::gtt::GttCommand),
    /// Show today's positions.
    Positions,
    /// Show long-term holdings.
    Holdings,
    /// Search the instrument master.
    #[command(subcommand)]
    Instruments(cmd::instruments::InstrumentsCommand),
    /// What an order would cost (brokerage, taxes) and the margin it would block.
    #[command(subcommand)]
    Charges(cmd::charges::ChargesCommand),
    /// The exchange calendar: holidays, session timings, open or closed now.
    #[command(subcommand)]
    Market(cmd::market::MarketCommand),
    /// Live market data: a table updating in place (or --json: one line per tick).
    Stream(cmd::stream::StreamArgs),
    /// Record raw feed frames with receive timestamps to a file.
    Record(cmd::stream::RecordArgs),
    /// Play a recording back through the streamer's API.
    Replay(cmd::stream::ReplayArgs),
    /// Decode and benchmark feed frames.
    #[command(subcommand)]
    Feed(cmd::feed::FeedCommand),
    /// Log in to Upstox (OAuth dialog, or --request) and keep the token in the vault.
    Login(cmd::login::LoginArgs),
    /// Revoke the account's token at Upstox and wipe it from the vault.
    Logout(cmd::login::LogoutArgs),
    /// Token status, import and export.
    #[command(subcommand)]
    Token(cmd::token::TokenCommand),
    /// The vault: where it is, and key rotation.
    #[command(subcommand)]
    Vault(cmd::token::VaultCommand),
    /// Check, step by step, why a REST call or the feed fails (token, expiry, authorize, handshake, keys).
    Doctor(cmd::doctor::DoctorArgs),
    /// The execution engine: signals to orders in every consenting user's own account.
    #[command(subcommand)]
    Engine(cmd::engine::EngineCommand),
    /// Engine nodes sharing one PostgreSQL: their status, and the addresses apps whitelisted.
    #[command(subcommand)]
    Cluster(cmd::cluster::ClusterCommand),
    /// The strategy catalog and external strategies' signing secrets.
    #[command(subcommand)]
    Strategy(cmd::desk::StrategyCommand),
    /// Subscriptions of accounts to strategies, and their consents.
    #[command(subcommand)]
    Subscription(cmd::desk::SubscriptionCommand),
    /// Subscribe ACCOUNT to STRATEGY with its own inputs (it trades once activated).
    Subscribe(cmd::desk::SubscribeArgs),
    /// Consent: the user agrees to the subscription's exact inputs and the strategy's version.
    Activate { id: String },
    /// Hold a subscription before its next signal.
    Pause { id: String },
    /// Resume a paused subscription under its consent.
    Resume { id: String },
    /// End a subscription for good.
    Stop { id: String },
    /// Send a signed signal to the running engine.
    #[command(subcommand)]
    Signal(cmd::engine::SignalCommand),
    /// The kill switch: halt (or reduce-only) at a level, cancel open orders, exit positions.
    Kill(cmd::engine::KillArgs),
    /// What the engine decided and did for each subscription (of --account, when given).
    Intents(cmd::desk::IntentArgs),
    /// The hash-chained audit trail: verify, export.
    #[command(subcommand)]
    Audit(cmd::desk::AuditCommand),
}

fn main() -> ExitCode {
    // One TLS provider for every HTTPS client in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("STOXIDE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(log_colours())
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`stoxide feed decode F | head`) is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error as one line: its causes joined by ": ", leaving out a cause the line already says
/// (an error that both shows its source and chains it), with control characters escaped so an
/// echoed input cannot move the cursor or colour the terminal.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    if let Some(h) = words::hint(e) {
        line.push_str("; ");
        line.push_str(&h);
    }
    line.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// Log colours only for a person at a terminal, and never with `NO_COLOR` set (no-color.org).
fn log_colours() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = output::Output { json: cli.json };
    let globals = settings::Globals {
        config: cli.config,
        base_url: cli.base_url,
        data_dir: cli.data_dir.filter(|d| !d.as_os_str().is_empty()),
        account: cli.account.filter(|a| !a.is_empty()),
    };
    match cli.command {
        Command::Sim(args) => cmd::sim::run(args, &globals).await,
        Command::Demo(args) => cmd::demo::run(args, &out).await,
        Command::Serve(args) => cmd::serve::run(&globals, args).await,
        Command::Profile => cmd::account::profile(&globals, &out).await,
        Command::Funds => cmd::account::funds(&globals, &out).await,
        Command::Quote { keys } => cmd::quote::run(&globals, &out, &keys).await,
        Command::Order(c) => cmd::order::run(&globals, &out, c).await,
        Command::Positions => cmd::account::positions(&globals, &out).await,
        Command::Holdings => cmd::account::holdings(&globals, &out).await,
        Command::Instruments(c) => cmd::instruments::run(&globals, &out, c).await,
        Command::Market(c) => cmd::market::run(&globals, &out, c).await,
        Command::Charges(c) => cmd::charges::run(&globals, &out, c).await,
        Command::Gtt(c) => cmd::gtt::run(&globals, &out, c).await,
        Command::Stream(a) => cmd::stream::stream(&globals, out.json, a).await,
        Command::Record(a) => cmd::stream::record(&globals, a).await,
        Command::Replay(a) => cmd::stream::replay_cmd(out.json, a).await,
        Command::Feed(c) => cmd::feed::run(c),
        Command::Login(a) => cmd::login::login(&globals, &out, a).await,
        Command::Logout(a) => cmd::login::logout(&globals, &out, a).await,
        Command::Token(c) => cmd::token::run(&globals, &out, c).await,
        Command::Vault(c) => cmd::token::vault_cmd(&globals, &out, c).await,
        Command::Doctor(a) => cmd::doctor::run(&globals, &out, a).await,
        Command::Engine(c) => cmd::engine::run(&globals, &out, c).await,
        Command::Cluster(c) => cmd::cluster::run(&globals, &out, c).await,
        Command::Strategy(c) => cmd::desk::strategy(&globals, &out, c).await,
        Command::Subscription(c) => cmd::desk::subscription(&globals, &out, c).await,
        Command::Subscribe(a) => cmd::desk::subscribe(&globals, &out, a).await,
        Command::Activate { id } => {
            cmd::desk::subscription(&globals, &out, cmd::desk::SubscriptionCommand::Activate { id }).await
        }
        Command::Pause { id } => {
            cmd::desk::subscription(&globals, &out, cmd::desk::SubscriptionCommand::Pause { id }).await
        }
        Command::Resume { id } => {
            cmd::desk::subscription(&globals, &out, cmd::desk::SubscriptionCommand::Resume { id }).await
        }
        Command::Stop { id } => {
            cmd::desk::subscription(&globals, &out, cmd::desk::SubscriptionCommand::Stop { id }).await
        }
        Command::Signal(c) => cmd::engine::signal(&globals, &out, c).await,
        Command::Kill(a) => cmd::engine::kill(&globals, &out, a).await,
        Command::Intents(a) => cmd::desk::intents(&globals, &out, a).await,
        Command::Audit(c) => cmd::desk::audit(&globals, &out, c).await,
    }
}

#[cfg(test)]
mod tests {
    use super::error_line;

    #[test]
    fn an_error_line_says_each_cause_once_on_one_line() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let shown = format!("cannot read /x: {io}");
        let e = anyhow::Error::new(io).context(shown).context("loading the config");
        assert_eq!(
            error_line(&e),
            "loading the config: cannot read /x: No such file or directory (os error 2)"
        );
        let e = anyhow::anyhow!("unknown key \u{1b}[31mRED\nnext line");
        let line = error_line(&e);
        assert!(!line.contains('\u{1b}') && !line.contains('\n'), "{line}");
        assert!(line.contains("\\u{1b}[31mRED\\nnext line"), "{line}");
    }
}
