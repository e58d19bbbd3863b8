//! One signal to every subscription of its strategy: allocation and the risk gate as plain
//! functions over what the engine holds in memory, every decision written with its audit record
//! in one commit, then the orders handed to their users' lanes.

use std::collections::HashMap;
use std::sync::Arc;

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
/// Accounts the margin of one unit is tried with, one after another, before a signal's orders
/// that need it are refused for want of it.
const MARGIN_READERS: usize = 4;

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
    /// Allocation and the risk gate for every subscription (no IO), wall-clock.
    pub decide_us: u64,
    /// The same, in CPU time of the one thread that ran it (preemption by the engine's other
    /// threads left out); `None` where the platform has no thread clock.
    pub decide_cpu_us: Option<u64>,
    /// Making the intents' records (tags, reasons) and the one journal commit of the signal,
    /// its intents and their audit records.
    pub commit_us: u64,
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A signal being taken; dropping it frees the signal's id for a later duplicate check.
struct Taking<'e> {
    engine: &'e Engine,
    key: (String, String),
}

impl Drop for Taking<'_> {
    fn drop(&mut self) {
        self.engine.inner().taking.lock().remove(&self.key);
    }
}

/// What allocation and risk decided for one subscription.
enum Verdict {
    /// Another node holds the account, or the subscription has this signal's intent already:
    /// nothing is decided or recorded here.
    Elsewhere,
    Skip(allocation::Skip),
    Send(OrderPlan),
    Refuse(OrderPlan, risk::Refusal),
}

/// The decision for one subscription, before anything is written.
struct Decision {
    intent: Intent,
    risk: Option<String>,
}

impl Decision {
    /// Adds the intent and its audit record to `write`.
    fn record(&self, write: &mut EngineWrite, strategy: &str, signal: &str, now: DateTime<Utc>) {
        write.intents.push(records::intent_row(&self.intent));
        write.audit.push(records::draft(
            now,
            "intent",
            &self.intent.account,
            &serde_json::json!({
                "tag": self.intent.tag,
                "signal": signal,
                "strategy": strategy,
                "subscription": self.intent.subscription,
                "state": self.intent.state,
                "reason": self.intent.reason,
                "plan": self.intent.plan,
                "risk": self.risk,
            }),
        ));
    }
}

impl Engine {
    /// Takes a signal: refused (and recorded) when malformed for this engine, a duplicate, or for
    /// a strategy it does not know; otherwise each subscription gets an intent — an order, or a
    /// skip or refusal with its reason — written before any order is sent.
    ///
    /// # Errors
    /// Store errors (nothing was sent then).
    pub async fn submit(&self, signal: Signal, source: &str) -> Result<SignalReport> {
        if self.inner().config.cluster.is_some() {
            let sequencer = self.sequencer();
            let _in_order = sequencer.lock().await;
            return self.submit_in_order(signal, source).await;
        }
        self.submit_in_order(signal, source).await
    }

    /// [`Self::submit`], on a cluster's node with the sequencer already held.
    pub(crate) async fn submit_in_order(&self, signal: Signal, source: &str) -> Result<SignalReport> {
        let now = Utc::now();
        let key = (signal.strategy.clone(), signal.id.clone());
        while !self.inner().taking.lock().insert(key.clone()) {
            if self.inner().config.cluster.is_none() {
                return self
                    .refuse(&signal, source, Refusal::Duplicate(signal.id.clone()), now)
                    .await;
            }
            // A node takes the same signal again (redelivered, or caught up after a takeover)
            // once the first taking has ended: the intents it wrote are then skipped.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Released however `take` ends, a dropped request's among them.
        let _taking = Taking { engine: self, key };
        self.take(signal, source, now).await
    }

    async fn take(&self, signal: Signal, source: &str, now: DateTime<Utc>) -> Result<SignalReport> {
        let strategy = match self.admit(&signal).await? {
            Ok(s) => s,
            Err(reason) => return self.refuse(&signal, source, reason, now).await,
        };
        let (subs, verdicts, mut timings) = self.prepare(&strategy, &signal, now, true).await?;
        let commit_start = std::time::Instant::now();
        let decisions = Self::intents_of(&strategy, &signal, &subs, verdicts, self.inner().config.paper, now);
        let mut report = self.commit(strategy, signal, source, decisions, now).await?;
        timings.commit_us = micros(commit_start.elapsed());
        report.timings = Some(timings);
        Ok(report)
    }

    /// Records, for `accounts` this node has just taken over, the signals their previous node
    /// passed without deciding that are now too old to trade: accepted within
    /// [`EngineConfig::late_horizon`](crate::EngineConfig::late_horizon) but before the
    /// catch-up window, and already taken by this node (one it has not reached yet is decided
    /// for them when it does). Each active subscription of theirs that had consented by then
    /// gets a skipped intent saying why, instead of no record. Answers how many.
    ///
    /// # Errors
    /// Store errors.
    pub async fn record_late(&self, accounts: &[String]) -> Result<usize> {
        if accounts.is_empty() {
            return Ok(0);
        }
        let inner = self.inner();
        let now = Utc::now();
        let window = inner.config.catch_up;
        let window_start = records::ms(now - chrono::Duration::from_std(window).unwrap_or_default());
        let horizon_start =
            records::ms(now - chrono::Duration::from_std(inner.config.late_horizon).unwrap_or_default());
        let started = records::ms(inner.started_at);
        let accounts: std::collections::HashSet<&str> = accounts.iter().map(String::as_str).collect();
        let mut strategies: HashMap<String, Option<Strategy>> = HashMap::new();
        // (signal, its subscriptions concerned) for every late signal, oldest first.
        let mut late: Vec<(Strategy, Signal, i64, Vec<Arc<Subscription>>)> = Vec::new();
        for row in inner.store.accepted_signals_since(horizon_start).await? {
            if row.received_at >= window_start {
                break;
            }
            // Passed by this node: taken here, or accepted before this engine started.
            let passed = row.received_at < started
                || inner
                    .progress
                    .lock()
                    .contains_key(&(row.strategy.clone(), row.id.clone()));
            if !passed {
                continue;
            }
            let Ok(signal) = serde_json::from_str::<Signal>(&row.body) else {
                continue;
            };
            if !strategies.contains_key(&row.strategy) {
                let s = self.strategy(&row.strategy).await?;
                strategies.insert(row.strategy.clone(), s);
            }
            let Some(Some(strategy)) = strategies.get(&row.strategy) else {
                continue;
            };
            let accepted_at = records::from_ms(row.received_at);
            let subs: Vec<Arc<Subscription>> = self
                .subscriptions_of(strategy)
                .iter()
                .filter(|s| {
                    accounts.contains(s.account.as_str())
                        && s.state == SubState::Active
                        && s.consent.as_ref().is_some_and(|c| c.at <= accepted_at)
                })
                .cloned()
                .collect();
            if !subs.is_empty() {
                late.push((strategy.clone(), signal, row.received_at, subs));
            }
        }
        let tags: Vec<String> = late
            .iter()
            .flat_map(|(st, sig, _, subs)| subs.iter().map(|s| allocation::intent_tag(&st.id, &sig.id, &s.id)))
            .collect();
        let decided = inner.store.existing_tags(&tags).await?;
        let mut recorded = 0;
        for (strategy, signal, received_at, subs) in late {
            let subs: Vec<Arc<Subscription>> = subs
                .into_iter()
                .filter(|s| !decided.contains(&allocation::intent_tag(&strategy.id, &signal.id, &s.id)))
                .collect();
            if subs.is_empty() {
                continue;
            }
            let skip = allocation::Skip::Late {
                age_secs: (records::ms(now) - received_at) / 1000,
                window_secs: window.as_secs(),
            };
            let verdicts = subs.iter().map(|_| Verdict::Skip(skip.clone())).collect();
            let decisions = Self::intents_of(&strategy, &signal, &subs, verdicts, inner.config.paper, now);
            let mut write = EngineWrite::default();
            for d in &decisions {
                d.record(&mut write, &strategy.id, &signal.id, now);
            }
            let out = inner.journal.write(write).await?;
            recorded += out.new_intents.len();
            tracing::warn!(strategy = %strategy.id, id = %signal.id, subscriptions = out.new_intents.len(), "a signal too old to catch up was recorded as not traded for accounts taken over");
        }
        Ok(recorded)
    }

    /// What `signal` would do now, subscription by subscription — the same checks, reads,
    /// allocation and risk gate as [`Engine::submit`] — with no signal, intent or order recorded,
    /// counted or sent (a token Upstox refuses while funds are read is still marked as needing
    /// a login, as it would be by any read).
    ///
    /// # Errors
    /// Store errors.
    pub async fn preview(&self, signal: &Signal) -> Result<SignalReport> {
        let now = Utc::now();
        let strategy = match self.admit(signal).await? {
            Ok(s) => s,
            Err(reason) => {
                return Ok(SignalReport {
                    strategy: signal.strategy.clone(),
                    signal_id: signal.id.clone(),
                    outcome: SignalOutcome::Refused { reason },
                    intents: Vec::new(),
                    timings: None,
                });
            }
        };
        let (subs, verdicts, timings) = self.prepare(&strategy, signal, now, false).await?;
        let decisions = Self::intents_of(&strategy, signal, &subs, verdicts, self.inner().config.paper, now);
        Ok(SignalReport {
            strategy: strategy.id,
            signal_id: signal.id.clone(),
            outcome: SignalOutcome::Accepted,
            intents: decisions.iter().map(|d| IntentSummary::of(&d.intent)).collect(),
            timings: Some(timings),
        })
    }

    /// The signal's strategy, or why the signal is refused before any subscription is looked at.
    async fn admit(&self, signal: &Signal) -> Result<std::result::Result<Strategy, Refusal>> {
        let Some(strategy) = self.strategy(&signal.strategy).await? else {
            return Ok(Err(Refusal::UnknownStrategy(signal.strategy.clone())));
        };
        if !strategy.instruments.contains(&signal.instrument) {
            return Ok(Err(Refusal::NotTraded(signal.instrument.to_string())));
        }
        if !self.inner().instruments.contains_key(&signal.instrument) {
            return Ok(Err(Refusal::NotLoaded(signal.instrument.to_string())));
        }
        if self.inner().config.cluster.is_none()
            && self.inner().store.signal(&signal.strategy, &signal.id).await?.is_some()
        {
            return Ok(Err(Refusal::Duplicate(signal.id.clone())));
        }
        Ok(Ok(strategy))
    }

    /// Refresh, warm and decide: the verdicts and where the time went (`commit_us` left 0).
    /// `count`: whether the orders decided count towards their subscriptions' orders of the day.
    async fn prepare(
        &self,
        strategy: &Strategy,
        signal: &Signal,
        now: DateTime<Utc>,
        count: bool,
    ) -> Result<(Arc<[Arc<Subscription>]>, Vec<Verdict>, Timings)> {
        // Subscriptions and trading states as they are now: a pause, stop, kill or change of
        // inputs made anywhere takes effect before this signal.
        self.refresh().await?;
        let subs = self.subscriptions_of(strategy);
        // A node decides only for the subscriptions of accounts it holds that have no intent of
        // this signal yet (another node's, or its own from before a redelivery).
        let taken: std::collections::HashSet<String> = if self.inner().config.cluster.is_some() {
            self.inner()
                .store
                .subscriptions_with_intent(&signal.strategy, &signal.id)
                .await?
                .into_iter()
                .collect()
        } else {
            std::collections::HashSet::new()
        };
        let started = std::time::Instant::now();
        self.warm(signal, &subs).await;
        let warmed = started.elapsed();
        // Warming may have found a refused token: decide on the states as they are now.
        let decide_start = std::time::Instant::now();
        let decide_cpu = cpu_time::ThreadTime::try_now().ok();
        let (subs, verdicts) = self.decide(strategy, signal, now, count, &taken);
        let decided_cpu = decide_cpu.and_then(|t| t.try_elapsed().ok());
        let decided = decide_start.elapsed();
        let timings = Timings {
            warm_us: micros(warmed),
            decide_us: micros(decided),
            decide_cpu_us: decided_cpu.map(micros),
            commit_us: 0,
        };
        Ok((subs, verdicts, timings))
    }

    /// `strategy`'s subscriptions in id order, as its roster holds them.
    fn subscriptions_of(&self, strategy: &Strategy) -> Arc<[Arc<Subscription>]> {
        let mut memory = self.inner().memory.lock();
        let roster = memory.take_roster(&strategy.id, strategy.version);
        let subs = roster.subs.clone();
        memory.put_roster(&strategy.id, roster);
        subs
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
    async fn warm(&self, signal: &Signal, subs: &[Arc<Subscription>]) {
        let cfg = &self.inner().config;
        let cluster = cfg.cluster.as_deref();
        let active: Vec<&Subscription> = subs
            .iter()
            .map(|s| &**s)
            .filter(|s| s.state == SubState::Active && cluster.is_none_or(|o| o.holds(&s.account)))
            .collect();
        let (stale_funds, stale_margins, market_readers) = {
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
            // The margin of one unit is the same for every account: it is read with the first
            // few accounts (those whose token is good first), one after another until one
            // answers, so one user's refused token or a lost answer does not leave every user
            // without it.
            let now = Utc::now();
            let (valid, rest): (Vec<&Subscription>, Vec<&Subscription>) =
                active.iter().partition(|s| memory.token_valid(&s.account, now));
            let mut margins: Vec<(MarginKey, Vec<(String, bool)>)> = Vec::new();
            // The market's status likewise, with the first few accounts in the same order.
            let mut market_readers: Vec<(String, bool)> = Vec::new();
            for s in valid.into_iter().chain(rest) {
                if market_readers.len() < MARGIN_READERS && !market_readers.iter().any(|(a, _)| a == &s.account) {
                    market_readers.push((s.account.clone(), s.inputs.paper || cfg.paper));
                }
                for side in [TransactionType::Buy, TransactionType::Sell] {
                    let key = (signal.instrument.clone(), s.inputs.product, side);
                    if memory.margins.get(&key).and_then(|c| c.fresh(cfg.margin_ttl)).is_some() {
                        continue;
                    }
                    let reader = (s.account.clone(), s.inputs.paper || cfg.paper);
                    match margins.iter_mut().find(|(k, _)| k == &key) {
                        Some((_, readers)) => {
                            if readers.len() < MARGIN_READERS && !readers.iter().any(|(a, _)| a == &reader.0) {
                                readers.push(reader);
                            }
                        }
                        None => margins.push((key, vec![reader])),
                    }
                }
            }
            let segment = signal.instrument.segment();
            let market_stale = cfg.check_market_hours
                && memory
                    .market
                    .get(&segment)
                    .and_then(|c| c.fresh(cfg.market_ttl))
                    .is_none();
            if !market_stale {
                market_readers.clear();
            }
            (accounts, margins, market_readers)
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
            .map(|(key, readers)| async move {
                let mut last = String::from("margin: no account with a valid token to read it with");
                for (account, paper) in readers {
                    let lane = self.lane(&account);
                    let read = match lane.broker(paper).await {
                        Ok(broker) => broker.margin(&key.0, lot, key.1, key.2).await,
                        Err(e) => Err(e),
                    };
                    match read {
                        Ok(m) => return (key, Ok(m / Decimal::from(lot))),
                        Err(e) => {
                            if e.kind == BrokerErrorKind::Unauthorized {
                                lane.needs_login(&e.message).await;
                            }
                            last = format!("margin: {}", e.message);
                        }
                    }
                }
                (key, Err(last))
            })
            .buffer_unordered(WARM_CONCURRENCY)
            .collect::<Vec<_>>();
        let market = async {
            for (account, paper) in market_readers {
                let lane = self.lane(&account);
                let read = match lane.broker(paper).await {
                    Ok(b) => b.market_open(signal.instrument.segment()).await,
                    Err(e) => Err(e),
                };
                match read {
                    Ok(open) => return Some(open),
                    Err(e) if e.kind == BrokerErrorKind::Unauthorized => lane.needs_login(&e.message).await,
                    Err(e) => {
                        tracing::warn!(account = %account, error = %e.message, "the market's status could not be read")
                    }
                }
            }
            None
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
        for (key, read) in margins {
            match read {
                Ok(value) => {
                    memory.margin_errors.remove(&key);
                    memory.margins.insert(key, Cached { value, at });
                }
                Err(e) => {
                    memory.margin_errors.insert(key, e);
                }
            }
        }
        if let Some(open) = market {
            memory
                .market
                .insert(signal.instrument.segment(), Cached { value: open, at });
        }
    }

    /// Allocation and risk for every subscription of `strategy`, in id order: plain computation
    /// under one short lock, the subscriptions and one verdict each; the records are made
    /// afterwards.
    fn decide(
        &self,
        strategy: &Strategy,
        signal: &Signal,
        now: DateTime<Utc>,
        count: bool,
        taken: &std::collections::HashSet<String>,
    ) -> (Arc<[Arc<Subscription>]>, Vec<Verdict>) {
        let inner = self.inner();
        let cfg = &inner.config;
        let mut guard = inner.memory.lock();
        let memory = &mut *guard;
        let roster = memory.take_roster(&strategy.id, strategy.version);
        let subs = roster.subs.clone();
        let Some(inst) = inner.instruments.get(&signal.instrument) else {
            memory.put_roster(&strategy.id, roster);
            return (subs, Vec::new());
        };
        let day = today(now);
        let signal_id = memory.instrument_ids.id(&signal.instrument);
        let mut marks = Marks::new(&inner.prices, &inner.instruments, memory.instrument_ids.len());
        let last = inner.prices.last(&signal.instrument).unwrap_or(signal.reference_price);
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
        // What each account brings, read once per signal; it also carries the margin promised to
        // and the sends planned for the account's earlier subscriptions within this signal.
        let mut views: Vec<Option<AccountView>> = vec![None; roster.accounts];
        let clock = std::time::Instant::now();
        let lot = Decimal::from(inst.info.lot_size.max(1));
        let notional_unit = last * Decimal::from(inst.multiplier);
        // The margin of one lot to buy, by product: what margin-percent sizing divides by.
        let mut per_lot_of: Vec<(Product, Decimal)> = Vec::with_capacity(2);
        let states_global = memory.states.global();
        let mut out = Vec::with_capacity(subs.len());
        let cluster = cfg.cluster.as_deref();
        let mut held: Vec<Option<bool>> = if cluster.is_some() {
            vec![None; roster.accounts]
        } else {
            Vec::new()
        };
        for (entry, sub) in roster.entries.iter().zip(subs.iter()) {
            let account = sub.account.as_str();
            if let Some(o) = cluster {
                let holds = *held[entry.account].get_or_insert_with(|| o.holds(account));
                if !holds || taken.contains(&sub.id) {
                    out.push(Verdict::Elsewhere);
                    continue;
                }
            }
            let view = match views[entry.account] {
                Some(v) => v,
                None => {
                    let v = AccountView::of(memory, account, now, clock);
                    views[entry.account] = Some(v);
                    v
                }
            };
            let available = view.funds.unwrap_or_default() - view.reserved;
            let product = sub.inputs.product;
            let per_lot = match per_lot_of.iter().find(|(p, _)| *p == product) {
                Some(&(_, v)) => v,
                None => {
                    let v = per_unit(memory, product, TransactionType::Buy).unwrap_or_default() * lot;
                    per_lot_of.push((product, v));
                    v
                }
            };
            let consented = entry.consented == Some(strategy.version);
            let book = memory.books.at(entry.book);
            let filled = book.position(signal_id);
            // An entry or a target counts what is still working towards the position; an exit
            // sells only what was filled, so a working order that is later rejected never
            // leaves the user short.
            let position = if signal.action == crate::signal::Action::Exit {
                filled
            } else {
                filled + book.in_flight(signal_id)
            };
            let plan = match allocation::allocate_consented(
                signal, sub, consented, position, &inst.info, available, per_lot,
            ) {
                Ok(p) => p,
                Err(skip) => {
                    out.push(Verdict::Skip(skip));
                    continue;
                }
            };
            let per_unit_side = per_unit(memory, sub.inputs.product, plan.side);
            let ctx = risk_context(RiskInputs {
                strategy,
                sub,
                book,
                plan: &plan,
                position,
                states: (states_global, view.user, memory.states.subscription(&sub.id)),
                view: &view,
                market_open,
                per_unit: per_unit_side,
                read_error: if view.read_error {
                    memory.read_errors.get(account).map(String::as_str)
                } else {
                    None
                },
                margin_error: if per_unit_side.is_none() {
                    memory
                        .margin_errors
                        .get(&(signal.instrument.clone(), sub.inputs.product, plan.side))
                        .map(String::as_str)
                } else {
                    None
                },
                available,
                notional_unit,
                marks: &mut marks,
                day,
            });
            match risk::check(&plan, &ctx) {
                Ok(()) => {
                    if let Some(v) = views[entry.account].as_mut() {
                        v.reserved += ctx.margin_required;
                        v.sends += 1;
                    }
                    if count {
                        let book = memory.books.at_mut(entry.book);
                        book.count_order(day);
                        book.add_in_flight(signal_id, plan.signed_units());
                    }
                    out.push(Verdict::Send(plan));
                }
                Err(refusal) => out.push(Verdict::Refuse(plan, refusal)),
            }
        }
        memory.put_roster(&strategy.id, roster);
        (subs, out)
    }

    /// The intents of a signal's verdicts, as they are recorded and sent.
    fn intents_of(
        strategy: &Strategy,
        signal: &Signal,
        subs: &[Arc<Subscription>],
        verdicts: Vec<Verdict>,
        paper_engine: bool,
        now: DateTime<Utc>,
    ) -> Vec<Decision> {
        subs.iter()
            .zip(verdicts)
            .filter(|(_, verdict)| !matches!(verdict, Verdict::Elsewhere))
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
                    Verdict::Elsewhere => {}
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
            shared_signal: inner.config.cluster.is_some(),
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
            d.record(&mut write, &strategy.id, &signal.id, now);
        }
        let out = match inner.journal.write(write).await {
            Ok(out) => out,
            Err(e) => {
                self.release(&decisions);
                return Err(e);
            }
        };
        if !out.applied {
            // Another submission of the same signal won the race: its orders are the ones.
            self.release(&decisions);
            return self
                .refuse(&signal, source, Refusal::Duplicate(signal.id.clone()), now)
                .await;
        }
        // An intent whose tag was there already (another node's, or this node's before a
        // redelivery) is not this taking's: it is neither sent nor reported again.
        let decisions = if out.new_intents.len() == decisions.len() {
            decisions
        } else {
            let new: std::collections::HashSet<&str> = out.new_intents.iter().map(String::as_str).collect();
            let (mine, theirs): (Vec<Decision>, Vec<Decision>) =
                decisions.into_iter().partition(|d| new.contains(d.intent.tag.as_str()));
            self.release(&theirs);
            mine
        };
        inner.counters.lock().accepted += 1;
        let orders = decisions
            .iter()
            .filter(|d| d.intent.state == IntentState::Pending)
            .count();
        // A node taking the same signal again (for accounts it took over) adds to its progress.
        {
            let mut progress = inner.progress.lock();
            if let Some(p) = progress.get_mut(&(signal.strategy.clone(), signal.id.clone())) {
                p.public.orders += orders;
            } else {
                progress.insert(
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
            }
        }
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

    /// Orders decided but never to be sent (their signal's commit failed or lost to the same
    /// signal): no longer in flight.
    fn release(&self, decisions: &[Decision]) {
        let mut memory = self.inner().memory.lock();
        for d in decisions.iter().filter(|d| d.intent.state == IntentState::Pending) {
            memory.in_flight(&d.intent, false);
        }
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
    book_marks(book, &mut Marks::new(prices, instruments, 0), day).1
}

struct RiskInputs<'a, 'p> {
    strategy: &'a Strategy,
    sub: &'a Subscription,
    book: &'a super::SubBook,
    plan: &'a OrderPlan,
    /// The subscription's position in the signal's instrument.
    position: i64,
    states: (TradingState, TradingState, TradingState),
    view: &'a AccountView,
    market_open: bool,
    per_unit: Option<Decimal>,
    /// The last failed read of this account's funds.
    read_error: Option<&'a str>,
    /// Why the margin of one unit could not be read, when it could not.
    margin_error: Option<&'a str>,
    available: Decimal,
    /// The notional value of one unit of the signal's instrument (last price × multiplier).
    notional_unit: Decimal,
    marks: &'a mut Marks<'p>,
    day: chrono::NaiveDate,
}

/// What one account brings to a signal's decisions, read from memory once per signal.
#[derive(Debug, Clone, Copy)]
struct AccountView {
    funds: Option<Decimal>,
    token_valid: bool,
    user: TradingState,
    /// Whether a read of funds or margin failed last (the message stays in memory).
    read_error: bool,
    /// Margin promised to this account's earlier subscriptions within this signal.
    reserved: Decimal,
    /// Sends in the last second, with those planned within this signal.
    sends: u32,
}

impl AccountView {
    fn of(memory: &mut Memory, account: &str, now: DateTime<Utc>, clock: std::time::Instant) -> Self {
        Self {
            funds: memory.funds.get(account).map(|c| c.value),
            token_valid: memory.token_valid(account, now),
            user: memory.states.user(account),
            read_error: memory.read_errors.contains_key(account),
            reserved: Decimal::ZERO,
            sends: memory.sends_last_second(account, clock),
        }
    }
}

/// The last prices (as decimals) and P&L multipliers of the instruments a signal's decisions
/// touch, each read from the price board once per signal, by instrument number.
struct Marks<'p> {
    prices: &'p crate::broker::paper::Prices,
    instruments: &'p HashMap<upstox_types::InstrumentKey, super::Instrument>,
    seen: Vec<Option<(Option<Decimal>, u32)>>,
}

impl<'p> Marks<'p> {
    fn new(
        prices: &'p crate::broker::paper::Prices,
        instruments: &'p HashMap<upstox_types::InstrumentKey, super::Instrument>,
        ids: usize,
    ) -> Self {
        Self {
            prices,
            instruments,
            seen: vec![None; ids],
        }
    }

    /// The last price and the multiplier of `key`, numbered `id`.
    fn get(&mut self, id: u32, key: &upstox_types::InstrumentKey) -> (Option<Decimal>, u32) {
        let slot = usize::try_from(id).ok().and_then(|i| self.seen.get_mut(i));
        if let Some(Some(v)) = slot.as_deref() {
            return *v;
        }
        let v = (
            self.prices.last(key),
            self.instruments.get(key).map_or(1, |i| i.multiplier),
        );
        if let Some(slot) = slot {
            *slot = Some(v);
        }
        v
    }
}

/// A book's exposure now and its day's P&L (realised today plus mark-to-market), in one pass.
fn book_marks(book: &super::SubBook, marks: &mut Marks<'_>, day: chrono::NaiveDate) -> (Decimal, Decimal) {
    let mut exposure = Decimal::ZERO;
    let mut pnl = Decimal::ZERO;
    for (id, key, p) in book.positions.iter_ids() {
        if p.quantity == 0 {
            // Flat: no exposure and nothing to mark, only what it realised today.
            pnl += p.realised_on(day);
            continue;
        }
        let (last, mult) = marks.get(id, key);
        exposure += p.exposure(last.unwrap_or(p.avg_price), mult);
        pnl += p.day_pnl(day, last, mult);
    }
    (exposure, pnl)
}

/// What the gate knows of one subscription: gathered from memory, no IO.
fn risk_context(r: RiskInputs<'_, '_>) -> RiskContext {
    // A reducing order passes the gate without its exposure or day's loss being consulted
    // ([`risk::check`] returns before them): they are not worked out for it.
    let (exposure_now, day_pnl) = if r.plan.reduces {
        (Decimal::ZERO, Decimal::ZERO)
    } else {
        book_marks(r.book, r.marks, r.day)
    };
    let added = if r.plan.reduces {
        Decimal::ZERO
    } else {
        Decimal::from(r.plan.quantity) * r.notional_unit
    };
    let (margin_required, margin_unknown) = match (r.per_unit, r.view.funds) {
        _ if r.plan.reduces => (Decimal::ZERO, None),
        (Some(unit), Some(_)) => (unit * Decimal::from(r.plan.quantity), None),
        (None, _) => (
            Decimal::ZERO,
            Some(r.margin_error.unwrap_or("the margin API did not answer").to_owned()),
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
        token_valid: r.view.token_valid,
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
        day_pnl,
        daily_max_loss: r.sub.inputs.daily_max_loss,
        orders_last_second: r.view.sends,
        registered_algo: r.strategy.registered,
        forced_exit: false,
    }
}
