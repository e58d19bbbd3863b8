//! Market holidays and exchange timings (`/v2/market/holidays[/{date}]`,
//! `/v2/market/timings/{date}`), from the simulator's own calendar — the one its sessions,
//! market status and feed follow. Like Upstox's, these need no token.

use axum::extract::{Path, State};
use chrono::{Datelike, NaiveDate};
use serde_json::{Value, json};
use upstox_types::{IST, Segment, error_code};

use crate::error::{ApiError, ApiResult, success};
use crate::state::AppState;

/// The exchanges a timing is given for, with the segment whose session they follow.
const EXCHANGES: [(&str, Segment); 5] = [
    ("NSE", Segment::NseEq),
    ("NFO", Segment::NseFo),
    ("BSE", Segment::BseEq),
    ("BFO", Segment::BseFo),
    ("MCX", Segment::McxFo),
];

fn date_of(raw: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(error_code::INVALID_INPUT, "date must be YYYY-MM-DD")
            .with_property("date", Some(raw.into()))
    })
}

fn holiday_json(date: NaiveDate, description: &str) -> Value {
    json!({
        "date": date.format("%Y-%m-%d").to_string(),
        "description": description,
        "holiday_type": "TRADING_HOLIDAY",
        "closed_exchanges": EXCHANGES.iter().map(|(e, _)| *e).collect::<Vec<_>>(),
        "open_exchanges": [],
    })
}

/// `GET /v2/market/holidays`: this year's exchange holidays.
pub(super) async fn holidays(State(state): State<AppState>) -> ApiResult {
    let year = state.now().with_timezone(&IST).year();
    let list: Vec<Value> = state
        .market
        .calendar
        .holidays()
        .filter(|(d, _)| d.year() == year)
        .map(|(d, name)| holiday_json(d, name))
        .collect();
    Ok(success(Value::Array(list)))
}

/// `GET /v2/market/holidays/{date}`: that date's holiday, or an empty list.
pub(super) async fn holiday(State(state): State<AppState>, Path(date): Path<String>) -> ApiResult {
    let date = date_of(&date)?;
    let list: Vec<Value> = state
        .market
        .calendar
        .holiday(date)
        .map(|name| holiday_json(date, name))
        .into_iter()
        .collect();
    Ok(success(Value::Array(list)))
}

/// `GET /v2/market/timings/{date}`: each exchange's normal session that day (epoch ms); none on a
/// weekend or holiday.
pub(super) async fn timings(State(state): State<AppState>, Path(date): Path<String>) -> ApiResult {
    let date = date_of(&date)?;
    let calendar = &state.market.calendar;
    let list: Vec<Value> = if calendar.is_trading_day(date) {
        EXCHANGES
            .iter()
            .map(|(exchange, segment)| {
                let (open, close) = calendar.session(*segment, date);
                json!({
                    "exchange": exchange,
                    "start_time": open.timestamp_millis(),
                    "end_time": close.timestamp_millis(),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(success(Value::Array(list)))
}
