//! The official proto3 JSON rendering of a `FeedResponse` (what the official SDKs print with
//! `MessageToDict`): field names as in the schema, int64 as decimal strings, enums by name,
//! default values omitted (so an `initial_feed` frame has no `type` key), wrapped doubles as
//! plain numbers, fields in field-number order.

use serde_json::{Map, Value};

use crate::wire::{
    FeedResponse, FirstLevelWithGreeks, FullFeed, IndexFullFeed, Ltpc, MarketFullFeed, MarketInfo, MarketLevel,
    MarketOhlc, OptionGreeks, Quote, RequestMode, StatusInfo, Type, feed, full_feed,
};

fn double(v: f64) -> Value {
    if v.is_finite() {
        serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
    } else if v.is_nan() {
        Value::String("NaN".into())
    } else if v > 0.0 {
        Value::String("Infinity".into())
    } else {
        Value::String("-Infinity".into())
    }
}

struct Obj(Map<String, Value>);

impl Obj {
    fn new() -> Self {
        Self(Map::new())
    }
    fn f64(mut self, k: &str, v: f64) -> Self {
        // -0.0 is not the default in proto3 JSON; 0.0 is.
        if v != 0.0 || v.is_sign_negative() {
            self.0.insert(k.into(), double(v));
        }
        self
    }
    fn i64(mut self, k: &str, v: i64) -> Self {
        if v != 0 {
            self.0.insert(k.into(), Value::String(v.to_string()));
        }
        self
    }
    fn bool(mut self, k: &str, v: bool) -> Self {
        if v {
            self.0.insert(k.into(), Value::Bool(true));
        }
        self
    }
    fn str(mut self, k: &str, v: &str) -> Self {
        if !v.is_empty() {
            self.0.insert(k.into(), Value::String(v.into()));
        }
        self
    }
    fn msg(mut self, k: &str, v: Option<Value>) -> Self {
        if let Some(v) = v {
            self.0.insert(k.into(), v);
        }
        self
    }
    fn list(mut self, k: &str, v: Vec<Value>) -> Self {
        if !v.is_empty() {
            self.0.insert(k.into(), Value::Array(v));
        }
        self
    }
    fn map(mut self, k: &str, v: Map<String, Value>) -> Self {
        if !v.is_empty() {
            self.0.insert(k.into(), Value::Object(v));
        }
        self
    }
    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn ltpc(m: &Ltpc) -> Value {
    Obj::new()
        .f64("ltp", m.ltp)
        .i64("ltt", m.ltt)
        .i64("ltq", m.ltq)
        .f64("cp", m.cp)
        .msg("iep", m.iep.map(double))
        .done()
}

fn quote(m: &Quote) -> Value {
    Obj::new()
        .i64("bidQ", m.bid_q)
        .f64("bidP", m.bid_p)
        .i64("askQ", m.ask_q)
        .f64("askP", m.ask_p)
        .done()
}

fn greeks(m: &OptionGreeks) -> Value {
    Obj::new()
        .f64("delta", m.delta)
        .f64("theta", m.theta)
        .f64("gamma", m.gamma)
        .f64("vega", m.vega)
        .f64("rho", m.rho)
        .done()
}

fn ohlc(m: &MarketOhlc) -> Value {
    let list = m
        .ohlc
        .iter()
        .map(|c| {
            Obj::new()
                .str("interval", &c.interval)
                .f64("open", c.open)
                .f64("high", c.high)
                .f64("low", c.low)
                .f64("close", c.close)
                .i64("vol", c.vol)
                .i64("ts", c.ts)
                .done()
        })
        .collect();
    Obj::new().list("ohlc", list).done()
}

fn level(m: &MarketLevel) -> Value {
    Obj::new()
        .list("bidAskQuote", m.bid_ask_quote.iter().map(quote).collect())
        .done()
}

fn market_ff(m: &MarketFullFeed) -> Value {
    Obj::new()
        .msg("ltpc", m.ltpc.as_ref().map(ltpc))
        .msg("marketLevel", m.market_level.as_ref().map(level))
        .msg("optionGreeks", m.option_greeks.as_ref().map(greeks))
        .msg("marketOHLC", m.market_ohlc.as_ref().map(ohlc))
        .f64("atp", m.atp)
        .i64("vtt", m.vtt)
        .f64("oi", m.oi)
        .f64("iv", m.iv)
        .f64("tbq", m.tbq)
        .f64("tsq", m.tsq)
        .f64("iep", m.iep)
        .f64("rp", m.rp)
        .i64("ieq", m.ieq)
        .i64("iiqTotal", m.iiq_total)
        .i64("iiqM", m.iiq_m)
        .bool("casEligible", m.cas_eligible)
        .done()
}

fn index_ff(m: &IndexFullFeed) -> Value {
    Obj::new()
        .msg("ltpc", m.ltpc.as_ref().map(ltpc))
        .msg("marketOHLC", m.market_ohlc.as_ref().map(ohlc))
        .done()
}

fn full_feed(m: &FullFeed) -> Value {
    match &m.full_feed_union {
        Some(full_feed::FullFeedUnion::MarketFf(x)) => Obj::new().msg("marketFF", Some(market_ff(x))).done(),
        Some(full_feed::FullFeedUnion::IndexFf(x)) => Obj::new().msg("indexFF", Some(index_ff(x))).done(),
        None => Obj::new().done(),
    }
}

fn first_level(m: &FirstLevelWithGreeks) -> Value {
    Obj::new()
        .msg("ltpc", m.ltpc.as_ref().map(ltpc))
        .msg("firstDepth", m.first_depth.as_ref().map(quote))
        .msg("optionGreeks", m.option_greeks.as_ref().map(greeks))
        .i64("vtt", m.vtt)
        .f64("oi", m.oi)
        .f64("iv", m.iv)
        .done()
}

fn enum_name(name: Option<&str>, raw: i32) -> Value {
    // Unknown enum numbers render as the number, as protobuf's JSON printer does.
    name.map_or_else(|| Value::Number(raw.into()), |n| Value::String(n.into()))
}

fn status_info(m: &StatusInfo) -> Value {
    Obj::new()
        .str("status", &m.status)
        .i64("updatedTime", m.updated_time)
        .done()
}

fn market_info(m: &MarketInfo) -> Value {
    let mut seg = Map::new();
    let mut keys: Vec<&String> = m.segment_status.keys().collect();
    keys.sort();
    for k in keys {
        let raw = m.segment_status[k];
        let name = crate::wire::MarketStatus::try_from(raw).ok().map(|s| s.as_str_name());
        seg.insert(k.clone(), enum_name(name, raw));
    }
    let sorted = |map: &std::collections::HashMap<String, StatusInfo>| {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        keys.into_iter()
            .map(|k| (k.clone(), status_info(&map[k])))
            .collect::<Map<String, Value>>()
    };
    Obj::new()
        .map("segmentStatus", seg)
        .map("casMarketStatus", sorted(&m.cas_market_status))
        .map("preOpenSessionStatus", sorted(&m.pre_open_session_status))
        .done()
}

/// Renders a frame as the official proto3 JSON (map keys sorted for stable output).
pub fn feed_response(m: &FeedResponse) -> Value {
    let mut feeds = Map::new();
    let mut keys: Vec<&String> = m.feeds.keys().collect();
    keys.sort();
    for k in keys {
        let f = &m.feeds[k];
        let mut o = match &f.feed_union {
            Some(feed::FeedUnion::Ltpc(x)) => Obj::new().msg("ltpc", Some(ltpc(x))),
            Some(feed::FeedUnion::FullFeed(x)) => Obj::new().msg("fullFeed", Some(full_feed(x))),
            Some(feed::FeedUnion::FirstLevelWithGreeks(x)) => {
                Obj::new().msg("firstLevelWithGreeks", Some(first_level(x)))
            }
            None => Obj::new(),
        };
        if f.request_mode != 0 {
            let name = RequestMode::try_from(f.request_mode).ok().map(|r| r.as_str_name());
            o.0.insert("requestMode".into(), enum_name(name, f.request_mode));
        }
        feeds.insert(k.clone(), o.done());
    }
    let mut out = Obj::new();
    if m.r#type != 0 {
        let name = Type::try_from(m.r#type).ok().map(|t| t.as_str_name());
        out.0.insert("type".into(), enum_name(name, m.r#type));
    }
    out.map("feeds", feeds)
        .i64("currentTs", m.current_ts)
        .msg("marketInfo", m.market_info.as_ref().map(market_info))
        .done()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Feed;

    #[test]
    fn renders_like_message_to_dict() {
        let mut frame = FeedResponse {
            r#type: Type::LiveFeed as i32,
            current_ts: 1_740_729_566_039,
            ..Default::default()
        };
        frame.feeds.insert(
            "NSE_FO|45450".into(),
            Feed {
                feed_union: Some(feed::FeedUnion::Ltpc(Ltpc {
                    ltp: 219.3,
                    ltt: 1_740_729_552_723,
                    ltq: 75,
                    cp: 494.05,
                    iep: None,
                })),
                request_mode: 0,
            },
        );
        let expected = serde_json::json!({"type":"live_feed","feeds":{"NSE_FO|45450":{"ltpc":{"ltp":219.3,"ltt":"1740729552723","ltq":"75","cp":494.05}}},"currentTs":"1740729566039"});
        assert_eq!(feed_response(&frame), expected);
    }

    #[test]
    fn initial_feed_has_no_type_and_iep_is_a_plain_number() {
        let mut frame = FeedResponse::default();
        frame.feeds.insert(
            "NSE_EQ|X".into(),
            Feed {
                feed_union: Some(feed::FeedUnion::Ltpc(Ltpc {
                    ltp: 1.0,
                    iep: Some(0.0),
                    ..Default::default()
                })),
                request_mode: RequestMode::FullD5 as i32,
            },
        );
        let v = feed_response(&frame);
        assert!(v.get("type").is_none());
        assert_eq!(v["feeds"]["NSE_EQ|X"]["ltpc"]["iep"], serde_json::json!(0.0));
        assert_eq!(v["feeds"]["NSE_EQ|X"]["requestMode"], "full_d5");
    }
}
