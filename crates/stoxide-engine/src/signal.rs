//! Signals: what a strategy says should happen to an instrument. In-process strategies make them
//! directly; a vendor's own servers POST them, signed per strategy with HMAC-SHA256 over
//! `"{timestamp}.{body}"` (the timestamp within ±30 s of ours, so a captured request cannot be
//! replayed later) — the strategy's logic never enters our process, only its signals.

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use upstox_types::InstrumentKey;

/// How far a signed signal's timestamp may be from our clock.
pub const MAX_SKEW_SECS: i64 = 30;

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Be long (one unit of each subscriber's size).
    EnterLong,
    /// Be short.
    EnterShort,
    /// Be flat.
    Exit,
    /// Hold this many lots (signed; each subscriber's multiplier applies).
    Target { lots: i64 },
}

/// One signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    pub strategy: String,
    /// Unique per strategy: a signal sent twice is one signal.
    pub id: String,
    pub instrument: InstrumentKey,
    #[serde(flatten)]
    pub action: Action,
    /// The price the strategy saw (₹), for sizing by margin and for the record.
    pub reference_price: Decimal,
    pub at: DateTime<Utc>,
}

/// Why a signal was refused. Refusals are recorded with their reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "refused", content = "detail", rename_all = "snake_case")]
pub enum Refusal {
    #[error("the signal is malformed: {0}")]
    Malformed(String),
    #[error("the signal names no strategy of the catalog: {0}")]
    UnknownStrategy(String),
    #[error("{0} is not an instrument this strategy trades")]
    NotTraded(String),
    #[error(
        "{0} is not loaded in this engine: the instrument master could not be read when it started (no linked account with a token); link one (`stoxide login --account ID`) and restart the engine"
    )]
    NotLoaded(String),
    #[error("the signal is not signed (X-Stoxide-Timestamp and X-Stoxide-Signature are required)")]
    Unsigned,
    #[error("the signal's signature does not match its body and timestamp")]
    BadSignature,
    #[error("the signal's timestamp is {skew_secs} s from ours, over the {MAX_SKEW_SECS} s allowed")]
    Stale { skew_secs: i64 },
    #[error("signal {0} was already received")]
    Duplicate(String),
}

/// The body a vendor sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    strategy: String,
    signal_id: String,
    instrument_key: String,
    action: String,
    #[serde(default)]
    target_lots: Option<i64>,
    reference_price: Decimal,
    #[serde(default)]
    time: Option<DateTime<Utc>>,
}

/// Parses a signal's JSON body; `now` stands in for a missing time.
///
/// # Errors
/// [`Refusal::Malformed`] with what is wrong.
pub fn parse(body: &[u8], now: DateTime<Utc>) -> Result<Signal, Refusal> {
    let w: Wire = serde_json::from_slice(body).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let bad = |m: &str| Refusal::Malformed(m.to_owned());
    if w.strategy.trim().is_empty() || w.signal_id.trim().is_empty() {
        return Err(bad("strategy and signal_id must not be empty"));
    }
    if w.signal_id.len() > 64 || !w.signal_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("signal_id must be at most 64 printable characters"));
    }
    let instrument: InstrumentKey = w
        .instrument_key
        .parse()
        .map_err(|e: upstox_types::InstrumentKeyError| Refusal::Malformed(e.to_string()))?;
    let action = match (w.action.as_str(), w.target_lots) {
        ("enter_long", None) => Action::EnterLong,
        ("enter_short", None) => Action::EnterShort,
        ("exit", None) => Action::Exit,
        ("target", Some(lots)) => Action::Target { lots },
        ("target", None) => return Err(bad("a target signal needs target_lots")),
        (_, Some(_)) => return Err(bad("target_lots goes only with action \"target\"")),
        (other, None) => {
            return Err(Refusal::Malformed(format!(
                "action {other:?} is not one of enter_long, enter_short, exit, target"
            )));
        }
    };
    if w.reference_price <= Decimal::ZERO {
        return Err(bad("reference_price must be above zero"));
    }
    Ok(Signal {
        strategy: w.strategy,
        id: w.signal_id,
        instrument,
        action,
        reference_price: w.reference_price,
        at: w.time.unwrap_or(now),
    })
}

/// The signature of `body` sent at `timestamp` (epoch seconds): hex HMAC-SHA256 over
/// `"{timestamp}.{body}"` under the strategy's secret.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    mac(secret, timestamp, body)
        .map(|m| m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect())
        .unwrap_or_default()
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The MAC over `"{timestamp}.{body}"` (HMAC takes keys of any length, so this is always
/// `Some`).
fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<HmacSha256> {
    let mut m = HmacSha256::new_from_slice(secret).ok()?;
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    Some(m)
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks a signed body: the timestamp header (epoch seconds) within ±30 s of `now`, and the
/// signature (hex) over timestamp and body under `secret`, compared in constant time.
///
/// # Errors
/// [`Refusal::Unsigned`], [`Refusal::Stale`], [`Refusal::BadSignature`].
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(Refusal::Unsigned);
    };
    let ts: i64 = ts.trim().parse().map_err(|_| Refusal::Unsigned)?;
    let skew = now.timestamp().saturating_sub(ts);
    if skew.abs() > MAX_SKEW_SECS {
        return Err(Refusal::Stale { skew_secs: skew });
    }
    let sig = from_hex(sig.trim()).ok_or(Refusal::BadSignature)?;
    mac(secret, ts, body)
        .ok_or(Refusal::BadSignature)?
        .verify_slice(&sig)
        .map_err(|_| Refusal::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BODY: &str = r#"{"strategy":"ema-x","signal_id":"s-1","instrument_key":"NSE_EQ|INE002A01018","action":"enter_long","reference_price":2801.5}"#;

    #[test]
    fn well_formed_signals_parse_and_the_rest_says_why() {
        let now = Utc::now();
        let s = parse(BODY.as_bytes(), now).expect("parse");
        assert_eq!(
            (s.action, s.at, s.reference_price),
            (Action::EnterLong, now, Decimal::new(28015, 1))
        );
        let t = parse(
            br#"{"strategy":"a","signal_id":"b","instrument_key":"NSE_FO|43919","action":"target","target_lots":-2,"reference_price":5}"#,
            now,
        )
        .expect("target");
        assert_eq!(t.action, Action::Target { lots: -2 });
        for (body, needle) in [
            ("not json", "expected"),
            (r#"{"strategy":"a"}"#, "missing field"),
            (&BODY.replace("enter_long", "buy_it"), "not one of"),
            (&BODY.replace("NSE_EQ|INE002A01018", "RELIANCE"), "no '|'"),
            (&BODY.replace("2801.5", "0"), "above zero"),
            (&BODY.replace(r#""action""#, r#""extra":1,"action""#), "unknown field"),
            (&BODY.replace("s-1", ""), "must not be empty"),
        ] {
            let e = parse(body.as_bytes(), now).expect_err(body);
            assert!(e.to_string().contains(needle), "{body}: {e}");
        }
    }

    #[test]
    fn signatures_bind_secret_body_and_time() {
        let now = Utc::now();
        let ts = now.timestamp();
        let sig = sign(b"vendor-secret", ts, BODY.as_bytes());
        let ok =
            |secret: &[u8], ts: &str, sig: &str, body: &str| verify(secret, Some(ts), Some(sig), body.as_bytes(), now);
        assert_eq!(ok(b"vendor-secret", &ts.to_string(), &sig, BODY), Ok(()));
        assert_eq!(
            ok(b"other-secret", &ts.to_string(), &sig, BODY),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            ok(
                b"vendor-secret",
                &ts.to_string(),
                &sig,
                &BODY.replace("2801.5", "2901.5")
            ),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            ok(b"vendor-secret", &(ts + 1).to_string(), &sig, BODY),
            Err(Refusal::BadSignature)
        );
        let old = ts - 31;
        let old_sig = sign(b"vendor-secret", old, BODY.as_bytes());
        assert_eq!(
            ok(b"vendor-secret", &old.to_string(), &old_sig, BODY),
            Err(Refusal::Stale { skew_secs: 31 })
        );
        assert_eq!(
            verify(b"k", None, Some(&sig), BODY.as_bytes(), now),
            Err(Refusal::Unsigned)
        );
        assert_eq!(
            ok(b"vendor-secret", &ts.to_string(), "zz", BODY),
            Err(Refusal::BadSignature)
        );
    }

    proptest! {
        #[test]
        fn garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200), sig in ".{0,70}", ts in ".{0,12}") {
            let _ = parse(&body, Utc::now());
            let _ = verify(b"k", Some(&ts), Some(&sig), &body, Utc::now());
        }
    }
}
