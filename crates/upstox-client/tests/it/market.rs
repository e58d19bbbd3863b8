use upstox_client::Error;
use upstox_client::market::CandleUnit;
use upstox_sim::SimConfig;

use crate::start;

const RELIANCE: &str = "NSE_EQ|INE002A01018";
const NIFTY: &str = "NSE_INDEX|Nifty 50";

#[tokio::test]
async fn quotes_are_keyed_by_symbol_and_agree_with_each_other() {
    let (sim, c) = start(SimConfig::default()).await;
    let v3 = c.ltp(&[RELIANCE, NIFTY, "NSE_EQ|INE000X99999"]).await.expect("ltp v3");
    assert_eq!(v3.len(), 2, "unknown keys are left out: {v3:?}");
    let rel = &v3["NSE_EQ:RELIANCE"];
    assert_eq!(rel.instrument_token, RELIANCE);
    assert!(rel.last_price > 0.0 && rel.cp > 0.0);
    assert_eq!(v3["NSE_INDEX:Nifty 50"].instrument_token, NIFTY);

    let v2 = c.ltp_v2(&[RELIANCE]).await.expect("ltp v2");
    let full = c.full_quote(&[RELIANCE]).await.expect("full quote");
    let q = &full["NSE_EQ:RELIANCE"];
    let depth = q.depth.as_ref().expect("depth");
    assert_eq!((depth.buy.len(), depth.sell.len()), (5, 5));
    assert!(depth.buy[0].price < depth.sell[0].price);
    // The price path moves every second; quotes a moment apart stay within a few ticks.
    assert!((v2["NSE_EQ:RELIANCE"].last_price - q.last_price).abs() / q.last_price < 0.002);
    assert!(q.lower_circuit_limit < q.last_price && q.last_price < q.upper_circuit_limit);

    let ohlc = c.ohlc(&[RELIANCE], "1d").await.expect("ohlc v3");
    let live = ohlc["NSE_EQ:RELIANCE"].live_ohlc.expect("live candle");
    assert!(live.low <= live.open && live.open <= live.high && live.low <= live.close && live.close <= live.high);
    assert!(ohlc["NSE_EQ:RELIANCE"].prev_ohlc.is_some());
    let ohlc2 = c.ohlc_v2(&[RELIANCE], "I1").await.expect("ohlc v2");
    assert!(ohlc2["NSE_EQ:RELIANCE"].ohlc.is_some());
    let bad = c.ohlc(&[RELIANCE], "5m").await.expect_err("bad interval");
    assert_eq!(bad.status(), Some(400));

    // Malformed keys never leave the client.
    assert!(matches!(c.ltp(&["RELIANCE"]).await, Err(Error::InvalidInput(_))));
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_keys_are_refused_by_the_server_with_udapi1026() {
    let (sim, _) = start(SimConfig::default()).await;
    let token = sim.token_of("SIM001").expect("token").to_owned();
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/v3/market-quote/ltp?instrument_key=RELIANCE",
            sim.base_url()
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["status"], "error");
    assert_eq!(body["errors"][0]["error_code"], "UDAPI1026");
    assert_eq!(body["errors"][0]["invalidValue"], "RELIANCE");
    sim.shutdown().await;
}

#[tokio::test]
async fn candles_follow_the_same_price_path() {
    let (sim, c) = start(SimConfig::default()).await;
    let today = sim.state().now().with_timezone(&upstox_types::IST).date_naive();
    let from = today - chrono::Duration::days(30);
    // Up to yesterday: today's candle is still moving.
    let to = today - chrono::Duration::days(1);
    let days = c
        .historical_candles(RELIANCE, CandleUnit::Days, &to.to_string(), Some(&from.to_string()))
        .await
        .expect("daily");
    assert!(days.len() >= 15, "{} daily candles", days.len());
    assert!(days.windows(2).all(|w| w[0].0 > w[1].0), "newest first");
    for k in &days {
        assert!(
            k.3 <= k.1.min(k.4) && k.2 >= k.1.max(k.4),
            "low <= open,close <= high: {k:?}"
        );
    }
    let v2 = c
        .historical_candles_v2(RELIANCE, "day", &to.to_string(), Some(&from.to_string()))
        .await
        .expect("v2 daily");
    assert_eq!(v2, days, "v2 and v3 read the same path");

    let intraday = c
        .intraday_candles(RELIANCE, CandleUnit::Minutes(1))
        .await
        .expect("intraday");
    assert!(!intraday.is_empty());
    let ltp = c.ltp(&[RELIANCE]).await.expect("ltp")["NSE_EQ:RELIANCE"].last_price;
    let last_close = intraday[0].4;
    assert!(
        (last_close - ltp).abs() / ltp < 0.003,
        "latest candle close {last_close} vs ltp {ltp}"
    );
    assert!(
        !c.intraday_candles_v2(RELIANCE, "30minute")
            .await
            .expect("v2 intraday")
            .is_empty()
    );

    let too_long = c
        .historical_candles(
            RELIANCE,
            CandleUnit::Minutes(1),
            &today.to_string(),
            Some(&(today - chrono::Duration::days(90)).to_string()),
        )
        .await;
    assert_eq!(too_long.expect_err("range too long").status(), Some(400));
    let unknown = c
        .historical_candles("NSE_EQ|INE000X99999", CandleUnit::Days, &today.to_string(), None)
        .await;
    assert!(unknown.expect_err("unknown key").has_code("UDAPI1026"));
    sim.shutdown().await;
}

#[tokio::test]
async fn option_contracts_chain_and_greeks() {
    let (sim, c) = start(SimConfig::default()).await;
    let contracts = c.option_contracts(NIFTY, None).await.expect("contracts");
    assert!(contracts.len() > 1000, "{}", contracts.len());
    // The exchange as the instrument master and Upstox's documentation write it for contracts.
    assert!(
        contracts.iter().all(|k| k.exchange.as_deref() == Some("NSE")),
        "{:?}",
        contracts.first()
    );
    let expiry = contracts.iter().map(|k| k.expiry.clone()).min().expect("an expiry");
    let chain = c.option_chain(NIFTY, &expiry).await.expect("chain");
    assert!(chain.len() > 100);
    assert!(chain.windows(2).all(|w| w[0].strike_price < w[1].strike_price));
    let calls: Vec<f64> = chain
        .iter()
        .filter_map(|r| r.call_options.as_ref())
        .map(|s| s.market_data.ltp)
        .collect();
    assert!(
        calls.first() > calls.last(),
        "deep ITM calls cost more than far OTM calls"
    );
    let spot = chain[0].underlying_spot_price;
    let atm = chain
        .iter()
        .min_by(|a, b| (a.strike_price - spot).abs().total_cmp(&(b.strike_price - spot).abs()))
        .expect("atm");
    let delta = atm.call_options.as_ref().expect("call").option_greeks.delta;
    assert!((0.3..0.7).contains(&delta), "ATM call delta {delta}");

    let key = atm.put_options.as_ref().expect("put").instrument_key.clone();
    let greeks = c.option_greeks(&[&key]).await.expect("greeks");
    let g = greeks.values().next().expect("one quote");
    assert!(g.delta < 0.0 && g.gamma > 0.0 && g.iv > 0.0);
    sim.shutdown().await;
}

#[tokio::test]
async fn instrument_master_downloads_parses_and_indexes() {
    let (sim, c) = start(SimConfig::default()).await;
    let mut calls = 0;
    let gz = c
        .download_instruments("complete", |_, _| calls += 1)
        .await
        .expect("download");
    assert!(calls >= 2, "progress reported");
    let master = upstox_client::InstrumentMaster::from_gzip(&gz).expect("parse");
    assert!(master.len() >= 100_000, "{}", master.len());
    assert_eq!(master.get(NIFTY).map(|r| r.instrument_type), Some("INDEX"));
    let expiries = master.expiries(NIFTY);
    assert!(expiries.len() >= 8);
    let chain = master.chain(NIFTY, expiries[0]);
    assert!(chain.len() > 200 && chain.iter().all(|r| r.is_option()));
    let strike = chain[chain.len() / 2].strike_price.expect("strike");
    assert!(
        master
            .option(NIFTY, expiries[0], strike, upstox_client::OptionKind::Put)
            .is_some()
    );
    assert_eq!(master.by_trading_symbol("RELIANCE").len(), 2, "NSE and BSE");
    let nse = c.download_instruments("NSE", |_, _| {}).await.expect("NSE file");
    let nse = upstox_client::InstrumentMaster::from_gzip(&nse).expect("parse NSE");
    assert!(nse.iter().all(|r| r.exchange == "NSE"));
    sim.shutdown().await;
}

/// The first Wednesday of `month` in `year`.
fn first_wednesday(year: i32, month: u32) -> chrono::NaiveDate {
    use chrono::Datelike;
    let mut d = chrono::NaiveDate::from_ymd_opt(year, month, 1).expect("date");
    while d.weekday() != chrono::Weekday::Wed {
        d = d.succ_opt().expect("date");
    }
    d
}

#[tokio::test]
async fn holidays_and_timings_come_from_the_market_calendar() {
    use chrono::{Datelike, TimeZone};
    // The simulator's year (its clock may run on another day than ours).
    let (probe, c) = start(SimConfig::default()).await;
    let now = c.market_status("NSE").await.expect("status").last_updated;
    probe.shutdown().await;
    let ist = chrono::FixedOffset::east_opt(5 * 3600 + 1800).expect("IST");
    let year = ist.timestamp_millis_opt(now).single().expect("now").year();
    let named = first_wednesday(year, 3);
    let plain = first_wednesday(year, 4);
    let mut config = SimConfig::default();
    config.market.holidays = vec![
        upstox_sim::config::HolidayEntry::Named {
            date: named.to_string(),
            description: "Holi".into(),
        },
        upstox_sim::config::HolidayEntry::Date(plain.to_string()),
    ];
    let (sim, c) = start(config).await;

    let all = c.market_holidays().await.expect("holidays");
    let got: Vec<(chrono::NaiveDate, &str)> = all.iter().map(|h| (h.date, h.description.as_str())).collect();
    assert_eq!(got, vec![(named, "Holi"), (plain, "Exchange holiday")]);
    assert_eq!(all[0].holiday_type, "TRADING_HOLIDAY");
    assert!(all[0].closed_exchanges.iter().any(|e| e == "NSE") && all[0].closed_exchanges.iter().any(|e| e == "MCX"));
    assert_eq!(c.market_holiday(named).await.expect("one").len(), 1);
    let thursday = named.succ_opt().expect("date");
    assert!(c.market_holiday(thursday).await.expect("none").is_empty());

    // A trading day: every exchange's session, in IST; none on the holiday or a Sunday.
    let timings = c.exchange_timings(thursday).await.expect("timings");
    let at = |h: u32, m: u32| {
        ist.from_local_datetime(&thursday.and_hms_opt(h, m, 0).expect("time"))
            .single()
            .expect("instant")
            .timestamp_millis()
    };
    let of = |e: &str| {
        timings
            .iter()
            .find(|t| t.exchange == e)
            .map(|t| (t.start_time, t.end_time))
    };
    assert_eq!(of("NSE"), Some((at(9, 15), at(15, 30))));
    assert_eq!(of("NFO"), Some((at(9, 15), at(15, 30))));
    assert_eq!(of("MCX"), Some((at(9, 0), at(23, 30))));
    assert_eq!(timings.len(), 5, "{timings:?}");
    assert!(c.exchange_timings(named).await.expect("holiday").is_empty());
    let sunday = named + chrono::Days::new(4);
    assert!(c.exchange_timings(sunday).await.expect("sunday").is_empty());

    // A date that is not one gets a 400.
    let resp = reqwest::get(format!("{}/v2/market/timings/2026-13-40", sim.base_url()))
        .await
        .expect("call");
    assert_eq!(resp.status(), 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_keys_are_turned_into_keys_that_work() {
    use chrono::{Datelike, TimeZone};
    use upstox_client::instruments::{InstrumentMaster, Why};
    let (sim, c) = start(SimConfig::default()).await;
    let gz = c.download_instruments("complete", |_, _| {}).await.expect("download");
    let master = InstrumentMaster::from_gzip(&gz).expect("master");
    let now = sim.state().now().timestamp_millis();
    let first = |key: &str| {
        master
            .suggest(key, now, 3)
            .first()
            .map(|s| (s.instrument.instrument_key.to_owned(), s.why))
    };
    // A trading symbol where the ISIN belongs; an index under the equity segment; a near miss.
    assert_eq!(first("NSE_EQ|RELIANCE"), Some((RELIANCE.to_owned(), Why::SymbolAsKey)));
    assert_eq!(first("NSE_EQ|NIFTY50"), Some((NIFTY.to_owned(), Why::IndexUnderEquity)));
    assert_eq!(first("NSE_EQ|RELIANC"), Some((RELIANCE.to_owned(), Why::CloseSpelling)));
    assert!(
        master.suggest(RELIANCE, now, 3).is_empty(),
        "a key that works needs nothing"
    );

    // A contract written as its compact symbol: that contract (the month's first expiry).
    let ist = chrono::FixedOffset::east_opt(19_800).expect("IST");
    let call = master
        .iter()
        .filter(|r| r.underlying_symbol == Some("NIFTY") && r.instrument_type == "CE")
        .filter(|r| r.expiry.is_some_and(|e| e >= now))
        .min_by_key(|r| r.expiry)
        .expect("a live NIFTY call");
    let strike = call.strike_price.expect("strike");
    let day = ist
        .timestamp_millis_opt(call.expiry.expect("expiry"))
        .single()
        .expect("date");
    let month = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ][day.month0() as usize];
    let compact = format!("NSE_FO|NIFTY{:02}{month}{strike}CE", day.year() % 100);
    let got = master.suggest(&compact, now, 3);
    let best = got.first().expect("a suggestion");
    assert_eq!(best.why, Why::SymbolAsKey, "{compact}");
    assert_eq!(best.instrument.instrument_key, call.instrument_key, "{compact}");
    // Master keys are pasteable: the suggestion is a key the master (and so the feed) knows.
    assert!(master.get(best.instrument.instrument_key).is_some());

    // The same contract a year earlier has expired: the same strike at the nearest live expiry.
    let expired = format!("NSE_FO|NIFTY{:02}{month}{strike}CE", (day.year() - 1) % 100);
    let got = master.suggest(&expired, now, 3);
    let best = got.first().expect("a suggestion");
    assert_eq!(best.why, Why::NearestLiveExpiry, "{expired}");
    assert_eq!(best.instrument.strike_price, Some(strike));
    assert_eq!(best.instrument.expiry, call.expiry);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_ohlc_apis_30_minute_candle_starts_where_the_history_candles_do() {
    let (sim, c) = start(SimConfig::default()).await;
    let ohlc = c.ohlc(&[RELIANCE], "I30").await.expect("ohlc");
    let live = ohlc["NSE_EQ:RELIANCE"].live_ohlc.expect("a live 30-minute candle");
    let history = c
        .intraday_candles(RELIANCE, CandleUnit::Minutes(30))
        .await
        .expect("intraday 30-minute candles");
    // Candles are newest first; their times are IST RFC 3339.
    let newest = chrono::DateTime::parse_from_rfc3339(&history[0].0).expect("time");
    assert_eq!(
        live.ts,
        newest.timestamp_millis(),
        "live {} vs history {}",
        live.ts,
        history[0].0
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn search_takes_what_people_type() {
    use upstox_client::instruments::InstrumentMaster;
    let (sim, c) = start(SimConfig::default()).await;
    let gz = c.download_instruments("complete", |_, _| {}).await.expect("download");
    let master = InstrumentMaster::from_gzip(&gz).expect("master");
    assert_eq!(master.search("reliance", 5)[0].instrument_key, RELIANCE);
    let hits = master.search("banknifty 51000 ce feb", 10);
    assert!(!hits.is_empty(), "a February BANKNIFTY 51000 call");
    for h in &hits {
        assert!(
            h.trading_symbol.starts_with("BANKNIFTY 51000 CE") && h.trading_symbol.contains(" FEB "),
            "{}",
            h.trading_symbol
        );
    }
    assert!(
        hits.windows(2).all(|w| w[0].expiry <= w[1].expiry),
        "nearest expiry first"
    );
    sim.shutdown().await;
}

/// Candles (newest first) grouped into `len`-minute buckets from the session's open (their
/// first candle's time), each bucket folded as one candle: (start, open, high, low, close, volume).
fn fold(candles: &[upstox_client::market::Candle], len: i64) -> Vec<(String, f64, f64, f64, f64, u64)> {
    let mut oldest_first: Vec<_> = candles.iter().rev().collect();
    let open = chrono::DateTime::parse_from_rfc3339(&oldest_first[0].0).expect("a time");
    let mut out: Vec<(String, f64, f64, f64, f64, u64)> = Vec::new();
    let mut bucket = -1;
    for c in oldest_first.drain(..) {
        let t = chrono::DateTime::parse_from_rfc3339(&c.0).expect("a time");
        let b = (t - open).num_minutes() / len;
        if b != bucket {
            bucket = b;
            out.push((c.0.clone(), c.1, c.2, c.3, c.4, c.5));
        } else if let Some(last) = out.last_mut() {
            last.2 = last.2.max(c.2);
            last.3 = last.3.min(c.3);
            last.4 = c.4;
            last.5 += c.5;
        }
    }
    out.reverse();
    out
}

fn plain(c: &upstox_client::market::Candle) -> (String, f64, f64, f64, f64, u64) {
    (c.0.clone(), c.1, c.2, c.3, c.4, c.5)
}

#[tokio::test]
async fn every_view_of_one_instrument_shows_one_market() {
    let mut config = SimConfig::default();
    // Mid-session, and a clock that stands still, so every view is read at one instant.
    config.clock.session_start = "13:07".into();
    config.clock.speed = 1e-9;
    let (sim, c) = start(config).await;
    for key in [RELIANCE, NIFTY] {
        let minutes = c.intraday_candles(key, CandleUnit::Minutes(1)).await.expect("1-minute");
        assert!(minutes.len() > 200, "{key}: {} minutes since 09:15", minutes.len());
        for len in [5, 30] {
            let longer = c
                .intraday_candles(key, CandleUnit::Minutes(len as u32))
                .await
                .expect("longer candles");
            let mine: Vec<_> = longer.iter().map(plain).collect();
            assert_eq!(mine, fold(&minutes, len), "{key}: {len}-minute candles = their minutes");
        }
        let day = fold(&minutes, 24 * 60).remove(0);
        assert!(day.0.contains("T09:15:00"), "{day:?}");

        // The day in the quote, the OHLC APIs and the daily history is the day of the candles.
        let symbol = if key == NIFTY {
            "NSE_INDEX:Nifty 50"
        } else {
            "NSE_EQ:RELIANCE"
        };
        let quotes = c.full_quote(&[key]).await.expect("quote");
        let q = &quotes[symbol];
        let o = q.ohlc.expect("the day's OHLC");
        assert_eq!(
            (o.open, o.high, o.low, o.close),
            (day.1, day.2, day.3, day.4),
            "{key}: full quote"
        );
        assert_eq!(q.last_price, day.4, "{key}: the last price closes the live minute");
        if key == RELIANCE {
            assert_eq!(q.volume, day.5, "{key}: the day's volume is its minutes' volume");
        }
        let v3 = c.ohlc(&[key], "1d").await.expect("ohlc 1d");
        let live = v3[symbol].live_ohlc.expect("live day");
        assert_eq!(
            (live.open, live.high, live.low, live.close),
            (day.1, day.2, day.3, day.4),
            "{key}: OHLC v3 1d"
        );
        let v2 = c.ohlc_v2(&[key], "1d").await.expect("ohlc v2");
        let v2 = v2[symbol].ohlc.expect("v2 day");
        assert_eq!(
            (v2.open, v2.high, v2.low, v2.close),
            (day.1, day.2, day.3, day.4),
            "{key}: OHLC v2 1d"
        );
        let today = day.0[..10].to_owned();
        let daily = c
            .historical_candles(key, CandleUnit::Days, &today, Some(&today))
            .await
            .expect("daily history");
        assert_eq!(daily.len(), 1, "{daily:?}");
        assert_eq!(
            (daily[0].1, daily[0].2, daily[0].3, daily[0].4),
            (day.1, day.2, day.3, day.4),
            "{key}: today's daily candle"
        );

        // The live 30- and 1-minute OHLC candles are the newest history candles, aligned alike.
        let half_hours = c
            .intraday_candles(key, CandleUnit::Minutes(30))
            .await
            .expect("30-minute");
        for (interval, history) in [("I30", &half_hours), ("I1", &minutes)] {
            let v3 = c.ohlc(&[key], interval).await.expect("ohlc");
            let live = v3[symbol].live_ohlc.expect("live");
            let prev = v3[symbol].prev_ohlc.expect("previous");
            let (h0, h1) = (&history[0], &history[1]);
            assert_eq!(
                (live.open, live.high, live.low, live.close),
                (h0.1, h0.2, h0.3, h0.4),
                "{key} {interval} live"
            );
            assert_eq!(
                (prev.open, prev.high, prev.low, prev.close),
                (h1.1, h1.2, h1.3, h1.4),
                "{key} {interval} previous"
            );
        }
    }
    // A finished day (the trading day before the clock's): its daily candle spans its 30-minute candles.
    let today = chrono::DateTime::parse_from_rfc3339(
        &c.intraday_candles(RELIANCE, CandleUnit::Minutes(1))
            .await
            .expect("minutes")[0]
            .0,
    )
    .expect("a time")
    .date_naive();
    let week_ago = (today - chrono::Duration::days(7)).to_string();
    let days = c
        .historical_candles(RELIANCE, CandleUnit::Days, &today.to_string(), Some(&week_ago))
        .await
        .expect("daily history");
    let previous = days
        .get(1)
        .map(|d| d.0[..10].to_owned())
        .expect("a trading day in the last week");
    let previous = previous.as_str();
    let halves = c
        .historical_candles(RELIANCE, CandleUnit::Minutes(30), previous, Some(previous))
        .await
        .expect("30-minute history");
    let daily = c
        .historical_candles(RELIANCE, CandleUnit::Days, previous, Some(previous))
        .await
        .expect("daily history");
    if let (false, Some(d)) = (halves.is_empty(), daily.first()) {
        let folded = fold(&halves, 24 * 60).remove(0);
        assert_eq!(
            (d.1, d.2, d.3, d.4, d.5),
            (folded.1, folded.2, folded.3, folded.4, folded.5)
        );
    } else {
        panic!("{previous} was a trading day: {halves:?} {daily:?}");
    }
    sim.shutdown().await;
}
