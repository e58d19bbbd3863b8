//! The engine's types as the store keeps them, and back: JSON columns for the engine's own
//! types, decimal text for money, epoch milliseconds for times. A stored record that does not
//! read back is an [`Error::Invalid`] naming it, never a panic.

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use stoxide_store::{
    AuditDraft, AuditHead, AuditRow, IntentRow, PositionRow, StrategyRow, SubscriptionRow, TradingStateRow,
};
use upstox_types::{IST, InstrumentKey, Product};

use crate::allocation::OrderPlan;
use crate::audit;
use crate::catalog::Strategy;
use crate::error::{Error, Result};
use crate::intent::IntentState;
use crate::positions::Position;
use crate::risk::{Level, TradingState};
use crate::subscription::{Consent, Inputs, SubState, Subscription};

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

fn json<T: Serialize>(v: &T) -> String {
    // Our own plain types always serialize.
    serde_json::to_string(v).unwrap_or_default()
}

fn parse<T: for<'de> Deserialize<'de>>(what: &str, id: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Invalid(format!("stored {what} {id} does not read back: {e}")))
}

pub(crate) fn strategy_row(s: &Strategy, now: DateTime<Utc>) -> StrategyRow {
    StrategyRow {
        id: s.id.clone(),
        version: i64::from(s.version),
        definition: json(s),
        updated_at: ms(now),
    }
}

pub(crate) fn strategy_of(row: &StrategyRow) -> Result<Strategy> {
    parse("strategy", &row.id, &row.definition)
}

pub(crate) fn sub_state_str(s: SubState) -> &'static str {
    match s {
        SubState::AwaitingConsent => "awaiting_consent",
        SubState::Active => "active",
        SubState::Paused => "paused",
        SubState::NeedsLogin => "needs_login",
        SubState::Stopped => "stopped",
    }
}

pub(crate) fn subscription_row(s: &Subscription, now: DateTime<Utc>) -> SubscriptionRow {
    SubscriptionRow {
        id: s.id.clone(),
        account: s.account.clone(),
        strategy: s.strategy.clone(),
        inputs: json(&s.inputs),
        state: sub_state_str(s.state).to_owned(),
        consent: s.consent.as_ref().map(json),
        updated_at: ms(now),
    }
}

pub(crate) fn subscription_of(row: &SubscriptionRow) -> Result<Subscription> {
    let inputs: Inputs = parse("subscription", &row.id, &row.inputs)?;
    let state: SubState = parse("subscription", &row.id, &format!("\"{}\"", row.state))?;
    let consent: Option<Consent> = row
        .consent
        .as_deref()
        .map(|c| parse("consent of subscription", &row.id, c))
        .transpose()?;
    Ok(Subscription {
        id: row.id.clone(),
        account: row.account.clone(),
        strategy: row.strategy.clone(),
        inputs,
        state,
        consent,
    })
}

/// What an intent's `plan` column holds: the instrument and product always, the order plan when
/// there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRecord {
    pub instrument: InstrumentKey,
    pub product: Product,
    pub order: Option<OrderPlan>,
    /// The strategy's algo name the order carries.
    pub algo_name: String,
    /// Sent to the paper broker.
    pub paper: bool,
    /// A kill switch's exit, which passes a halted state.
    #[serde(default)]
    pub forced_exit: bool,
}

/// An intent as the engine holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub tag: String,
    pub strategy: String,
    pub signal_id: String,
    pub subscription: String,
    pub account: String,
    pub plan: PlanRecord,
    pub state: IntentState,
    pub reason: Option<String>,
    pub order_ids: Vec<String>,
    pub filled: u64,
    pub average_price: Option<Decimal>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) fn intent_row(i: &Intent) -> IntentRow {
    IntentRow {
        tag: i.tag.clone(),
        strategy: i.strategy.clone(),
        signal_id: i.signal_id.clone(),
        subscription: i.subscription.clone(),
        account: i.account.clone(),
        plan: Some(json(&i.plan)),
        state: i.state.as_str().to_owned(),
        reason: i.reason.clone(),
        order_ids: json(&i.order_ids),
        created_at: ms(i.created_at),
        updated_at: ms(i.updated_at),
        filled: i64::try_from(i.filled).unwrap_or(i64::MAX),
        average_price: i.average_price.map(|p| p.to_string()),
    }
}

pub(crate) fn intent_of(row: &IntentRow) -> Result<Intent> {
    let plan: PlanRecord = parse("intent", &row.tag, row.plan.as_deref().unwrap_or("null"))?;
    let state = IntentState::parse(&row.state).ok_or_else(|| {
        Error::Invalid(format!(
            "stored intent {} has an unknown state {:?}",
            row.tag, row.state
        ))
    })?;
    let order_ids: Vec<String> = parse("intent", &row.tag, &row.order_ids)?;
    let average_price = row
        .average_price
        .as_deref()
        .map(|p| {
            p.parse::<Decimal>()
                .map_err(|e| Error::Invalid(format!("stored intent {} has a bad average price: {e}", row.tag)))
        })
        .transpose()?;
    Ok(Intent {
        tag: row.tag.clone(),
        strategy: row.strategy.clone(),
        signal_id: row.signal_id.clone(),
        subscription: row.subscription.clone(),
        account: row.account.clone(),
        plan,
        state,
        reason: row.reason.clone(),
        order_ids,
        filled: u64::try_from(row.filled).unwrap_or(0),
        average_price,
        created_at: from_ms(row.created_at),
        updated_at: from_ms(row.updated_at),
    })
}

pub(crate) fn position_row(
    subscription: &str,
    instrument: &InstrumentKey,
    p: &Position,
    now: DateTime<Utc>,
) -> PositionRow {
    PositionRow {
        subscription: subscription.to_owned(),
        instrument: instrument.to_string(),
        quantity: p.quantity,
        avg_price: p.avg_price.to_string(),
        realised: p.realised.to_string(),
        updated_at: ms(now),
    }
}

pub(crate) fn position_of(row: &PositionRow) -> Result<(InstrumentKey, Position)> {
    let bad = |what: &str| {
        Error::Invalid(format!(
            "stored position of {} in {} has a bad {what}",
            row.subscription, row.instrument
        ))
    };
    let key: InstrumentKey = row.instrument.parse().map_err(|_| bad("instrument"))?;
    Ok((
        key,
        Position {
            quantity: row.quantity,
            avg_price: row.avg_price.parse().map_err(|_| bad("average price"))?,
            realised: row.realised.parse().map_err(|_| bad("realised P&L"))?,
            day: Some(from_ms(row.updated_at).with_timezone(&IST).date_naive()),
        },
    ))
}

/// Why a trading state was set, kept with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StateReason {
    /// A kill switch or an operator's command.
    Operator { by: String, note: Option<String> },
    /// The day's loss reached the subscription's limit (until the end of that IST day).
    DailyLoss {
        day: chrono::NaiveDate,
        loss: Decimal,
        limit: Decimal,
    },
}

pub(crate) fn level_str(l: Level) -> &'static str {
    match l {
        Level::Global => "global",
        Level::User => "user",
        Level::Subscription => "subscription",
    }
}

pub(crate) fn state_str(s: TradingState) -> &'static str {
    match s {
        TradingState::Active => "active",
        TradingState::Reducing => "reducing",
        TradingState::Halted => "halted",
    }
}

/// One stored trading state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateRecord {
    pub level: Level,
    pub target: String,
    pub state: TradingState,
    pub reason: Option<StateReason>,
    pub updated_at: DateTime<Utc>,
}

/// The Reducing state a subscription's day's loss puts it in (until that IST day ends).
pub(crate) fn daily_loss_state(sub: &Subscription, loss: Decimal, now: DateTime<Utc>) -> StateRecord {
    StateRecord {
        level: Level::Subscription,
        target: sub.id.clone(),
        state: TradingState::Reducing,
        reason: Some(StateReason::DailyLoss {
            day: now.with_timezone(&IST).date_naive(),
            loss,
            limit: sub.inputs.daily_max_loss,
        }),
        updated_at: now,
    }
}

pub(crate) fn state_row(r: &StateRecord) -> TradingStateRow {
    TradingStateRow {
        level: level_str(r.level).to_owned(),
        target: r.target.clone(),
        state: state_str(r.state).to_owned(),
        reason: r.reason.as_ref().map(json),
        updated_at: ms(r.updated_at),
    }
}

pub(crate) fn state_of(row: &TradingStateRow) -> Result<StateRecord> {
    let id = format!("{}/{}", row.level, row.target);
    Ok(StateRecord {
        level: parse("trading state", &id, &format!("\"{}\"", row.level))?,
        target: row.target.clone(),
        state: parse("trading state", &id, &format!("\"{}\"", row.state))?,
        reason: row
            .reason
            .as_deref()
            .map(|r| parse("trading state", &id, r))
            .transpose()?,
        updated_at: from_ms(row.updated_at),
    })
}

/// An audit draft with a JSON body.
pub(crate) fn draft<T: Serialize>(at: DateTime<Utc>, kind: &str, user: &str, body: &T) -> AuditDraft {
    AuditDraft {
        at_ms: ms(at),
        kind: kind.to_owned(),
        user_id: user.to_owned(),
        body: json(body),
    }
}

/// The audit chain: each record hashed over the one before ([`audit::next`]).
pub(crate) fn chain(head: Option<&AuditHead>, d: &AuditDraft) -> AuditRow {
    let head = head.map(|h| audit::Head {
        seq: u64::try_from(h.seq).unwrap_or(0),
        hash: h.hash.clone(),
    });
    let e = audit::next(head.as_ref(), d.at_ms, &d.kind, &d.user_id, d.body.clone());
    AuditRow {
        seq: i64::try_from(e.seq).unwrap_or(i64::MAX),
        at_ms: e.at_ms,
        kind: e.kind,
        user_id: e.user,
        body: e.body,
        prev: e.prev,
        hash: e.hash,
    }
}

/// A stored audit record as the chain's type, for verification and export.
pub fn entry_of(r: &AuditRow) -> audit::Entry {
    audit::Entry {
        seq: u64::try_from(r.seq).unwrap_or(0),
        at_ms: r.at_ms,
        kind: r.kind.clone(),
        user: r.user_id.clone(),
        body: r.body.clone(),
        prev: r.prev.clone(),
        hash: r.hash.clone(),
    }
}
