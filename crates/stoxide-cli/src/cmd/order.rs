//! `stoxide order place|modify|cancel|list`.

use anyhow::Context;
use rust_decimal::Decimal;
use upstox_client::orders::{ModifyOrderRequest, PlaceOrderRequest};
use upstox_types::{InstrumentKey, OrderType, Product, TransactionType, Validity};

use crate::output::{Output, rupees, table};
use crate::settings::{Globals, Session};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum OrderCommand {
    /// Place an order (v3; a unique tag is generated for safe reconciliation if none is given).
    Place(PlaceArgs),
    /// Modify an open order; unset fields keep their values.
    Modify(ModifyArgs),
    /// Cancel an open order.
    Cancel { order_id: String },
    /// Today's order book.
    List,
}

/// What an order trades: the instrument, the side and the quantity (`order place`, `charges`).
#[derive(Debug, clap::Args)]
pub(crate) struct Trade {
    /// Instrument key, e.g. "NSE_EQ|INE002A01018".
    #[arg(long)]
    pub(crate) key: String,
    /// BUY or SELL.
    #[arg(long, value_parser = parse_side)]
    pub(crate) side: TransactionType,
    /// Quantity (units; lots for MCX).
    #[arg(long)]
    pub(crate) qty: u64,
}

impl Trade {
    /// The key, checked; and a quantity of at least 1.
    pub(crate) fn checked_key(&self) -> anyhow::Result<InstrumentKey> {
        let key = self.key.parse().map_err(|e| anyhow::anyhow!("--key: {e}"))?;
        anyhow::ensure!(self.qty > 0, "--qty must be at least 1");
        Ok(key)
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct PlaceArgs {
    #[command(flatten)]
    trade: Trade,
    /// MARKET, LIMIT, SL or SL-M.
    #[arg(long = "type", default_value = "MARKET", value_parser = parse_type)]
    order_type: OrderType,
    /// Limit price (LIMIT and SL).
    #[arg(long)]
    price: Option<Decimal>,
    /// Trigger price (SL and SL-M).
    #[arg(long)]
    trigger: Option<Decimal>,
    /// I (intraday), D (delivery) or MTF.
    #[arg(long, default_value = "I", value_parser = parse_product)]
    product: Product,
    /// DAY or IOC.
    #[arg(long, default_value = "DAY", value_parser = parse_validity)]
    validity: Validity,
    /// Your tag (at most 40 characters; must be unique per order for reconciliation).
    #[arg(long)]
    tag: Option<String>,
    /// Split above the freeze quantity into several orders.
    #[arg(long)]
    slice: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ModifyArgs {
    order_id: String,
    #[arg(long)]
    qty: Option<u64>,
    #[arg(long)]
    price: Option<Decimal>,
    #[arg(long)]
    trigger: Option<Decimal>,
    #[arg(long = "type", value_parser = parse_type)]
    order_type: Option<OrderType>,
    #[arg(long, value_parser = parse_validity)]
    validity: Option<Validity>,
}

pub(crate) fn parse_side(s: &str) -> Result<TransactionType, String> {
    s.parse()
}
fn parse_type(s: &str) -> Result<OrderType, String> {
    s.parse()
}
pub(crate) fn parse_product(s: &str) -> Result<Product, String> {
    s.parse()
}
fn parse_validity(s: &str) -> Result<Validity, String> {
    s.parse()
}

pub(crate) async fn run(globals: &Globals, out: &Output, cmd: OrderCommand) -> anyhow::Result<()> {
    if let OrderCommand::Place(a) = &cmd {
        a.trade.checked_key()?;
        if matches!(a.order_type, OrderType::Limit | OrderType::StopLoss) {
            anyhow::ensure!(
                a.price.is_some_and(|p| p > Decimal::ZERO),
                "--price is required for {} orders",
                a.order_type
            );
        }
        if matches!(a.order_type, OrderType::StopLoss | OrderType::StopLossMarket) {
            anyhow::ensure!(
                a.trigger.is_some_and(|p| p > Decimal::ZERO),
                "--trigger is required for {} orders",
                a.order_type
            );
        }
        if let Some(t) = &a.tag {
            anyhow::ensure!(t.chars().count() <= 40, "--tag must be at most 40 characters");
        }
    }
    let s = Session::open(globals).await?;
    let result = run_with(&s, out, cmd).await;
    s.close().await;
    result
}

async fn run_with(s: &Session, out: &Output, cmd: OrderCommand) -> anyhow::Result<()> {
    let c = &s.client;
    match cmd {
        OrderCommand::Place(a) => {
            let req = PlaceOrderRequest {
                quantity: a.trade.qty,
                product: a.product,
                validity: a.validity,
                price: a.price.unwrap_or_default(),
                tag: a.tag,
                instrument_token: a.trade.key,
                order_type: a.order_type,
                transaction_type: a.trade.side,
                disclosed_quantity: 0,
                trigger_price: a.trigger.unwrap_or_default(),
                is_amo: false,
                market_protection: None,
                slice: Some(a.slice),
            };
            let placed = c.place_order_v3(&req).await?;
            let mut orders = Vec::new();
            for id in &placed.order_ids {
                orders.push(c.order_details(id).await?);
            }
            if out.json {
                out.print_json(&serde_json::json!({"order_ids": placed.order_ids, "tag": placed.tag, "reconciled": placed.reconciled, "orders": orders}))?;
            } else {
                if placed.reconciled {
                    eprintln!(
                        "note: the first answer was lost; the order was found in the order book by its tag {}",
                        placed.tag
                    );
                }
                print_orders(&orders)?;
            }
            // A rejected order is a failed command, for scripts as much as for people.
            let rejected: Vec<String> = orders
                .iter()
                .filter(|o| o.status == upstox_types::OrderStatus::Rejected)
                .map(|o| {
                    format!(
                        "order {} was rejected: {}",
                        o.order_id,
                        o.status_message.as_deref().unwrap_or("no reason given")
                    )
                })
                .collect();
            if !rejected.is_empty() {
                anyhow::bail!("{}", rejected.join("; "));
            }
        }
        OrderCommand::Modify(a) => {
            let current = c
                .order_details(&a.order_id)
                .await
                .with_context(|| format!("looking up order {}", a.order_id))?;
            let req = ModifyOrderRequest {
                order_id: a.order_id.clone(),
                validity: a.validity.or(current.validity).unwrap_or(Validity::Day),
                price: a.price.unwrap_or(current.price),
                order_type: a.order_type.or(current.order_type).unwrap_or(OrderType::Limit),
                trigger_price: a.trigger.unwrap_or(current.trigger_price),
                quantity: a.qty,
                disclosed_quantity: None,
            };
            c.modify_order(&req).await?;
            let now = c.order_details(&a.order_id).await?;
            out.show(&now, || orders_table(std::slice::from_ref(&now)))?;
        }
        OrderCommand::Cancel { order_id } => {
            c.cancel_order(&order_id).await?;
            let now = c.order_details(&order_id).await?;
            out.show(&now, || orders_table(std::slice::from_ref(&now)))?;
        }
        OrderCommand::List => {
            let book = c.order_book().await?;
            out.show(&book, || orders_table(&book))?;
        }
    }
    Ok(())
}

fn orders_table(orders: &[upstox_client::orders::Order]) -> comfy_table::Table {
    let mut t = table(&[
        "order id", "symbol", "side", "type", "qty", "filled", "price", "avg", "status", "tag",
    ]);
    for o in orders {
        t.add_row(vec![
            o.order_id.clone(),
            o.trading_symbol.clone().unwrap_or_default(),
            o.transaction_type.map(|t| t.to_string()).unwrap_or_default(),
            o.order_type.map(|t| t.to_string()).unwrap_or_default(),
            o.quantity.to_string(),
            o.filled_quantity.to_string(),
            rupees(o.price),
            rupees(o.average_price),
            o.status.to_string(),
            o.tag.clone().unwrap_or_default(),
        ]);
    }
    if orders.is_empty() {
        t.add_row(vec!["(no orders today)"]);
    }
    t
}

pub(crate) fn print_orders(orders: &[upstox_client::orders::Order]) -> std::io::Result<()> {
    crate::output::line(format_args!("{}", orders_table(orders)))
}
