//! `stoxide demo`: the main job on the embedded simulator — the simulator, the execution engine,
//! the portal and the web dashboard in one process: an operator, three clients each owning a
//! simulated Upstox account, the three built-in strategies, two consented subscriptions trading;
//! it prints the URLs and the demo credentials. `--tour` instead walks through login,
//! quotes and an order on the command line and exits.

use crate::output::say;
use std::time::Duration;

use anyhow::Context;
use upstox_client::login::AppCredentials;
use upstox_client::orders::PlaceOrderRequest;
use upstox_client::{ClientConfig, Hosts, UpstoxClient};
use upstox_sim::{SimConfig, Simulator};
use upstox_types::{Product, TransactionType};

use crate::output::{Output, money, rupees, table};

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Only walk through login, quotes and an order on the command line, then exit.
    #[arg(long)]
    tour: bool,
    /// `--tour`: keep the simulator running after the walk-through (Ctrl-C stops it).
    #[arg(long)]
    serve: bool,
    /// The dashboard's address (another free port is used when this one is taken).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    duration: Option<f64>,
    /// Keep the demo's vault here (default: a temporary directory removed on exit). The demo never
    /// uses your own vault (`--data-dir` / `STOXIDE_DATA_DIR`): it would leave a simulated account in it.
    #[arg(long, value_name = "DIR")]
    vault_dir: Option<std::path::PathBuf>,
}

/// Logs in through the simulator's dialog the way a browser would: submit the form, follow
/// nothing, read `code` from the redirect.
async fn login(base: &str, app: &AppCredentials, user: &str, pin: &str) -> anyhow::Result<String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let state = upstox_client::orders::unique_tag();
    let resp = http
        .post(format!("{base}/v2/login/authorization/dialog"))
        .form(&[
            ("client_id", app.client_id.as_str()),
            ("redirect_uri", &app.redirect_uri),
            ("state", &state),
            ("user_id", user),
            ("pin", pin),
            ("response_type", "code"),
        ])
        .send()
        .await?;
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .context("the dialog did not redirect")?;
    let url = url::Url::parse(location)?;
    let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    anyhow::ensure!(pairs.get("state") == Some(&state), "state mismatch in the redirect");
    pairs.get("code").cloned().context("no code in the redirect")
}

pub(crate) async fn run(args: DemoArgs, out: &Output) -> anyhow::Result<()> {
    if args.tour {
        tour(args, out).await
    } else {
        dashboard(args).await
    }
}

/// The simulator and the dashboard in one process.
async fn dashboard(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.duration.is_none_or(|d| d.is_finite() && d > 0.0),
        "--duration must be a positive number of seconds"
    );
    // The dashboard's port first: the simulated app's redirect URI points at it.
    let listener = match tokio::net::TcpListener::bind(args.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("note: {} is not free ({e}); using another port", args.addr);
            tokio::net::TcpListener::bind((args.addr.ip(), 0)).await?
        }
    };
    let url = format!("http://{}", listener.local_addr()?);
    let mut config = SimConfig::default();
    let app_cfg = config.apps.first_mut().context("no app configured")?;
    app_cfg.redirect_uri = format!("{url}/oauth/callback");
    let app_cfg = app_cfg.clone();
    // A fourth simulated Upstox user nobody owns yet: for a client invited during the demo.
    config.users.push(upstox_sim::config::UserConfig::new(
        "SIM004",
        "Neha Kapoor",
        "456789",
        500_000.0,
        Some(&app_cfg.client_id),
    ));
    let user_cfg = config.users.first().context("no user configured")?.clone();
    let sim = Simulator::start(config, "127.0.0.1:0".parse()?).await?;
    let base = sim.base_url();

    // The demo's vault: --vault-dir if given, else a temporary directory removed on exit.
    let temp;
    let data_dir = match &args.vault_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("stoxide-demo-").tempdir()?;
            temp.path().to_owned()
        }
    };
    let link = stoxide_server::LinkApp {
        creds: AppCredentials {
            client_id: app_cfg.client_id.clone(),
            client_secret: app_cfg.client_secret.clone().into(),
            redirect_uri: app_cfg.redirect_uri.clone(),
        },
        mode: stoxide_vault::AppMode::Individual,
        base_url: base.clone(),
    };
    // The demo keeps its own vault in SQLite, whatever STOXIDE_DATABASE_URL says.
    let vault = stoxide_vault::Vault::open(&stoxide_vault::VaultConfig::sqlite(&data_dir)).await?;
    stoxide_app::linking::remember(&vault, &link, true).await?;

    // Link the simulated account through the dialog, as a browser would.
    let anon = UpstoxClient::new(ClientConfig::new(Hosts::single(&base)))?;
    let code = login(&base, &link.creds, &user_cfg.user_id, &user_cfg.pin).await?;
    let tokens = anon.exchange_code(&link.creds, &code).await?;
    vault
        .store_checked(&stoxide_vault::NewToken::from_exchange(
            &tokens,
            &link.creds.client_id,
            &base,
        ))
        .await?;

    let state = stoxide_server::Shared::new(
        stoxide_server::ServerConfig {
            operator_two_factor: false,
            data_dir: data_dir.clone(),
            app: Some(link),
            instruments: stoxide_server::DEFAULT_INSTRUMENTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        },
        vault.clone(),
    )?;
    let password = crate::cmd::serve::new_password();
    state.admin.set("admin", &password)?;
    let stop_engine = tokio_util::sync::CancellationToken::new();
    let people = portal(&state, &sim).await?;
    crate::cmd::serve::spawn_notifier(&state, crate::cmd::serve::smtp_from_env()?, stop_engine.clone())?;
    let started = crate::cmd::engine::start_engine(
        &vault,
        crate::cmd::engine::StartOptions {
            paper: false,
            check_market_hours: false,
            resend_quiet: stoxide_engine::EngineConfig::default().resend_quiet,
            catch_up: stoxide_engine::EngineConfig::default().catch_up,
            late_horizon: stoxide_engine::EngineConfig::default().late_horizon,
            egress_ip: None,
            paper_capital: rust_decimal::Decimal::from(1_000_000),
            cluster: None,
            bus: None,
        },
        &stop_engine,
    )
    .await?;
    state.portal.attach_engine(std::sync::Arc::new(started.engine.clone()));
    state
        .hub
        .start(
            anon.clone(),
            stoxide_app::stream::TokenFrom::Vault {
                vault: vault.clone(),
                account: tokens.profile.user_id.clone(),
                token: tokens.access_token.clone(),
            },
            tokens.profile.user_id.clone(),
        )
        .await;

    // First line for scripts, then words for people.
    crate::output::announce(&format!(
        "{}\nstoxide demo: the simulator, the engine, the portal and the dashboard are running.\n  portal    {url}/portal\n    operator  {} / {}\n    client    {} / {}  (Upstox account SIM001; two more clients: {})\n    {} strategies, two active subscriptions: orders appear within a minute\n  dashboard {url}/  admin / {password}\n  simulator {base} (users SIM001 123456, SIM002 234567, SIM003 345678; SIM004 456789 is free for a new client)\nCtrl-C stops it.",
        serde_json::json!({
            "url": url, "user": "admin", "password": password, "simulator": base,
            "account": tokens.profile.user_id,
            "portal": format!("{url}/portal"),
            "operator": {"email": people.operator.0, "password": people.operator.1},
            "client": {"email": people.clients[0].0, "password": people.clients[0].1, "account": "SIM001"},
        }),
        people.operator.0,
        people.operator.1,
        people.clients[0].0,
        people.clients[0].1,
        people.clients[1..]
            .iter()
            .map(|c| format!("{} / {}", c.0, c.1))
            .collect::<Vec<_>>()
            .join(", "),
        started.strategies,
    ));
    let duration = args.duration;
    let stop = async move {
        match duration {
            Some(d) => tokio::time::sleep(Duration::from_secs_f64(d)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    stoxide_server::serve(state, listener, stop).await?;
    stop_engine.cancel();
    started.engine.shutdown().await;
    sim.shutdown().await;
    Ok(())
}

/// The demo's people: (email, password) of the operator and of each client.
struct DemoPeople {
    operator: (String, String),
    clients: Vec<(String, String)>,
}

/// The demo's three in-process strategies, quick enough to trade within a minute on the
/// simulator's prices (5 s candles).
fn demo_strategies() -> anyhow::Result<Vec<stoxide_engine::catalog::Strategy>> {
    use stoxide_engine::catalog::{InputBounds, SignalSource, Strategy};
    let key = |k: &str| k.parse::<upstox_types::InstrumentKey>().map_err(anyhow::Error::msg);
    let bounds = InputBounds {
        max_lots: 10,
        max_multiplier: 2,
        max_margin_percent: rust_decimal::Decimal::from(50),
        max_exposure: rust_decimal::Decimal::from(5_000_000),
        max_orders_per_day: 200,
        max_open_positions: 5,
    };
    let one =
        |id: &str, name: &str, description: &str, algo: &str, instrument: &str, source| -> anyhow::Result<Strategy> {
            Ok(Strategy {
                id: id.into(),
                name: name.into(),
                description: description.into(),
                version: 1,
                algo_name: algo.into(),
                registered: false,
                instruments: vec![key(instrument)?],
                bounds: bounds.clone(),
                source,
            })
        };
    Ok(vec![
        one(
            "breakout",
            "Momentum breakout",
            "Buys RELIANCE when a 5-second candle closes above the highs of the three before it; sells on the mirror break.",
            "STOXIDE-DEMO-BRK",
            "NSE_EQ|INE002A01018",
            SignalSource::Breakout {
                lookback: 3,
                interval_secs: 5,
            },
        )?,
        one(
            "ema-cross",
            "EMA crossover",
            "Long RELIANCE while the 2-candle EMA is above the 5-candle EMA of 5-second candles, flat or short otherwise.",
            "STOXIDE-DEMO-EMA",
            "NSE_EQ|INE002A01018",
            SignalSource::EmaCrossover {
                fast: 2,
                slow: 5,
                interval_secs: 5,
            },
        )?,
        one(
            "rsi",
            "RSI mean reversion",
            "Buys RELIANCE when the 6-candle RSI of 5-second candles falls below 30, sells above 70.",
            "STOXIDE-DEMO-RSI",
            "NSE_EQ|INE002A01018",
            SignalSource::Rsi {
                period: 6,
                oversold: 30,
                overbought: 70,
                interval_secs: 5,
            },
        )?,
    ])
}

/// The portal on the simulator: an operator, three clients each owning one simulated Upstox
/// account, the three built-in strategies, and two subscriptions consented and active.
async fn portal(state: &stoxide_server::AppState, sim: &Simulator) -> anyhow::Result<DemoPeople> {
    use secrecy::SecretString;
    use stoxide_engine::desk::{Actor, Desk};
    use stoxide_engine::subscription::{Inputs, Sizing};
    let now = chrono::Utc::now().timestamp_millis();
    let secret = |p: &str| SecretString::from(p.to_owned());
    let operator = ("operator@demo.stoxide".to_owned(), crate::cmd::serve::new_password());
    let op = state
        .people
        .first_operator(&operator.0, "Demo operator", &secret(&operator.1), now)
        .await?;
    let desk = Desk::new(state.vault.clone());
    let by_operator = Actor {
        by: operator.0.clone(),
        from: "stoxide demo".into(),
    };
    for s in demo_strategies()? {
        desk.register(&s, &by_operator).await?;
    }
    let mut clients = Vec::new();
    for (user, name, email) in [
        ("SIM001", "Asha Rao", "asha@demo.stoxide"),
        ("SIM002", "Vikram Shah", "vikram@demo.stoxide"),
        ("SIM003", "Meera Iyer", "meera@demo.stoxide"),
    ] {
        if state.vault.account(user).await?.is_none_or(|a| !a.has_token) {
            let token = sim
                .token_of(user)
                .with_context(|| format!("the simulator has no token for {user}"))?;
            state
                .vault
                .store_token(&stoxide_vault::NewToken::imported(user, sim.base_url(), secret(token)))
                .await?;
        }
        let invitation = state
            .people
            .invite(
                &op,
                email,
                name,
                stoxide_people::Role::Client,
                Duration::from_secs(3600),
                now,
            )
            .await?;
        let password = crate::cmd::serve::new_password();
        let person = state.people.accept(&invitation.secret, &secret(&password), now).await?;
        state.people.link_account(&person, user, now).await?;
        clients.push((email.to_owned(), password));
    }
    // Two clients have consented to a strategy each; the third subscribes in the portal.
    for (user, strategy, email) in [
        ("SIM001", "breakout", "asha@demo.stoxide"),
        ("SIM002", "ema-cross", "vikram@demo.stoxide"),
    ] {
        let client = Actor {
            by: email.to_owned(),
            from: "stoxide demo".into(),
        };
        let inputs = Inputs {
            sizing: Sizing::FixedLots { lots: 1, multiplier: 1 },
            max_exposure: rust_decimal::Decimal::from(200_000),
            max_open_positions: 2,
            max_orders_per_day: 100,
            daily_max_loss: rust_decimal::Decimal::from(10_000),
            product: Product::Intraday,
            whitelist: None,
            paper: false,
        };
        let sub = desk.subscribe(None, user, strategy, inputs, &client).await?;
        desk.activate(&sub.id, &client).await?;
    }
    Ok(DemoPeople { operator, clients })
}

/// The command-line walk-through.
async fn tour(args: DemoArgs, out: &Output) -> anyhow::Result<()> {
    let config = SimConfig::default();
    let app_cfg = config.apps.first().context("no app configured")?.clone();
    let user_cfg = config.users.first().context("no user configured")?.clone();
    let sim = Simulator::start(config, "127.0.0.1:0".parse()?).await?;
    let base = sim.base_url();
    say!(
        "simulator: {base} ({} instruments)",
        sim.state().market.instruments().len()
    );

    let app = AppCredentials {
        client_id: app_cfg.client_id.clone(),
        client_secret: app_cfg.client_secret.clone().into(),
        redirect_uri: app_cfg.redirect_uri.clone(),
    };
    let anon = UpstoxClient::new(ClientConfig::new(Hosts::single(&base)))?;
    say!(
        "1. OAuth: opening {}",
        anon.authorize_url(&app.client_id, &app.redirect_uri, "demo")
    );
    let code = login(&base, &app, &user_cfg.user_id, &user_cfg.pin).await?;
    let tokens = anon.exchange_code(&app, &code).await?;
    say!(
        "   logged in as {} ({}); token valid until 03:30 IST",
        tokens.profile.user_id,
        tokens.profile.user_name.clone().unwrap_or_default()
    );
    let client = anon.for_user(&tokens.profile.user_id, tokens.access_token.clone());

    let funds = client.funds_v2(None).await?;
    let eq = funds.equity.unwrap_or_default();
    say!(
        "2. funds: available ₹{}, used ₹{}",
        rupees(eq.available_margin),
        rupees(eq.used_margin)
    );

    let keys = [
        "NSE_INDEX|Nifty 50",
        "NSE_INDEX|Nifty Bank",
        "NSE_INDEX|India VIX",
        "NSE_EQ|INE002A01018",
    ];
    let quotes = client.full_quote(&keys).await?;
    say!("3. quotes:");
    let mut t = table(&["symbol", "ltp", "change", "open", "high", "low"]);
    let mut names: Vec<_> = quotes.keys().cloned().collect();
    names.sort();
    for n in &names {
        let q = &quotes[n];
        let o = q.ohlc.unwrap_or_default();
        t.add_row(vec![
            n.clone(),
            money(q.last_price),
            format!("{:+.2}", q.net_change),
            money(o.open),
            money(o.high),
            money(o.low),
        ]);
    }
    say!("{t}");

    say!("4. buying 10 RELIANCE (intraday, market) and placing a limit sell 2% above");
    let buy = client
        .place_order_v3(&PlaceOrderRequest::market(
            "NSE_EQ|INE002A01018",
            TransactionType::Buy,
            10,
            Product::Intraday,
        ))
        .await?;
    let quote = client
        .full_quote(&["NSE_EQ|INE002A01018"])
        .await?
        .into_values()
        .next()
        .context("no quote for RELIANCE")?;
    // A resting sell 2% above the market, kept inside the day's circuit limits.
    let target = (quote.last_price * 1.02).min(quote.upper_circuit_limit - 0.05);
    let target = rust_decimal::Decimal::try_from((target / 0.05).floor() * 0.05)?.round_dp(2);
    let sell = client
        .place_order_v3(&PlaceOrderRequest::limit(
            "NSE_EQ|INE002A01018",
            TransactionType::Sell,
            10,
            Product::Intraday,
            target,
        ))
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let book = client.order_book().await?;
    crate::cmd::order::print_orders(&book)?;
    let positions = client.positions().await?;
    if out.json {
        out.print_json(&serde_json::json!({"buy": buy.order_ids, "sell": sell.order_ids, "positions": positions}))?;
    } else {
        for p in &positions {
            say!(
                "5. position {} qty {} avg {} ltp {} pnl {}",
                p.trading_symbol.clone().unwrap_or_default(),
                p.quantity,
                p.average_price.map(rupees).unwrap_or_default(),
                rupees(p.last_price),
                rupees(p.pnl)
            );
        }
    }
    if args.serve {
        say!(
            "simulator keeps running at {base}; token for {}: export UPSTOX_BASE_URL={base}",
            tokens.profile.user_id
        );
        say!("(the access token is in the simulator's `stoxide sim` banner; this demo keeps it to itself)");
        tokio::signal::ctrl_c().await.ok();
    }
    sim.shutdown().await;
    say!("done.");
    Ok(())
}
