//! `stoxide market holidays|timings|status`: the exchange calendar as Upstox (or the simulator)
//! states it.

use chrono::{NaiveDate, TimeZone, Utc};
use upstox_types::IST;

use crate::output::{Output, table};
use crate::settings::{Globals, Session};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum MarketCommand {
    /// This year's exchange holidays (or, with --date, whether that day is one).
    Holidays {
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = date_arg)]
        date: Option<NaiveDate>,
    },
    /// Each exchange's session on a day (default: today in IST); none on a holiday or weekend.
    Timings {
        #[arg(value_name = "YYYY-MM-DD", value_parser = date_arg)]
        date: Option<NaiveDate>,
    },
    /// Whether an exchange is open now (NSE, NFO, BSE, BFO, MCX).
    Status {
        #[arg(value_name = "EXCHANGE", default_value = "NSE", value_parser = ["NSE", "NFO", "BSE", "BFO", "MCX"])]
        exchange: String,
    },
}

fn date_arg(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date: write YYYY-MM-DD, e.g. 2026-01-26"))
}

/// Epoch ms as IST wall-clock time.
fn ist_time(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.with_timezone(&IST).format("%H:%M").to_string())
        .unwrap_or_else(|| ms.to_string())
}

pub(crate) async fn run(globals: &Globals, out: &Output, cmd: MarketCommand) -> anyhow::Result<()> {
    let s = Session::open(globals).await?;
    match cmd {
        MarketCommand::Holidays { date } => {
            let list = match date {
                Some(d) => s.client.market_holiday(d).await?,
                None => s.client.market_holidays().await?,
            };
            if list.is_empty() && !out.json {
                match date {
                    Some(d) => crate::output::say!("{d} is not an exchange holiday"),
                    None => crate::output::say!("no exchange holidays are listed for this year"),
                }
                return Ok(());
            }
            out.show(&list, || {
                let mut t = table(&["date", "day", "holiday", "type", "closed", "open"]);
                for h in &list {
                    t.add_row(vec![
                        h.date.to_string(),
                        h.date.format("%a").to_string(),
                        h.description.clone(),
                        h.holiday_type.clone(),
                        h.closed_exchanges.join(" "),
                        h.open_exchanges
                            .iter()
                            .map(|o| format!("{} {}–{}", o.exchange, ist_time(o.start_time), ist_time(o.end_time)))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ]);
                }
                t
            })
        }
        MarketCommand::Timings { date } => {
            let date = date.unwrap_or_else(|| Utc::now().with_timezone(&IST).date_naive());
            let list = s.client.exchange_timings(date).await?;
            if list.is_empty() && !out.json {
                crate::output::say!(
                    "no exchange trades on {date} ({}): a weekend or holiday",
                    date.format("%A")
                );
                return Ok(());
            }
            out.show(&list, || {
                let mut t = table(&["exchange", "opens (IST)", "closes (IST)"]);
                for x in &list {
                    t.add_row(vec![x.exchange.clone(), ist_time(x.start_time), ist_time(x.end_time)]);
                }
                t
            })
        }
        MarketCommand::Status { exchange } => {
            let st = s.client.market_status(&exchange).await?;
            out.show(&st, || {
                let mut t = table(&["exchange", "status", "as of (IST)"]);
                t.add_row(vec![st.exchange.clone(), st.status.clone(), ist_time(st.last_updated)]);
                t
            })
        }
    }
}
