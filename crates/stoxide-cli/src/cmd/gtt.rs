//! `stoxide gtt place|modify|list|cancel`: GTT orders, which Upstox (or the simulator) holds and
//! fires when the price reaches them.

use rust_decimal::Decimal;
use upstox_client::gtt::{GttOrder, GttRule, ModifyGttRequest, PlaceGttRequest, kind_for};
use upstox_types::{GttStrategy, GttTriggerType, Product, TransactionType};

use super::order::{Trade, parse_product};
use crate::output::{Output, rupees, say, table};
use crate::settings::{Globals, Session};

/// The rules of a GTT, as flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Rules {
    /// When to enter: "above:PRICE", "below:PRICE" or "now".
    #[arg(long, value_parser = parse_entry, value_name = "above:PRICE|below:PRICE|now")]
    entry: (GttTriggerType, Decimal),
    /// Exit at a profit: for a BUY, sell when the price reaches this or higher (for a SELL, lower).
    #[arg(long, value_name = "PRICE")]
    target: Option<Decimal>,
    /// Exit at a loss: for a BUY, sell when the price falls to this or lower (for a SELL, rises).
    #[arg(long, value_name = "PRICE")]
    stoploss: Option<Decimal>,
    /// Let the stop loss follow the best price at this distance (₹).
    #[arg(long, value_name = "GAP", requires = "stoploss")]
    trailing_gap: Option<Decimal>,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum GttCommand {
    /// Place a GTT: an entry, and optionally a target and a stop loss that follow it.
    Place {
        #[command(flatten)]
        trade: Trade,
        /// I (intraday), D (delivery) or MTF.
        #[arg(long, default_value = "D", value_parser = parse_product)]
        product: Product,
        #[command(flatten)]
        rules: Rules,
    },
    /// Change a GTT's quantity and rules (after its entry fired, only the target and stop loss).
    Modify {
        gtt_order_id: String,
        /// Quantity (units; lots for MCX).
        #[arg(long)]
        qty: u64,
        #[command(flatten)]
        rules: Rules,
    },
    /// Your GTTs (or one) with each rule's state and the order it placed.
    List { gtt_order_id: Option<String> },
    /// Cancel a GTT's rules that have not fired.
    Cancel { gtt_order_id: String },
}

fn parse_entry(s: &str) -> Result<(GttTriggerType, Decimal), String> {
    let usage = || format!("{s:?} is not an entry: write above:PRICE, below:PRICE or now");
    let lower = s.trim().to_ascii_lowercase();
    if lower == "now" || lower == "immediate" {
        return Ok((GttTriggerType::Immediate, Decimal::ZERO));
    }
    let (how, price) = lower.split_once(':').ok_or_else(usage)?;
    let kind = match how {
        "above" => GttTriggerType::Above,
        "below" => GttTriggerType::Below,
        _ => return Err(usage()),
    };
    let price: Decimal = price.trim().parse().map_err(|_| usage())?;
    if price <= Decimal::ZERO {
        return Err(format!("{s:?}: the entry price must be above 0"));
    }
    Ok((kind, price))
}

impl Rules {
    fn to_rules(&self) -> anyhow::Result<Vec<GttRule>> {
        let (kind, price) = self.entry;
        let mut rules = vec![GttRule::new(GttStrategy::Entry, kind, price)];
        if let Some(t) = self.target {
            anyhow::ensure!(t > Decimal::ZERO, "--target must be above 0");
            rules.push(GttRule::new(GttStrategy::Target, GttTriggerType::Immediate, t));
        }
        if let Some(sl) = self.stoploss {
            anyhow::ensure!(sl > Decimal::ZERO, "--stoploss must be above 0");
            if let Some(gap) = self.trailing_gap {
                anyhow::ensure!(gap > Decimal::ZERO, "--trailing-gap must be above 0");
            }
            rules.push(GttRule {
                trailing_gap: self.trailing_gap,
                ..GttRule::new(GttStrategy::StopLoss, GttTriggerType::Immediate, sl)
            });
        }
        Ok(rules)
    }
}

/// A command with its flags checked and its request built, before any session is opened.
enum Prepared {
    Place(PlaceGttRequest),
    Modify(ModifyGttRequest),
    List(Option<String>),
    Cancel(String),
}

pub(crate) async fn run(globals: &Globals, out: &Output, cmd: GttCommand) -> anyhow::Result<()> {
    let prepared = match cmd {
        GttCommand::Place { trade, product, rules } => {
            let key = trade.checked_key()?;
            Prepared::Place(PlaceGttRequest::new(
                key.to_string(),
                trade.side,
                trade.qty,
                product,
                rules.to_rules()?,
            ))
        }
        GttCommand::Modify {
            gtt_order_id,
            qty,
            rules,
        } => {
            anyhow::ensure!(qty > 0, "--qty must be at least 1");
            let rules = rules.to_rules()?;
            Prepared::Modify(ModifyGttRequest {
                kind: kind_for(&rules),
                quantity: qty,
                rules,
                gtt_order_id,
            })
        }
        GttCommand::List { gtt_order_id } => Prepared::List(gtt_order_id),
        GttCommand::Cancel { gtt_order_id } => Prepared::Cancel(gtt_order_id),
    };
    let s = Session::open(globals).await?;
    let result = run_with(&s, out, prepared).await;
    s.close().await;
    result
}

async fn run_with(s: &Session, out: &Output, cmd: Prepared) -> anyhow::Result<()> {
    let c = &s.client;
    match cmd {
        Prepared::Place(req) => {
            let ids = c.place_gtt(&req).await.map_err(|e| {
                if e.outcome_unknown() {
                    anyhow::anyhow!(
                        "{e}; the GTT may or may not exist: check `stoxide gtt list` before placing it again"
                    )
                } else {
                    e.into()
                }
            })?;
            let placed = c.gtt_orders(ids.first().map(String::as_str)).await?;
            out.show(&placed, || gtt_table(&placed))?;
        }
        Prepared::Modify(req) => {
            c.modify_gtt(&req).await?;
            let now = c.gtt_orders(Some(&req.gtt_order_id)).await?;
            out.show(&now, || gtt_table(&now))?;
        }
        Prepared::List(gtt_order_id) => {
            let list = c.gtt_orders(gtt_order_id.as_deref()).await?;
            out.show(&list, || gtt_table(&list))?;
        }
        Prepared::Cancel(gtt_order_id) => {
            c.cancel_gtt(&gtt_order_id).await?;
            let now = c.gtt_orders(Some(&gtt_order_id)).await?;
            if !out.json {
                say!("Cancelled GTT {gtt_order_id}.");
            }
            out.show(&now, || gtt_table(&now))?;
        }
    }
    Ok(())
}

/// One line per rule: "ENTRY below 2400.00 — COMPLETED, order 2512…".
fn rule_line(g: &GttOrder, r: &upstox_client::gtt::GttRuleState) -> String {
    let buy = r.transaction_type == TransactionType::Buy;
    let when = match (r.strategy, r.trigger_type) {
        (GttStrategy::Entry, GttTriggerType::Immediate) => "at once".to_owned(),
        (GttStrategy::Entry, GttTriggerType::Above) => format!("at or above {}", rupees(r.trigger_price)),
        (GttStrategy::Entry, GttTriggerType::Below) => format!("at or below {}", rupees(r.trigger_price)),
        // An exit sells (for a long) at a target above and a stop below.
        (GttStrategy::Target, _) if buy => format!("at or below {}", rupees(r.trigger_price)),
        (GttStrategy::Target, _) => format!("at or above {}", rupees(r.trigger_price)),
        (GttStrategy::StopLoss, _) if buy => format!("at or above {}", rupees(r.trigger_price)),
        (GttStrategy::StopLoss, _) => format!("at or below {}", rupees(r.trigger_price)),
    };
    let mut line = format!(
        "{} {} {} {when}: {}",
        r.strategy, r.transaction_type, g.quantity, r.status
    );
    if let Some(gap) = r.trailing_gap {
        line.push_str(&format!(" (trailing {})", rupees(gap)));
    }
    if let Some(o) = &r.order_id {
        line.push_str(&format!(", order {o}"));
    }
    if let Some(m) = r.message.as_deref().filter(|m| !m.is_empty()) {
        line.push_str(&format!(" — {m}"));
    }
    line
}

fn gtt_table(list: &[GttOrder]) -> comfy_table::Table {
    let mut t = table(&["gtt id", "symbol", "product", "rules", "expires"]);
    for g in list {
        let rules: Vec<String> = g.rules.iter().map(|r| rule_line(g, r)).collect();
        t.add_row(vec![
            g.gtt_order_id.clone(),
            if g.trading_symbol.is_empty() {
                g.instrument_token.clone()
            } else {
                g.trading_symbol.clone()
            },
            g.product.to_string(),
            rules.join("\n"),
            g.expires()
                .map(|e| e.with_timezone(&upstox_types::IST).format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
        ]);
    }
    if list.is_empty() {
        t.add_row(vec!["(no GTT orders)"]);
    }
    t
}
