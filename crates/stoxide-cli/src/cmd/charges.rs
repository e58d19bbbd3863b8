//! `stoxide charges brokerage|margin`: what an order would cost and block, as Upstox (or the
//! simulator) computes it.

use rust_decimal::Decimal;
use upstox_client::charges::{MAX_MARGIN_BASKET, MarginLeg};
use upstox_types::{InstrumentKey, Product};

use super::order::{Trade, parse_product, parse_side};
use crate::output::{Output, rupees, table};
use crate::settings::{Globals, Session};

/// One order's instrument, side, size, product and price.
#[derive(Debug, clap::Args)]
pub(crate) struct Leg {
    #[command(flatten)]
    trade: Trade,
    /// I (intraday), D (delivery) or MTF.
    #[arg(long, default_value = "I", value_parser = parse_product)]
    product: Product,
    /// Price (₹); 0 for a market order's margin.
    #[arg(long, default_value = "0")]
    price: Decimal,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ChargesCommand {
    /// Brokerage, taxes and fees of one order.
    Brokerage(Leg),
    /// The margin one order (or, with --leg, a basket of up to 20) blocks, hedges counted.
    Margin {
        #[command(flatten)]
        leg: Leg,
        /// More legs, each "KEY,QTY,BUY|SELL[,PRODUCT[,PRICE]]".
        #[arg(long = "leg", value_name = "LEG", value_parser = parse_leg)]
        more: Vec<MarginLeg>,
    },
}

fn parse_leg(s: &str) -> Result<MarginLeg, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let usage = || format!("{s:?} is not a leg: write KEY,QTY,BUY|SELL[,PRODUCT[,PRICE]]");
    if !(3..=5).contains(&parts.len()) {
        return Err(usage());
    }
    let key: InstrumentKey = parts[0].parse().map_err(|e| format!("{s:?}: {e}"))?;
    let quantity: u64 = parts[1].parse().ok().filter(|q| *q > 0).ok_or_else(usage)?;
    Ok(MarginLeg {
        instrument_key: key.to_string(),
        quantity,
        transaction_type: parse_side(parts[2])?,
        product: parts.get(3).map_or(Ok(Product::Intraday), |p| parse_product(p))?,
        price: parts
            .get(4)
            .map_or(Ok(Decimal::ZERO), |p| p.parse().map_err(|_| usage()))?,
    })
}

impl Leg {
    fn checked(&self) -> anyhow::Result<MarginLeg> {
        let key = self.trade.checked_key()?;
        anyhow::ensure!(self.price >= Decimal::ZERO, "--price must not be negative");
        Ok(MarginLeg {
            instrument_key: key.to_string(),
            quantity: self.trade.qty,
            product: self.product,
            transaction_type: self.trade.side,
            price: self.price,
        })
    }
}

pub(crate) async fn run(globals: &Globals, out: &Output, cmd: ChargesCommand) -> anyhow::Result<()> {
    match cmd {
        ChargesCommand::Brokerage(leg) => {
            let leg = leg.checked()?;
            anyhow::ensure!(
                leg.price > Decimal::ZERO,
                "--price is needed for brokerage (the trade's price, ₹)"
            );
            let s = Session::open(globals).await?;
            let c = s
                .client
                .brokerage(
                    &leg.instrument_key,
                    leg.quantity,
                    leg.product,
                    leg.transaction_type,
                    leg.price,
                )
                .await?;
            out.show(&c, || {
                let mut t = table(&["charge", "₹"]);
                for (name, v) in [
                    ("brokerage", c.brokerage),
                    ("STT/CTT", c.taxes.stt),
                    ("GST", c.taxes.gst),
                    ("stamp duty", c.taxes.stamp_duty),
                    ("exchange transaction", c.other_taxes.transaction),
                    ("clearing", c.other_taxes.clearing),
                    ("SEBI turnover", c.other_taxes.sebi_turnover),
                    ("total", c.total),
                ] {
                    t.add_row(vec![name.to_owned(), rupees(v)]);
                }
                t
            })
        }
        ChargesCommand::Margin { leg, more } => {
            let mut basket = vec![leg.checked()?];
            basket.extend(more);
            anyhow::ensure!(
                basket.len() <= MAX_MARGIN_BASKET,
                "{} legs: a margin request holds at most {MAX_MARGIN_BASKET}",
                basket.len()
            );
            let s = Session::open(globals).await?;
            let m = s.client.margin(&basket).await?;
            let keys: Vec<&str> = basket.iter().map(|l| l.instrument_key.as_str()).collect();
            let names = if out.json {
                None
            } else {
                super::quote::key_names(&s.client, &keys).await
            };
            let label = |key: &str| match names.as_ref().and_then(|n| n.get(key)) {
                Some(symbol) => format!("{symbol} ({key})"),
                None => key.to_owned(),
            };
            out.show(&m, || {
                let mut t = table(&[
                    "instrument",
                    "side",
                    "qty",
                    "span",
                    "exposure",
                    "equity",
                    "premium",
                    "total",
                ]);
                for (l, g) in basket.iter().zip(&m.margins) {
                    t.add_row(vec![
                        label(&l.instrument_key),
                        l.transaction_type.as_str().to_owned(),
                        l.quantity.to_string(),
                        rupees(g.span_margin),
                        rupees(g.exposure_margin),
                        rupees(g.equity_margin),
                        rupees(g.net_buy_premium),
                        rupees(g.total_margin),
                    ]);
                }
                t.add_row(vec![
                    "basket (hedges counted)".to_owned(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    rupees(m.final_margin),
                ]);
                t
            })
        }
    }
}
