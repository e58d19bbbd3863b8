//! One signal to every subscription of its strategy: allocation and the risk gate as plain
//! functions over what the engine holds in memory, every decision written with its audit record
//! in one commit, then the orders handed to their users' lanes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use rust_decimal::Decimal;
use serde::Serialize;
use stoxide_store::{EngineWrite, SignalRow};
use upstox_types::{Product, TransactionType};

use super::state::{Cached, MarginKey, Memory};
use super::{Engine, Progress, SignalProgress, today};
use crate::allocation::{self, OrderPlan};
use crate::broker::BrokerErrorKind;
use crate::catalog::Strategy;
use crate::error::Result;
use crate::intent::IntentState;
use crate::records::{self, Intent, PlanRecord, StateRecord};
use crate::risk::{self, RiskContext, TradingState};
use crate::signal::{Refusal, Signal};
use crate::subscription::{SubState, Subscription};

/// How many broker reads (funds, margin) run at once while caches are warmed for a signal.
const WARM_CONCURRENCY: usize = 256;

/// Whether a signal was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SignalOutcome {
    Accepted,
    Refused { reason: Refusal },
}

/// One intent of a signal, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntentSummary {
    pub tag: String,
    pub account: String,
    pub subscription: String,
    pub state: IntentState,
    pub reason: Option<String>,
    pub side: Option<TransactionType>,
    pub quantity: Option<u64>,
    pub paper: bool,
}

impl IntentSummary {
    pub(crate) fn of(i: &Intent) -> Self {
        Self {
            tag: i.tag.clone(),
            account: i.account.clone(),
            subscription: i.subscription.clone(),
            state: i.state,
            reason: i.reason.clone(),
            side: i.plan.order.as_ref().map(|o| o.side),
            quantity: i.plan.order.as_ref().map(|o| o.quantity),
            paper: i.plan.paper,
        }
    }
}

/// What became of a signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignalReport {
    pub strategy: String,
    pub signal_id: String,
    #[serde(flatten)]
    pub outcome: SignalOutcome,
    pub intents: Vec<IntentSummary>,
    /// Set for accepted signals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
}

/// Where a signal's time went before its orders were handed to the lanes (µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timings {
    /// Reading what was stale: funds, margin of one unit, the market's status.
    pub warm_us: u64,
    /// Allocation and the risk gate for every subscription (no IO).
    pub decide_us: u64,
    /// Making the intents' records (tags, reasons) and the one journal commit of the signal,
    /// its intents and their audit records.
    pub commit_us: u64,
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// What allocation and risk decided for one subscription.
enum Verdict {
    Skip(allocation::Skip),
    Send(OrderPlan),
    Refuse(OrderPlan, risk::Refusal),
}

/// The decision for one subscription, before anything is written.
struct Decision {
    intent: Intent,
    risk: Option<String>,
}

impl Engine {
    /// Takes a signal: refused (and recorded) when malformed for this engine, a duplicate, or for
    /// a strategy it does not know; otherwise each subscription gets an intent — an order, or a
    /// skip or refusal with its reason — written before any order is sent.
    ///
    /// # Errors
    /// Store errors (nothing was sent then).
    pub async fn submit(&self, signal: Signal, source: &str) -> Result<SignalReport> {
        let now = Utc::now();
        let Some(strategy) = self.strategy(&signal.strategy).await? else {
            return self
                .refuse(&signal, source, Refusal::UnknownStrategy(signal.strategy.clone()), now)
                .await;
        };
        if !strategy.instruments.contains(&signal.instrument)
            || !self.inner().instruments.contains_key(&signal.instrument)
        {
            return self
                .refuse(&signal, source, Refusal::NotTraded(signal.instrument.to_string()), now)
                .await;
        }
        if self.inner().store.signal(&signal.strategy, &signal.id).await?.is_some() {
            return self
                .refuse(&signal, source, Refusal::Duplicate(signal.id.clone()), now)
                .await;
        }
        // Subscriptions and trading states as they are now: a pause, stop, kill or change of
        // inputs made anywhere takes effect before this signal.
        self.refresh().await?;
        let subs = self.subscriptions_of(&strategy.id);
        let started = std::time::Instant::now();
        self.warm(&signal, &subs).await;
        let warmed = started.elapsed();
        // Warming may have found a refused token: decide on the states as they are now.
        let subs = self.subscriptions_of(&strategy.id);
        let decide_start = std::time::Instant::now();
        let verdicts = self.decide(&strategy, &signal, &subs, now);
        let decided = decide_start.elapsed();
        let commit_start = std::time::Instant::now();
        let decisions = Self::intents_of(&strategy, &signal, &subs, verdicts, self.inner().config.paper, now);
        let mut report = self.commit(strategy, signal, source, decisions, now).await?;
        report.timings = Some(Timings {
            warm_us: micros(warmed),
            decide_us: micros(decided),
            commit_us: micros(commit_start.elapsed()),
        });
        Ok(report)
    }

    fn subscriptions_of(&self, strategy: &str) -> Vec<Subscription> {
        let memory = self.inner().memory.lock();
        let mut v: Vec<Subscription> = memory
            .subscriptions
            .values()
            .filter(|s| s.strategy == strategy)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    pub(crate) async fn strategy(&self, id: &str) -> Result<Option<Strategy>> {
        self.inner()
            .store
            .strategy(id)
            .await?
            .map(|row| records::strategy_of(&row))
            .transpose()
    }

    async fn refuse(&self, signal: &Signal, source: &str, reason: Refusal, now: DateTime<Utc>) -> Result<SignalReport> {
        self.inner().counters.lock().refused += 1;
        let body =
            serde_json::json!({"signal": signal, "source": source, "accepted": false, "reason": reason.to_string()});
        // A duplicate is already recorded under its id; other refusals are recorded once, when
        // their id is free.
        let row = (!matches!(reason, Refusal::Duplicate(_))).then(|| SignalRow {
            strategy: signal.strategy.clone(),
            id: signal.id.clone(),
            body: serde_json::to_string(signal).unwrap_or_default(),
            accepted: 0,
            reason: Some(reason.to_string()),
            received_at: records::ms(now),
        });
        self.inner()
            .journal
            .write(EngineWrite {
                signal: row,
                audit: vec![records::draft(now, "signal", "", &body)],
                ..EngineWrite::default()
            })
            .await?;
        Ok(SignalReport {
            strategy: signal.strategy.clone(),
            signal_id: signal.id.clone(),
            outcome: SignalOutcome::Refused { reason },
            intents: Vec::new(),
            timings: None,
        })
    }

    /// Reads what is stale before deciding (funds of the users concerned, the margin of one
    /// unit, the market's status), many at once, so the decisions themselves need no IO.
    async fn warm(&self, signal: &Signal, subs: &[Subscription]) {
        let cfg = &self.inner().config;
        let active: Vec<&Subscription> = subs.iter().filter(|s| s.state == SubState::Active).collect();
        let (stale_funds, stale_margins, market_stale) = {
            let memory = self.inner().memory.lock();
            let mut accounts: Vec<(String, bool)> = active
                .iter()
                .filter(|s| {
                    memory
                        .funds
                        .get(&s.account)
                        .and_then(|c| c.fresh(cfg.funds_ttl))
                        .is_none()
                })
                .map(|s| (s.account.clone(), s.inputs.paper || cfg.paper))
                .collect();
            accounts.sort();
            accounts.dedup_by(|a, b| a.0 == b.0);
            let mut margins: Vec<(MarginKey, String, bool)> = Vec::new();
            for s in &active {
                for side in [TransactionType::Buy, TransactionType::Sell] {
                    let key = (signal.instrument.clone(), s.inputs.product, side);
                    if memory.margins.get(&key).and_then(|c| c.fresh(cfg.margin_ttl)).is_none()
                        && !margins.iter().any(|(k, ..)| k == &key)
                    {
                        margins.push((key, s.account.clone(), s.inputs.paper || cfg.paper));
                    }
                }
            }
            let segment = signal.instrument.segment();
            let market = cfg.check_market_hours
                && memory
                    .market
                    .get(&segment)
                    .and_then(|c| c.fresh(cfg.market_ttl))
                    .is_none();
            (accounts, margins, market)
        };
        let funds = futures::stream::iter(stale_funds)
            .map(|(account, paper)| async move {
                let lane = self.lane(&account);
                let read = match lane.broker(paper).await {
                    Ok(broker) => broker.available_margin().await,
                    Err(e) => Err(e),
                };
                if let Err(e) = &read
                    && e.kind == BrokerErrorKind::Unauthorized
                {
                    // Upstox refused this user's token: this user's subscriptions wait for a
                    // login; nobody else is touched.
                    lane.needs_login(&e.message).await;
                }
                (account, read.map_err(|e| format!("funds: {}", e.message)))
            })
            .buffer_unordered(WARM_CONCURRENCY)
            .collect::<Vec<_>>();
        let lot = self
            .inner()
            .instruments
            .get(&signal.instrument)
            .map_or(1, |i| u64::from(i.info.lot_size.max(1)));
        let margins = futures::stream::iter(stale_margins)
            .map(|(key, account, paper)| async move {
                let read = match self.lane(&account).broker(paper).await {
                    Ok(broker) => broker.margin(&key.0, lot, key.1, key.2).await,
                    Err(e) => Err(e),
                };
                (
                    key,
                    account,
                    read.map(|m| m / Decimal::from(lot))
                        .map_err(|e| format!("margin: {}", e.message)),
                )
            })
            .buffer_unordered(WARM_CONCURRENCY)
            .collect::<Vec<_>>();
        let market = async {
            if !market_stale {
                return None;
            }
            let s = active.first()?;
            let b = self.lane(&s.account).broker(s.inputs.paper || cfg.paper).await.ok()?;
            b.market_open(signal.instrument.segment()).await.ok()
        };
        // Funds, margins and the market's status are read at once: one round trip, not three.
        let (funds, margins, market) = futures::join!(funds, margins, market);
        let at = std::time::Instant::now();
        let mut memory = self.inner().memory.lock();
        for (account, read) in funds {
            match read {
                Ok(value) => {
                    memory.read_errors.remove(&account);
                    memory.funds.insert(account, Cached { value, at });
                }
                Err(e) => {
                    memory.read_errors.insert(account, e);
                }
            }
        }
        for (key, account, read) in margins {
            match read {
                Ok(value) => {
                    memory.margins.insert(key, Cached { value, at });
                }
                Err(e) => {
                    memory.read_errors.entry(account).or_insert(e);
                }
            }
        }
        if let Some(open) = market {
            memory
                .market
                .insert(signal.instrument.segment(), Cached { value: open, at });
        }
    }

    /// Allocation and risk for every subscription: plain computation under one short lock, one
    /// verdict per subscription (in `subs`' order); the records are made afterwards.
    fn decide(&self, strategy: &Strategy, signal: &Signal, subs: &[Subscription], now: DateTime<Utc>) -> Vec<Verdict> {
        let inner = self.inner();
        let cfg = &inner.config;
        let Some(inst) = inner.instruments.get(&signal.instrument) else {
            return Vec::new();
        };
        let day = today(now);
        let last = inner.prices.last(&signal.instrument).unwrap_or(signal.reference_price);
        let mut memory = inner.memory.lock();
        let market_open =
            !cfg.check_market_hours || memory.market.get(&signal.instrument.segment()).is_some_and(|c| c.value);
        // The margin of one unit by product and side, looked up once per signal.
        let mut units: Vec<((Product, TransactionType), Option<Decimal>)> = Vec::with_capacity(4);
        let mut per_unit = |memory: &Memory, product: Product, side: TransactionType| {
            if let Some((_, v)) = units.iter().find(|(k, _)| *k == (product, side)) {
                return *v;
            }
            let v = memory
                .margins
                .get(&(signal.instrument.clone(), product, side))
                .map(|c| c.value);
            units.push(((product, side), v));
            v
        };
        // Margin promised to earlier subscriptions of the same user within this signal, and
        // their sends.
        let mut reserved: HashMap<&str, Decimal> = HashMap::new();
        let mut planned_sends: HashMap<&str, u32> = HashMap::new();
        let lot = Decimal::from(inst.info.lot_size.max(1));
        let states_global = memory.states.global();
        let mut out = Vec::with_capacity(subs.len());
        let empty = super::SubBook::default();
        for sub in subs {
            let account = sub.account.as_str();
            let sends = memory.sends_last_second(account) + planned_sends.get(account).copied().unwrap_or(0);
            let funds = memory.funds.get(account).map(|c| c.value);
            let available = funds.unwrap_or_default() - reserved.get(account).copied().unwrap_or_default();
            let per_lot = per_unit(&memory, sub.inputs.product, TransactionType::Buy).unwrap_or_default() * lot;
            let consented = memory.consented(sub, strategy.version);
            let book = memory.books.get(&sub.id).unwrap_or(&empty);
            let position = book.position(&signal.instrument);
            let plan = match allocation::allocate_consented(
                signal, sub, consented, position, &inst.info, available, per_lot,
            ) {
                Ok(p) => p,
                Err(skip) => {
                    out.push(Verdict::Skip(skip));
                    continue;
                }
            };
            let per_unit_side = per_unit(&memory, sub.inputs.product, plan.side);
            let ctx = risk_context(RiskInputs {
                strategy,
                sub,
                book,
                plan: &plan,
                position,
                states: (
                    states_global,
                    memory.states.user(account),
                    memory.states.subscription(&sub.id),
                ),
                token_valid: memory.token_valid(account, now),
                market_open,
                per_unit: per_unit_side,
                funds,
                read_error: memory.read_errors.get(account).map(String::as_str),
                available,
                last,
                prices: &inner.prices,
                instruments: &inner.instruments,
                multiplier: inst.multiplier,
                sends,
                day,
            });
            match risk::check(&plan, &ctx) {
                Ok(()) => {
                    *reserved.entry(account).or_default() += ctx.margin_required;
                    *planned_sends.entry(account).or_default() += 1;
                    match memory.books.get_mut(&sub.id) {
                        Some(b) => b.count_order(day),
                        None => memory.books.entry(sub.id.clone()).or_default().count_order(day),
                    }
                    out.push(Verdict::Send(plan));
                }
                Err(refusal) => out.push(Verdict::Refuse(plan, refusal)),
            }
        }
        out
    }

    /// The intents of a signal's verdicts, as they are recorded and sent.
    fn intents_of(
        strategy: &Strategy,
        signal: &Signal,
        subs: &[Subscription],
        verdicts: Vec<Verdict>,
        paper_engine: bool,
        now: DateTime<Utc>,
    ) -> Vec<Decision> {
        subs.iter()
            .zip(verdicts)
            .map(|(sub, verdict)| {
                let mut intent = Intent {
                    tag: allocation::intent_tag(&strategy.id, &signal.id, &sub.id),
                    strategy: strategy.id.clone(),
                    signal_id: signal.id.clone(),
                    subscription: sub.id.clone(),
                    account: sub.account.clone(),
                    plan: PlanRecord {
                        instrument: signal.instrument.clone(),
                        product: sub.inputs.product,
                        order: None,
                        algo_name: strategy.algo_name.clone(),
                        paper: sub.inputs.paper || paper_engine,
                        forced_exit: false,
                    },
                    state: IntentState::Skipped,
                    reason: None,
                    order_ids: Vec::new(),
                    filled: 0,
                    average_price: None,
                    created_at: now,
                    updated_at: now,
                };
                let mut risk = None;
                match verdict {
                    Verdict::Skip(allocation::Skip::NotActive {
                        state: SubState::NeedsLogin,
                    }) => {
                        intent.reason = Some(format!(
                            "Upstox refused the account's token (401): log in again (`stoxide login --account {}`)",
                            sub.account
                        ));
                    }
                    Verdict::Skip(other) => intent.reason = Some(other.to_string()),
                    Verdict::Send(plan) => {
                        intent.state = IntentState::Pending;
                        intent.plan.order = Some(plan);
                    }
                    Verdict::Refuse(plan, refusal) => {
                        intent.state = IntentState::Refused;
                        intent.reason = Some(refusal.to_string());
                        intent.plan.order = Some(plan);
                        risk = Some(serde_json::to_string(&refusal).unwrap_or_default());
                    }
                }
                Decision { intent, risk }
            })
            .collect()
    }

    async fn commit(
        &self,
        strategy: Strategy,
        signal: Signal,
        source: &str,
        decisions: Vec<Decision>,
        now: DateTime<Utc>,
    ) -> Result<SignalReport> {
        let inner = self.inner();
        let mut write = EngineWrite {
            signal: Some(SignalRow {
                strategy: signal.strategy.clone(),
                id: signal.id.clone(),
                body: serde_json::to_string(&signal).unwrap_or_default(),
                accepted: 1,
                reason: None,
                received_at: records::ms(now),
            }),
            ..EngineWrite::default()
        };
        write.audit.push(records::draft(
            now,
            "signal",
            "",
            &serde_json::json!({"signal": signal, "source": source, "accepted": true, "subscriptions": decisions.len()}),
        ));
        // Loss limits that this signal found breached become a Reducing state that outlives a
        // restart (until the end of the day).
        for s in self.breaches(&decisions, now) {
            write.audit.push(records::draft(now, "risk_state", &s.target, &s));
            write.trading_states.push(records::state_row(&s));
        }
        for d in &decisions {
            write.intents.push(records::intent_row(&d.intent));
            write.audit.push(records::draft(
                now,
                "intent",
                &d.intent.account,
                &serde_json::json!({
                    "tag": d.intent.tag,
                    "signal": signal.id,
                    "strategy": strategy.id,
                    "subscription": d.intent.subscription,
                    "state": d.intent.state,
                    "reason": d.intent.reason,
                    "plan": d.intent.plan,
                    "risk": d.risk,
                }),
            ));
        }
        let out = inner.journal.write(write).await?;
        if !out.applied {
            // Another submission of the same signal won the race.
            return self
                .refuse(&signal, source, Refusal::Duplicate(signal.id.clone()), now)
                .await;
        }
        inner.counters.lock().accepted += 1;
        let orders = decisions
            .iter()
            .filter(|d| d.intent.state == IntentState::Pending)
            .count();
        inner.progress.lock().insert(
            (signal.strategy.clone(), signal.id.clone()),
            Progress {
                public: SignalProgress {
                    strategy: signal.strategy.clone(),
                    signal_id: signal.id.clone(),
                    accepted_at: now,
                    orders,
                    acked: 0,
                    settled: 0,
                    first_ack_ms: None,
                    last_ack_ms: None,
                },
                started: std::time::Instant::now(),
                acked: std::collections::HashSet::new(),
                ended: std::collections::HashSet::new(),
            },
        );
        *inner.last_signal.lock() = Some((signal.strategy.clone(), signal.id.clone()));
        let mut report = SignalReport {
            strategy: signal.strategy.clone(),
            signal_id: signal.id.clone(),
            outcome: SignalOutcome::Accepted,
            intents: Vec::with_capacity(decisions.len()),
            timings: None,
        };
        for d in decisions {
            report.intents.push(IntentSummary::of(&d.intent));
            if d.intent.state == IntentState::Pending {
                self.lane(&d.intent.account).send(d.intent).await;
            } else {
                // Not an order: counted, but not part of the signal's order progress.
                self.count(d.intent.state);
            }
        }
        Ok(report)
    }

    /// Reducing states for subscriptions whose day's loss reached their limit, not yet set.
    fn breaches(&self, decisions: &[Decision], now: DateTime<Utc>) -> Vec<StateRecord> {
        let memory = self.inner().memory.lock();
        let mut rows = Vec::new();
        for d in decisions {
            if d.intent.reason.as_deref().is_none_or(|r| !r.contains("day's loss")) {
                continue;
            }
            if memory.states.subscription(&d.intent.subscription) != TradingState::Active {
                continue;
            }
            let Some(sub) = memory.subscriptions.get(&d.intent.subscription) else {
                continue;
            };
            let Some(book) = memory.books.get(&sub.id) else {
                continue;
            };
            let loss = -day_pnl(book, &self.inner().prices, &self.inner().instruments, today(now));
            let record = records::daily_loss_state(sub, loss, now);
            rows.push(record);
        }
        rows
    }
}

/// The day's P&L of a subscription: realised today plus mark-to-market at the last prices.
pub(crate) fn day_pnl(
    book: &super::SubBook,
    prices: &crate::broker::paper::Prices,
    instruments: &HashMap<upstox_types::InstrumentKey, super::Instrument>,
    day: chrono::NaiveDate,
) -> Decimal {
    book.positions
        .iter()
        .map(|(key, p)| {
            let mult = instruments.get(key).map_or(1, |i| i.multiplier);
            p.day_pnl(day, prices.last(key), mult)
        })
        .sum()
}

struct RiskInputs<'a> {
    strategy: &'a Strategy,
    sub: &'a Subscription,
    book: &'a super::SubBook,
    plan: &'a OrderPlan,
    /// The subscription's position in the signal's instrument.
    position: i64,
    states: (TradingState, TradingState, TradingState),
    token_valid: bool,
    market_open: bool,
    per_unit: Option<Decimal>,
    funds: Option<Decimal>,
    /// The last failed read of this account's funds or margin.
    read_error: Option<&'a str>,
    available: Decimal,
    last: Decimal,
    prices: &'a crate::broker::paper::Prices,
    instruments: &'a HashMap<upstox_types::InstrumentKey, super::Instrument>,
    multiplier: u32,
    sends: u32,
    day: chrono::NaiveDate,
}

/// What the gate knows of one subscription: gathered from memory, no IO.
fn risk_context(r: RiskInputs<'_>) -> RiskContext {
    let exposure_now: Decimal = r
        .book
        .positions
        .iter()
        .map(|(key, p)| {
            let mult = r.instruments.get(key).map_or(1, |i| i.multiplier);
            p.exposure(r.prices.last(key).unwrap_or(p.avg_price), mult)
        })
        .sum();
    let added = if r.plan.reduces {
        Decimal::ZERO
    } else {
        Decimal::from(r.plan.quantity) * r.last * Decimal::from(r.multiplier)
    };
    let (margin_required, margin_unknown) = match (r.per_unit, r.funds) {
        _ if r.plan.reduces => (Decimal::ZERO, None),
        (Some(unit), Some(_)) => (unit * Decimal::from(r.plan.quantity), None),
        (None, _) => (
            Decimal::ZERO,
            Some(r.read_error.unwrap_or("the margin API did not answer").to_owned()),
        ),
        (Some(_), None) => (
            Decimal::ZERO,
            Some(r.read_error.unwrap_or("the funds API did not answer").to_owned()),
        ),
    };
    let margin_available = r.available;
    RiskContext {
        global: r.states.0,
        user: r.states.1,
        subscription: r.states.2,
        token_valid: r.token_valid,
        market_open: r.market_open,
        margin_required,
        margin_available,
        margin_unknown,
        exposure_after: exposure_now + added,
        max_exposure: r.sub.inputs.max_exposure,
        open_positions: r.book.open_positions(),
        opens_position: r.position == 0 && !r.plan.reduces,
        max_open_positions: r.sub.inputs.max_open_positions,
        orders_today: r.book.orders_on(r.day),
        max_orders_per_day: r.sub.inputs.max_orders_per_day,
        day_pnl: day_pnl(r.book, r.prices, r.instruments, r.day),
        daily_max_loss: r.sub.inputs.daily_max_loss,
        orders_last_second: r.sends,
        registered_algo: r.strategy.registered,
        forced_exit: false,
    }
}
