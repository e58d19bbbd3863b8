//! The running engine: signals in, orders out, in every consenting user's own account.
//!
//! ```text
//! signal ─► allocation + risk (plain functions, in memory) ─► intents written (one commit)
//!        ─► one lane per user (its own queue, limits, backoff, token) ─► broker
//!        ─► order book (polled, and nudged by the portfolio stream) ─► settle ─► positions
//!        ─► journal (group commits, the audit chain)
//! ```
//!
//! Every intent is durable before its order is sent; every order carries its intent's
//! deterministic tag; a place whose answer is lost is looked up by that tag before anything is
//! sent again; a restart reconciles every unfinished intent the same way. One user's 401, 429 or
//! rejection stays in that user's lane.

mod fanout;
mod kill;
mod lane;
mod runner;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use stoxide_store::{EngineWrite, Store};
use stoxide_vault::Vault;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use upstox_types::{IST, InstrumentKey};

use crate::allocation::InstrumentInfo;
use crate::broker::paper::Prices;
use crate::broker::{AccountRef, Brokers};
use crate::error::Result;
use crate::intent::IntentState;
use crate::journal::Journal;
use crate::records::{self, Intent, StateRecord};
use state::{Memory, States, SubBook};

pub use fanout::{IntentSummary, SignalOutcome, SignalReport, Timings};
pub use kill::{Kill, KillReport};
pub use lane::LaneHealth;
pub use runner::{PriceTick, built_in};

/// How the engine behaves. Defaults suit Upstox's published limits.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `market_protection` on every MARKET order: −1 (Upstox's automatic) or 0–25 (%).
    pub market_protection: i32,
    /// How often a lane with working orders reads its user's order book.
    pub poll_interval: Duration,
    /// How often subscriptions, trading states and accounts are re-read from the store.
    pub refresh_interval: Duration,
    /// How long a user's available margin is believed.
    pub funds_ttl: Duration,
    /// How long a margin-per-unit figure is believed.
    pub margin_ttl: Duration,
    /// How long a segment's market status is believed.
    pub market_ttl: Duration,
    /// The first and the longest wait after a 429.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How many times a place whose outcome was unknown, and which the order book then did not
    /// show, is sent again.
    pub unknown_resends: u32,
    /// How long after a place whose answer was lost the order book must keep showing no order
    /// with its tag before it is sent again (or given up). Upstox has no idempotency key, and
    /// a place the client stopped waiting for can still reach the exchange seconds later; how
    /// late is not documented, so this is a setting (30 s by default, `engine run
    /// --resend-quiet`).
    pub resend_quiet: Duration,
    /// Every order to the paper broker, whatever the subscriptions say.
    pub paper: bool,
    /// Refuse orders when the market-status API says the segment is not open.
    pub check_market_hours: bool,
    /// Set when this engine is one node of several: it decides and sends only for the
    /// accounts this holds, a signal recorded by another node is not a duplicate, and each
    /// (signal, subscription) still gets one intent (its tag).
    pub cluster: Option<Arc<dyn crate::ownership::Ownership>>,
    /// How far back a node looks, on taking accounts over, for signals those accounts have no
    /// intent of yet (their previous holder died before deciding them).
    pub catch_up: Duration,
    /// How far back, beyond [`Self::catch_up`], a node looks for signals that accounts it took
    /// over were never decided for: each gets a skipped intent saying it came too late (rather
    /// than no record at all). One hour by default (`engine run --late-horizon`).
    pub late_horizon: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            market_protection: 5,
            poll_interval: Duration::from_millis(500),
            refresh_interval: Duration::from_secs(1),
            funds_ttl: Duration::from_secs(30),
            margin_ttl: Duration::from_secs(300),
            market_ttl: Duration::from_secs(30),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            unknown_resends: 3,
            resend_quiet: Duration::from_secs(30),
            paper: false,
            check_market_hours: true,
            cluster: None,
            catch_up: Duration::from_secs(60),
            late_horizon: Duration::from_secs(3600),
        }
    }
}

/// What the engine knows of an instrument it may trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    pub info: InstrumentInfo,
    /// The units in one quantity step of P&L: the lot size for MCX (quantities are lots), else 1.
    pub multiplier: u32,
}

/// What the engine is made of.
#[derive(Debug, Clone)]
pub struct EngineParts {
    pub vault: Vault,
    /// Live orders.
    pub live: Arc<dyn Brokers>,
    /// Paper orders.
    pub paper: Arc<dyn Brokers>,
    /// The market stream's last prices (mark-to-market, paper fills, exposure).
    pub prices: Prices,
    /// Every instrument the catalog's strategies trade.
    pub instruments: HashMap<InstrumentKey, Instrument>,
}

/// How one signal's fan-out went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignalProgress {
    pub strategy: String,
    pub signal_id: String,
    pub accepted_at: DateTime<Utc>,
    /// Intents with an order to send.
    pub orders: usize,
    /// Of those, acknowledged (placed), and ended (any terminal state).
    pub acked: usize,
    pub settled: usize,
    /// From acceptance to the first and the last acknowledgement, ms.
    pub first_ack_ms: Option<u64>,
    pub last_ack_ms: Option<u64>,
}

#[derive(Debug)]
struct Progress {
    public: SignalProgress,
    started: Instant,
    /// Tags counted as acknowledged and as ended (each once, whatever path it took).
    acked: std::collections::HashSet<String>,
    ended: std::collections::HashSet<String>,
}

/// The live summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub started_at: DateTime<Utc>,
    pub signals_accepted: u64,
    pub signals_refused: u64,
    pub intents: BTreeMap<String, u64>,
    pub lanes: Vec<LaneHealth>,
    pub accounts_needing_login: Vec<String>,
    pub journal_failures: u64,
    pub last_signal: Option<SignalProgress>,
    pub global_state: crate::risk::TradingState,
}

impl Summary {
    /// Whether everything works: the journal writes, no lane is stuck.
    pub fn healthy(&self) -> bool {
        self.journal_failures == 0
    }
}

pub(crate) struct Inner {
    config: EngineConfig,
    store: Store,
    vault: Vault,
    live: Arc<dyn Brokers>,
    paper: Arc<dyn Brokers>,
    prices: Prices,
    instruments: HashMap<InstrumentKey, Instrument>,
    journal: Journal,
    memory: Mutex<Memory>,
    /// The subscription rows the memory's subscriptions were last made from: a refresh parses
    /// only the rows that differ (every signal refreshes, so at 10,000 users parsing them all
    /// was most of a node's work).
    subscription_rows: Mutex<HashMap<String, stoxide_store::SubscriptionRow>>,
    lanes: Mutex<HashMap<String, lane::Lane>>,
    progress: Mutex<HashMap<(String, String), Progress>>,
    /// Signals being taken right now, by (strategy, id): the same signal arriving again meanwhile
    /// is a duplicate at once, so one signal is decided and committed once.
    taking: Mutex<std::collections::HashSet<(String, String)>>,
    /// A cluster's node takes signals one at a time, in order; accounts it takes over catch up
    /// on the signals they missed before it takes the next one.
    sequencer: Arc<tokio::sync::Mutex<()>>,
    last_signal: Mutex<Option<(String, String)>>,
    changed: Notify,
    counters: Mutex<Counters>,
    started_at: DateTime<Utc>,
    stop: CancellationToken,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    journal_stop: CancellationToken,
    journal_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: u64,
    refused: u64,
    intents: BTreeMap<String, u64>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// The engine. Cheap to clone; clones drive the same engine.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

pub(crate) fn today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&IST).date_naive()
}

/// The start of the IST day of `now`, as epoch ms.
fn day_start_ms(now: DateTime<Utc>) -> i64 {
    let date = today(now);
    date.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(IST).single())
        .map_or(0, |t| t.timestamp_millis())
}

impl Engine {
    /// Starts the engine on the vault's store: reads subscriptions, states, positions and the
    /// day's order counts, then hands every unfinished intent to its user's lane, which looks it
    /// up by tag before anything is sent.
    ///
    /// # Errors
    /// Store and vault errors; stored records that do not read back.
    pub async fn start(parts: EngineParts, config: EngineConfig) -> Result<Self> {
        let store = parts.vault.store().clone();
        let journal_stop = CancellationToken::new();
        let (journal, journal_task) = Journal::start(store.clone(), journal_stop.clone());
        let now = Utc::now();
        let inner = Arc::new(Inner {
            config,
            store,
            vault: parts.vault,
            live: parts.live,
            paper: parts.paper,
            prices: parts.prices,
            instruments: parts.instruments,
            journal,
            memory: Mutex::new(Memory::default()),
            subscription_rows: Mutex::default(),
            lanes: Mutex::default(),
            progress: Mutex::default(),
            taking: Mutex::default(),
            sequencer: Arc::default(),
            last_signal: Mutex::default(),
            changed: Notify::new(),
            counters: Mutex::default(),
            started_at: now,
            stop: CancellationToken::new(),
            tasks: Mutex::default(),
            journal_stop,
            journal_task: Mutex::new(Some(journal_task)),
        });
        let engine = Self { inner };
        engine.load_books(now).await?;
        engine.refresh().await?;
        engine.recover().await?;
        let refresher = engine.clone();
        let handle = tokio::spawn(async move { refresher.refresh_loop().await });
        engine.inner.tasks.lock().push(handle);
        engine
            .inner
            .journal
            .record(EngineWrite::audit(vec![records::draft(
                now,
                "engine_started",
                "",
                &serde_json::json!({"paper": engine.inner.config.paper}),
            )]))
            .await;
        Ok(engine)
    }

    async fn load_books(&self, now: DateTime<Utc>) -> Result<()> {
        let positions = self.inner.store.positions().await?;
        let counts = self.inner.store.orders_since(day_start_ms(now)).await?;
        let mut guard = self.inner.memory.lock();
        let memory = &mut *guard;
        for row in &positions {
            let (key, pos) = records::position_of(row)?;
            let id = memory.instrument_ids.id(&key);
            memory.books.entry(&row.subscription).positions.insert(id, &key, pos);
        }
        let day = today(now);
        for (sub, n) in counts {
            let book = memory.books.entry(&sub);
            book.orders_day = Some(day);
            book.orders_today = u32::try_from(n).unwrap_or(u32::MAX);
        }
        Ok(())
    }

    /// Re-reads subscriptions, trading states and accounts; notices new logins.
    pub(crate) async fn refresh(&self) -> Result<()> {
        let subs = self.inner.store.subscriptions().await?;
        let states = self.inner.store.trading_states().await?;
        let accounts = self.inner.vault.accounts().await?;
        let versions: state::Map<String, u32> = self
            .inner
            .store
            .strategies()
            .await?
            .iter()
            .map(|row| records::strategy_of(row).map(|s| (s.id, s.version)))
            .collect::<Result<_>>()?;
        let now = Utc::now();
        let states: Vec<StateRecord> = states.iter().map(records::state_of).collect::<Result<_>>()?;
        let changed: Vec<_> = {
            let mut rows = self.inner.subscription_rows.lock();
            let parsed: Vec<_> = subs
                .into_iter()
                .filter(|r| rows.get(&r.id) != Some(r))
                .map(|r| records::subscription_of(&r).map(|s| (r, s)))
                .collect::<Result<_>>()?;
            parsed
                .into_iter()
                .map(|(r, s)| {
                    rows.insert(r.id.clone(), r);
                    s
                })
                .collect()
        };
        let mut logged_in = Vec::new();
        {
            let mut memory = self.inner.memory.lock();
            let accounts: state::Map<String, stoxide_vault::Account> =
                accounts.into_iter().map(|a| (a.id.clone(), a)).collect();
            for s in changed {
                if memory.subscriptions.get(&s.id) != Some(&s) {
                    memory.subscriptions.insert(s.id.clone(), s);
                    memory.changed();
                }
            }
            // A subscription waiting for a login whose account has a fresh token resumes.
            for s in memory
                .subscriptions
                .values()
                .filter(|s| s.state == crate::subscription::SubState::NeedsLogin)
            {
                let before = memory.accounts.get(&s.account).and_then(|a| a.issued_at);
                let after = accounts.get(&s.account).and_then(|a| a.issued_at);
                if after.is_some() && after != before && memory.token_valid_in(&accounts, &s.account, now) {
                    logged_in.push(s.clone());
                }
            }
            memory.accounts = accounts;
            memory.states = States::from_records(states, today(now));
            // Rosters (and the consents' checks: JSON of the inputs and SHA-256) are made here,
            // when subscriptions are read, and again only after a change: a signal's decisions
            // find them ready.
            for (id, &version) in &versions {
                let roster = memory.take_roster(id, version);
                memory.put_roster(id, roster);
            }
        }
        for before in logged_in {
            let mut after = before.clone();
            after.logged_in();
            self.change_state(&before, &after, "logged_in", serde_json::json!({"state": after.state}))
                .await?;
        }
        Ok(())
    }

    async fn refresh_loop(self) {
        let mut tick = tokio::time::interval(self.inner.config.refresh_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.inner.stop.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = self.refresh().await {
                        tracing::warn!(error = %e, "the engine could not re-read its records");
                    }
                }
            }
        }
    }

    /// Writes a subscription's move from `before`'s state to `after`'s with its audit record, and
    /// keeps it in memory — only if the stored subscription is still in `before`'s state: a
    /// change made meanwhile elsewhere (the desk's new inputs, a pause) stands, and the next
    /// refresh reads it. Whether it was written.
    pub(crate) async fn change_state(
        &self,
        before: &crate::subscription::Subscription,
        after: &crate::subscription::Subscription,
        kind: &str,
        body: serde_json::Value,
    ) -> Result<bool> {
        let now = Utc::now();
        let mut body = body;
        if let Some(o) = body.as_object_mut() {
            o.insert("subscription".into(), after.id.clone().into());
        }
        let outcome = self
            .inner
            .journal
            .write(EngineWrite {
                state_change: Some(stoxide_store::StateChange {
                    id: after.id.clone(),
                    from: records::sub_state_str(before.state).to_owned(),
                    to: records::sub_state_str(after.state).to_owned(),
                    updated_at: now.timestamp_millis(),
                }),
                audit: vec![records::draft(now, kind, &after.account, &body)],
                ..EngineWrite::default()
            })
            .await?;
        if !outcome.applied {
            tracing::info!(subscription = %after.id, kind, "the subscription changed meanwhile; its new record stands");
            return Ok(false);
        }
        let mut memory = self.inner.memory.lock();
        let current = memory.subscriptions.get(&after.id);
        if current.is_none_or(|c| c.state == before.state) {
            let mut s = current.cloned().unwrap_or_else(|| after.clone());
            s.state = after.state;
            memory.subscriptions.insert(s.id.clone(), s);
            memory.changed();
        }
        Ok(true)
    }

    /// Every unfinished intent goes back to its user's lane, to be looked up by tag.
    async fn recover(&self) -> Result<()> {
        if self.inner.config.cluster.is_some() {
            // A node recovers an account's intents when it is given the account ([`Self::adopt`]).
            return Ok(());
        }
        let rows = self.inner.store.unfinished_intents().await?;
        if !rows.is_empty() {
            tracing::info!(intents = rows.len(), "reconciling unfinished intents by tag");
        }
        for row in rows {
            let intent = records::intent_of(&row)?;
            self.inner.memory.lock().in_flight(&intent, true);
            self.lane(&intent.account).recover(intent).await;
        }
        Ok(())
    }

    /// Reads the books of accounts this node is taking over again from the store (positions and
    /// the day's order counts of their subscriptions): what their previous holder did is in
    /// them. Called before the accounts count as held.
    ///
    /// # Errors
    /// Store errors; stored records that do not read back.
    pub async fn reload_books(&self, accounts: &[String]) -> Result<()> {
        if accounts.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let set: std::collections::HashSet<&str> = accounts.iter().map(String::as_str).collect();
        self.refresh().await?;
        let positions = self.inner.store.positions().await?;
        let counts = self.inner.store.orders_since(day_start_ms(now)).await?;
        let mut guard = self.inner.memory.lock();
        let memory = &mut *guard;
        let subs: std::collections::HashSet<String> = memory
            .subscriptions
            .values()
            .filter(|s| set.contains(s.account.as_str()))
            .map(|s| s.id.clone())
            .collect();
        for id in &subs {
            *memory.books.entry(id) = SubBook::default();
        }
        for row in positions.iter().filter(|r| subs.contains(&r.subscription)) {
            let (key, pos) = records::position_of(row)?;
            let id = memory.instrument_ids.id(&key);
            memory.books.entry(&row.subscription).positions.insert(id, &key, pos);
        }
        let day = today(now);
        for (sub, n) in counts.into_iter().filter(|(s, _)| subs.contains(s)) {
            let book = memory.books.entry(&sub);
            book.orders_day = Some(day);
            book.orders_today = u32::try_from(n).unwrap_or(u32::MAX);
        }
        Ok(())
    }

    /// Hands the unfinished intents of accounts this node has just taken over to their lanes,
    /// to be looked up by tag before anything is sent again; answers how many.
    ///
    /// # Errors
    /// Store errors; stored records that do not read back.
    pub async fn recover_accounts(&self, accounts: &[String]) -> Result<usize> {
        if accounts.is_empty() {
            return Ok(0);
        }
        let set: std::collections::HashSet<&str> = accounts.iter().map(String::as_str).collect();
        let mut recovered = 0;
        for row in self.inner.store.unfinished_intents().await? {
            if !set.contains(row.account.as_str()) {
                continue;
            }
            let intent = records::intent_of(&row)?;
            self.inner.memory.lock().in_flight(&intent, true);
            self.lane(&intent.account).recover(intent).await;
            recovered += 1;
        }
        Ok(recovered)
    }

    /// The order signals are taken in, on a cluster's node: the node holds it (waiting for the
    /// signal being taken) to start using accounts it takes over, and passes it to
    /// [`Self::catch_up`], so a new signal is never decided for an account before the signals it
    /// missed.
    pub fn sequencer(&self) -> Arc<tokio::sync::Mutex<()>> {
        self.inner.sequencer.clone()
    }

    /// Takes again every signal accepted within [`EngineConfig::catch_up`]: the accounts this
    /// node holds that have no intent of one (their previous holder died before deciding it)
    /// get theirs now; the others are skipped. Answers how many signals were taken again.
    ///
    /// # Errors
    /// Store errors.
    pub async fn catch_up(&self, _in_order: &tokio::sync::OwnedMutexGuard<()>) -> Result<usize> {
        let since = Utc::now() - chrono::Duration::from_std(self.inner.config.catch_up).unwrap_or_default();
        let mut taken = 0;
        for row in self.inner.store.accepted_signals_since(records::ms(since)).await? {
            let Ok(signal) = serde_json::from_str::<crate::signal::Signal>(&row.body) else {
                tracing::warn!(strategy = %row.strategy, id = %row.id, "a stored signal does not read back; not caught up");
                continue;
            };
            let report = self.submit_in_order(signal, "catch_up").await?;
            if !report.intents.is_empty() {
                tracing::info!(strategy = %report.strategy, id = %report.signal_id, intents = report.intents.len(), "a signal caught up for accounts taken over");
            }
            taken += 1;
        }
        Ok(taken)
    }

    /// Lets accounts go (a cluster's node no longer holds them): their lanes stop, and whatever
    /// they had not finished stays recorded for the next holder to find by tag.
    pub fn let_go(&self, accounts: &[String]) {
        let mut lanes = self.inner.lanes.lock();
        for a in accounts {
            if let Some(l) = lanes.remove(a) {
                l.stop();
            }
        }
    }

    /// Whether this engine may act for `account` now (always, unless it is a cluster's node).
    pub(crate) fn holds(&self, account: &str) -> bool {
        self.inner.config.cluster.as_ref().is_none_or(|o| o.holds(account))
    }

    /// The lane of `account`, started on first use.
    pub(crate) fn lane(&self, account: &str) -> lane::Lane {
        if let Some(l) = self.inner.lanes.lock().get(account) {
            return l.clone();
        }
        // Read with no other lock held: the engine's locks are never nested (a lane started
        // while `summary` held the memory and waited for the lanes deadlocked a node).
        let base_url = self
            .inner
            .memory
            .lock()
            .accounts
            .get(account)
            .map(|a| a.base_url.clone())
            .unwrap_or_default();
        let mut lanes = self.inner.lanes.lock();
        if let Some(l) = lanes.get(account) {
            return l.clone();
        }
        let (l, task) = lane::Lane::start(
            self.clone(),
            AccountRef {
                id: account.to_owned(),
                base_url,
            },
        );
        self.inner.tasks.lock().push(task);
        lanes.insert(account.to_owned(), l.clone());
        l
    }

    /// The progress of one signal's fan-out.
    pub fn progress(&self, strategy: &str, signal_id: &str) -> Option<SignalProgress> {
        self.inner
            .progress
            .lock()
            .get(&(strategy.to_owned(), signal_id.to_owned()))
            .map(|p| p.public.clone())
    }

    /// Waits until every order of a signal has ended (or `timeout`); answers its progress.
    pub async fn wait_settled(&self, strategy: &str, signal_id: &str, timeout: Duration) -> Option<SignalProgress> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            let p = self.progress(strategy, signal_id)?;
            if p.settled >= p.orders || tokio::time::Instant::now() >= deadline {
                // What was recorded so far is in the store when this answers.
                let _ = self.flush().await;
                return self.progress(strategy, signal_id);
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Waits until every record queued so far is committed.
    ///
    /// # Errors
    /// The store's error; [`crate::Error::Stopped`].
    pub async fn flush(&self) -> Result<()> {
        self.inner.journal.write(EngineWrite::default()).await.map(|_| ())
    }

    /// Waits until every order of a signal is acknowledged or ended (or `timeout`).
    pub async fn wait_acked(&self, strategy: &str, signal_id: &str, timeout: Duration) -> Option<SignalProgress> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            let p = self.progress(strategy, signal_id)?;
            if p.acked.max(p.settled) >= p.orders || tokio::time::Instant::now() >= deadline {
                return Some(p);
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Counts an intent reaching `state` in the summary.
    pub(crate) fn count(&self, state: IntentState) {
        self.inner
            .counters
            .lock()
            .intents
            .entry(state.as_str().to_owned())
            .and_modify(|n| *n += 1)
            .or_insert(1);
    }

    /// Counts an intent reaching `state` (for the summary and the signal's progress).
    pub(crate) fn note(&self, intent: &Intent, state: IntentState) {
        self.count(state);
        let key = (intent.strategy.clone(), intent.signal_id.clone());
        if let Some(p) = self.inner.progress.lock().get_mut(&key) {
            let ms = u64::try_from(p.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            if state == IntentState::Placed && p.acked.insert(intent.tag.clone()) {
                p.public.acked += 1;
                p.public.first_ack_ms.get_or_insert(ms);
                p.public.last_ack_ms = Some(ms);
            }
            if state.is_terminal() && p.ended.insert(intent.tag.clone()) {
                p.public.settled += 1;
            }
        }
        self.inner.changed.notify_waiters();
    }

    /// The live summary.
    pub fn summary(&self) -> Summary {
        // One lock at a time, never two held together (see `lane`).
        let (mut needing, global_state) = {
            let memory = self.inner.memory.lock();
            let needing: Vec<String> = memory
                .subscriptions
                .values()
                .filter(|s| s.state == crate::subscription::SubState::NeedsLogin)
                .map(|s| s.account.clone())
                .collect();
            (needing, memory.states.global())
        };
        needing.sort();
        needing.dedup();
        let (accepted, refused, intents) = {
            let c = self.inner.counters.lock();
            (c.accepted, c.refused, c.intents.clone())
        };
        let last = self.inner.last_signal.lock().clone();
        let lanes: Vec<lane::Lane> = self.inner.lanes.lock().values().cloned().collect();
        Summary {
            started_at: self.inner.started_at,
            signals_accepted: accepted,
            signals_refused: refused,
            intents,
            lanes: lanes.iter().map(lane::Lane::health).collect(),
            accounts_needing_login: needing,
            journal_failures: self.inner.journal.failures(),
            last_signal: last.and_then(|(s, id)| self.progress(&s, &id)),
            global_state,
        }
    }

    /// The engine's store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Stops every lane (what they have started finishes or is reconciled on the next start)
    /// and writes what is queued.
    pub async fn shutdown(&self) {
        self.inner.stop.cancel();
        let tasks: Vec<_> = std::mem::take(&mut *self.inner.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
        self.inner
            .journal
            .record(EngineWrite::audit(vec![records::draft(
                Utc::now(),
                "engine_stopped",
                "",
                &serde_json::json!({}),
            )]))
            .await;
        self.inner.journal_stop.cancel();
        let journal = self.inner.journal_task.lock().take();
        if let Some(j) = journal {
            let _ = j.await;
        }
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }
}

impl Memory {
    fn token_valid_in(
        &self,
        accounts: &state::Map<String, stoxide_vault::Account>,
        account: &str,
        now: DateTime<Utc>,
    ) -> bool {
        accounts
            .get(account)
            .is_some_and(|a| a.has_token && a.expires_at.is_none_or(|e| e > now))
    }
}
