//! `stoxide strategy …`, `stoxide subscription …`, `stoxide intents`, `stoxide audit …`: the
//! desk's records, with or without an engine running (a running engine picks changes up
//! before its next signal).

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use chrono::Utc;
use rust_decimal::Decimal;
use secrecy::SecretString;
use stoxide_engine::catalog::Strategy;
use stoxide_engine::desk::{Actor, Desk, Registered};
use stoxide_engine::subscription::{Inputs, Sizing, Subscription};
use upstox_types::{IST, Product};

use crate::output::{Output, say, table};
use crate::settings::Globals;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum StrategyCommand {
    /// Add (or update, with a higher version) the strategies of a catalog file (TOML).
    Add { file: PathBuf },
    /// The catalog.
    List,
    /// One strategy, in full.
    Show { id: String },
    /// Set the secret an external strategy signs its signals with (read from standard input).
    Secret { id: String },
}

#[derive(Debug, clap::Args)]
pub(crate) struct InputArgs {
    /// Lots per signal (fixed-lot sizing).
    #[arg(long, conflicts_with = "margin_percent")]
    lots: Option<u32>,
    /// Multiplier on the lots.
    #[arg(long, default_value_t = 1)]
    multiplier: u32,
    /// Size by this % of the available margin instead of fixed lots.
    #[arg(long)]
    margin_percent: Option<Decimal>,
    /// The largest notional exposure (₹).
    #[arg(long)]
    max_exposure: Decimal,
    #[arg(long, default_value_t = 3)]
    max_open_positions: u32,
    #[arg(long, default_value_t = 20)]
    max_orders_per_day: u32,
    /// The day's loss (₹) at which only exits are allowed.
    #[arg(long)]
    daily_max_loss: Decimal,
    /// I (intraday) or D (delivery).
    #[arg(long, default_value = "I")]
    product: String,
    /// Only these instruments (keys) of the strategy.
    #[arg(long = "only", value_name = "KEY")]
    whitelist: Vec<String>,
    /// Orders go to the paper broker.
    #[arg(long)]
    paper: bool,
}

impl InputArgs {
    fn inputs(&self) -> anyhow::Result<Inputs> {
        let sizing = match (self.lots, self.margin_percent) {
            (Some(lots), None) => Sizing::FixedLots {
                lots,
                multiplier: self.multiplier,
            },
            (None, Some(percent)) => Sizing::MarginPercent { percent },
            _ => anyhow::bail!("give the size: --lots N or --margin-percent P"),
        };
        let product = match self.product.as_str() {
            "I" | "i" | "intraday" => Product::Intraday,
            "D" | "d" | "delivery" => Product::Delivery,
            other => anyhow::bail!("--product {other:?} is not I (intraday) or D (delivery)"),
        };
        let whitelist = if self.whitelist.is_empty() {
            None
        } else {
            Some(
                self.whitelist
                    .iter()
                    .map(|k| k.parse().map_err(|e| anyhow::anyhow!("--only {k:?}: {e}")))
                    .collect::<anyhow::Result<Vec<_>>>()?,
            )
        };
        Ok(Inputs {
            sizing,
            max_exposure: self.max_exposure,
            max_open_positions: self.max_open_positions,
            max_orders_per_day: self.max_orders_per_day,
            daily_max_loss: self.daily_max_loss,
            product,
            whitelist,
            paper: self.paper,
        })
    }
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SubscriptionCommand {
    /// Subscribe an account (--account) to a strategy with its own inputs; it trades only once
    /// activated.
    Add {
        #[arg(long)]
        strategy: String,
        /// The subscription's id (default: STRATEGY:ACCOUNT).
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        inputs: InputArgs,
    },
    /// Subscriptions (of --account, when given).
    List,
    /// Consent: the user agrees to exactly these inputs and this strategy version.
    Activate {
        id: String,
    },
    /// Hold before the next signal (resume keeps the consent).
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    /// End for good.
    Stop {
        id: String,
    },
    /// New inputs (they need a new consent).
    Set {
        id: String,
        #[command(flatten)]
        inputs: InputArgs,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct SubscribeArgs {
    /// The vault account (Upstox user id).
    account: String,
    strategy: String,
    /// The subscription's id (default: STRATEGY:ACCOUNT).
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    inputs: InputArgs,
}

pub(crate) async fn subscribe(globals: &Globals, out: &Output, a: SubscribeArgs) -> anyhow::Result<()> {
    let d = desk(globals).await?;
    let sub = d
        .subscribe(
            a.id.as_deref(),
            &a.account,
            &a.strategy,
            a.inputs.inputs()?,
            &Actor::cli(),
        )
        .await?;
    show_subs(out, std::slice::from_ref(&sub))
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the whole hash chain; exit 1 and name the first tampered record if it was edited.
    Verify,
    /// The records (of --user), as JSON lines or CSV.
    Export {
        #[arg(long)]
        user: Option<String>,
        /// json or csv.
        #[arg(long, default_value = "json")]
        format: String,
        /// One IST day (YYYY-MM-DD); default: the last --hours.
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// From this many hours ago (without --date).
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
}

async fn desk(globals: &Globals) -> anyhow::Result<Desk> {
    Ok(Desk::new(crate::vault::open(globals).await?))
}

pub(crate) fn read_catalog(file: &std::path::Path) -> anyhow::Result<Vec<Strategy>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let cat: stoxide_engine::catalog::CatalogFile = toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a strategy catalog ([[strategy]] tables): {}",
            file.display(),
            crate::settings::one_line(&e.to_string())
        )
    })?;
    anyhow::ensure!(!cat.strategy.is_empty(), "{} holds no [[strategy]]", file.display());
    Ok(cat.strategy)
}

pub(crate) async fn strategy(globals: &Globals, out: &Output, cmd: StrategyCommand) -> anyhow::Result<()> {
    let d = desk(globals).await?;
    match cmd {
        StrategyCommand::Add { file } => {
            let strategies = read_catalog(&file)?;
            for s in &strategies {
                let what = match d.register(s, &Actor::cli()).await? {
                    Registered::New => "added".to_owned(),
                    Registered::Unchanged => "unchanged".to_owned(),
                    Registered::NewVersion { reconsent } => {
                        format!("version {}: {reconsent} subscription(s) must consent again", s.version)
                    }
                };
                if !out.json {
                    say!("{}: {what}", s.id);
                }
            }
            if out.json {
                out.print_json(&strategies)?;
            }
            Ok(())
        }
        StrategyCommand::List => {
            let all = d.strategies().await?;
            out.show(&all, || {
                let mut t = table(&["id", "version", "algo name", "source", "instruments"]);
                for s in &all {
                    let source = serde_json::to_value(&s.source)
                        .ok()
                        .and_then(|v| v["source"].as_str().map(ToOwned::to_owned))
                        .unwrap_or_default();
                    let inst: Vec<String> = s.instruments.iter().map(ToString::to_string).collect();
                    t.add_row(vec![
                        s.id.clone(),
                        s.version.to_string(),
                        s.algo_name.clone(),
                        source,
                        inst.join(", "),
                    ]);
                }
                t
            })
        }
        StrategyCommand::Show { id } => {
            let s = d.strategy(&id).await?;
            out.print_json(&s)
        }
        StrategyCommand::Secret { id } => {
            d.strategy(&id).await?;
            let mut text = String::new();
            std::io::stdin()
                .take(4096)
                .read_to_string(&mut text)
                .context("cannot read the secret from standard input")?;
            let secret = text.trim().to_owned();
            anyhow::ensure!(
                secret.len() >= 16,
                "the signing secret must be at least 16 characters (give it on standard input)"
            );
            let vault = crate::vault::open(globals).await?;
            vault.put_signing_secret(&id, &SecretString::from(secret)).await?;
            say!("{id}: signing secret stored (sealed in the vault)");
            Ok(())
        }
    }
}

fn show_subs(out: &Output, subs: &[Subscription]) -> anyhow::Result<()> {
    out.show(&subs, || {
        let mut t = table(&["id", "account", "strategy", "state", "size", "consented"]);
        for s in subs {
            let size = match &s.inputs.sizing {
                Sizing::FixedLots { lots, multiplier } => format!("{lots} lot(s) × {multiplier}"),
                Sizing::MarginPercent { percent } => format!("{percent}% of margin"),
            };
            let consent = s.consent.as_ref().map_or_else(
                || "—".to_owned(),
                |c| {
                    format!(
                        "v{} by {} {}",
                        c.strategy_version,
                        c.by,
                        c.at.with_timezone(&IST).format("%F %T IST")
                    )
                },
            );
            let state = serde_json::to_value(s.state)
                .ok()
                .and_then(|v| v.as_str().map(ToOwned::to_owned))
                .unwrap_or_default();
            t.add_row(vec![
                s.id.clone(),
                s.account.clone(),
                s.strategy.clone(),
                state,
                size,
                consent,
            ]);
        }
        t
    })
}

pub(crate) async fn subscription(globals: &Globals, out: &Output, cmd: SubscriptionCommand) -> anyhow::Result<()> {
    let d = desk(globals).await?;
    let actor = Actor::cli();
    let one = match cmd {
        SubscriptionCommand::Add { strategy, id, inputs } => {
            let account = globals
                .account
                .clone()
                .context("name the account to subscribe: --account ID (see `stoxide token status --all`)")?;
            d.subscribe(id.as_deref(), &account, &strategy, inputs.inputs()?, &actor)
                .await?
        }
        SubscriptionCommand::List => {
            let subs = d.subscriptions(globals.account.as_deref()).await?;
            return show_subs(out, &subs);
        }
        SubscriptionCommand::Activate { id } => d.activate(&id, &actor).await?,
        SubscriptionCommand::Pause { id } => d.pause(&id, &actor).await?,
        SubscriptionCommand::Resume { id } => d.resume(&id, &actor).await?,
        SubscriptionCommand::Stop { id } => d.stop(&id, &actor).await?,
        SubscriptionCommand::Set { id, inputs } => d.change_inputs(&id, inputs.inputs()?, &actor).await?,
    };
    show_subs(out, std::slice::from_ref(&one))
}

#[derive(Debug, clap::Args)]
pub(crate) struct IntentArgs {
    /// The intents of one signal: STRATEGY/SIGNAL_ID.
    #[arg(long)]
    signal: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

pub(crate) async fn intents(globals: &Globals, out: &Output, args: IntentArgs) -> anyhow::Result<()> {
    let d = desk(globals).await?;
    let signal = match &args.signal {
        Some(s) => Some(
            s.split_once('/')
                .context("--signal is STRATEGY/SIGNAL_ID, e.g. momo/s-1")?,
        ),
        None => None,
    };
    let rows = d.intents(signal, globals.account.as_deref(), args.limit).await?;
    out.show(&rows, || {
        let mut t = table(&["tag", "account", "signal", "order", "state", "filled", "reason"]);
        for i in &rows {
            let order = i.plan.order.as_ref().map_or_else(
                || "—".to_owned(),
                |o| format!("{:?} {} {}", o.side, o.quantity, i.plan.instrument),
            );
            t.add_row(vec![
                i.tag.clone(),
                i.account.clone(),
                format!("{}/{}", i.strategy, i.signal_id),
                order,
                i.state.as_str().to_owned(),
                i.filled.to_string(),
                i.reason.clone().unwrap_or_default(),
            ]);
        }
        t
    })
}

pub(crate) async fn audit(globals: &Globals, out: &Output, cmd: AuditCommand) -> anyhow::Result<()> {
    let d = desk(globals).await?;
    match cmd {
        AuditCommand::Verify => match d.verify_audit().await? {
            Ok(n) => {
                if out.json {
                    out.print_json(&serde_json::json!({"ok": true, "records": n}))?;
                } else {
                    say!("audit trail intact: {n} records, each hashed over the one before");
                }
                Ok(())
            }
            Err(t) => anyhow::bail!("the audit trail was tampered with: {t}"),
        },
        AuditCommand::Export {
            user,
            format,
            date,
            hours,
        } => {
            anyhow::ensure!(hours > 0, "--hours must be above 0");
            let (from, to) = match date {
                Some(d) => stoxide_engine::audit::ist_day(d).context("that date has no IST midnight")?,
                None => (Utc::now() - chrono::Duration::hours(hours), Utc::now()),
            };
            let rows = d.audit(user.as_deref(), from, to).await?;
            match format.as_str() {
                "json" => {
                    for r in &rows {
                        say!("{}", serde_json::to_string(r)?);
                    }
                }
                "csv" => {
                    say!("{}", stoxide_engine::audit::csv(&rows).trim_end());
                }
                other => anyhow::bail!("--format {other:?} is not json or csv"),
            }
            Ok(())
        }
    }
}
