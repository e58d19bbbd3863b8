//! One lane per user: that user's orders go out one after another, every user's lane runs beside
//! every other's. The lane holds the user's broker (their own token from the vault), backs off
//! after a 429 without slowing anyone else, looks up by tag every place whose answer was lost
//! before sending it again, reads the user's order book while orders work, and settles each
//! intent with the position its fills moved.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use secrecy::SecretString;
use serde::Serialize;
use stoxide_store::{EngineWrite, IntentUpdate};
use tokio::sync::mpsc;
use tokio::time::Instant as TokioInstant;

use super::state::Cached;
use super::{Engine, today};
use crate::broker::{AccountRef, Broker, BrokerError, BrokerErrorKind, Found, OrderRequest, Placement};
use crate::intent::{IntentState, OrderView, settle};
use crate::positions::apply_fill;
use crate::records::{self, Intent};
use crate::risk::TradingState;
use crate::subscription::SubState;

/// Jobs queued per lane at most; a full lane makes the fan-out wait (back-pressure).
const QUEUE: usize = 1024;
/// Working orders read one by one (order details) at most; more are read with the order book.
/// The book grows with the day's orders, so reading it for one working order costs the node
/// and the broker more and more as the day goes on.
const BY_ID: usize = 3;
/// Waits before looking in the order book for a place whose answer was lost.
const LOOKUPS: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_millis(1000),
    Duration::from_millis(2000),
];

#[derive(Debug)]
enum Job {
    Send(Intent),
    Recover(Intent),
    CancelOpen {
        subscription: Option<String>,
    },
    /// The broker pushed an order update: read the book now.
    Nudge,
}

/// A lane as the summary shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LaneHealth {
    pub account: String,
    /// Orders waiting to be sent.
    pub queued: usize,
    /// Orders working (acknowledged, not ended).
    pub working: usize,
    /// Places whose outcome the lane is still finding out.
    pub unknown: usize,
    /// Backing off after a 429 until then.
    pub backoff_until: Option<DateTime<Utc>>,
    pub rate_limited: u64,
    pub last_error: Option<String>,
    pub needs_login: bool,
}

/// The live broker of a lane, with the issue time of the token it was made with.
type LiveBroker = (Option<DateTime<Utc>>, Arc<dyn Broker>);

#[derive(Debug)]
struct Shared {
    account: AccountRef,
    live: Mutex<Option<LiveBroker>>,
    paper: Mutex<Option<Arc<dyn Broker>>>,
    health: Mutex<LaneHealth>,
    /// Stops this lane alone (a node letting the account go), or with the engine.
    stop: tokio_util::sync::CancellationToken,
}

/// A handle on one user's lane. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Lane {
    tx: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    engine: Engine,
}

/// A place whose answer was lost, being found out.
#[derive(Debug)]
struct Unknown {
    intent: Intent,
    lookups: usize,
    next_at: Instant,
    /// When its last place went out (at the latest): no order is sent again, nor the intent
    /// given up, before `resend_quiet` has passed since.
    since: DateTime<Utc>,
    /// A restart's intent: never seen answered by this process.
    recovered: bool,
}

/// How often the order book is looked in while a quiet period runs out.
const QUIET_LOOKS: Duration = Duration::from_secs(2);

fn request(engine: &Engine, i: &Intent) -> Option<OrderRequest> {
    let order = i.plan.order.as_ref()?;
    Some(OrderRequest {
        tag: i.tag.clone(),
        instrument: i.plan.instrument.clone(),
        side: order.side,
        quantity: order.quantity,
        product: i.plan.product,
        slice: order.slice,
        market_protection: engine.inner().config.market_protection,
        algo_name: i.plan.algo_name.clone(),
    })
}

impl Lane {
    pub(crate) fn start(engine: Engine, account: AccountRef) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let shared = Arc::new(Shared {
            health: Mutex::new(LaneHealth {
                account: account.id.clone(),
                ..LaneHealth::default()
            }),
            account,
            live: Mutex::default(),
            paper: Mutex::default(),
            stop: engine.inner().stop.child_token(),
        });
        let lane = Self { tx, shared, engine };
        let runner = Runner {
            lane: lane.clone(),
            queue: VecDeque::new(),
            working: HashMap::new(),
            unknown: Vec::new(),
            resends: HashMap::new(),
            backoff: None,
            backoff_until: None,
            next_poll: None,
        };
        let task = tokio::spawn(runner.run(rx));
        (lane, task)
    }

    /// Stops the lane: nothing it has not finished is touched again by it.
    pub(crate) fn stop(&self) {
        self.shared.stop.cancel();
    }

    /// Queues an intent's order.
    pub(crate) async fn send(&self, intent: Intent) {
        self.shared.health.lock().queued += 1;
        let _ = self.tx.send(Job::Send(intent)).await;
    }

    /// Queues a restart's unfinished intent, to be looked up by tag first.
    pub(crate) async fn recover(&self, intent: Intent) {
        let _ = self.tx.send(Job::Recover(intent)).await;
    }

    /// Cancels the open orders of the lane's intents (of one subscription, or all).
    pub(crate) async fn cancel_open(&self, subscription: Option<String>) {
        let _ = self.tx.send(Job::CancelOpen { subscription }).await;
    }

    /// Upstox refused this account's token: its active subscriptions wait for a new login.
    pub(crate) async fn needs_login(&self, message: &str) {
        {
            let mut h = self.shared.health.lock();
            if h.needs_login {
                return;
            }
            h.needs_login = true;
            h.last_error = Some(message.to_owned());
        }
        *self.shared.live.lock() = None;
        let subs: Vec<_> = self
            .engine
            .inner()
            .memory
            .lock()
            .subscriptions
            .values()
            .filter(|s| s.account == self.shared.account.id && s.state == SubState::Active)
            .cloned()
            .collect();
        for before in subs {
            let mut after = before.clone();
            after.needs_login();
            if let Err(e) = self
                .engine
                .change_state(&before, &after, "needs_login", serde_json::json!({"reason": message}))
                .await
            {
                tracing::error!(error = %e, "a subscription's needs-login state could not be written");
            }
        }
    }

    pub(crate) fn health(&self) -> LaneHealth {
        self.shared.health.lock().clone()
    }

    /// The account's broker: paper, or live with the token the vault holds now.
    pub(crate) async fn broker(&self, paper: bool) -> Result<Arc<dyn Broker>, BrokerError> {
        let inner = self.engine.inner();
        if paper {
            if let Some(b) = self.shared.paper.lock().clone() {
                return Ok(b);
            }
            let b = inner
                .paper
                .broker(&self.shared.account, SecretString::from(String::new()))?;
            *self.shared.paper.lock() = Some(b.clone());
            return Ok(b);
        }
        let issued = inner
            .memory
            .lock()
            .accounts
            .get(&self.shared.account.id)
            .and_then(|a| a.issued_at);
        if let Some((at, b)) = self.shared.live.lock().clone()
            && at == issued
        {
            return Ok(b);
        }
        let no_token = || BrokerError {
            kind: BrokerErrorKind::Unauthorized,
            message: format!("no token in the vault for {}: log in again", self.shared.account.id),
        };
        let token = inner
            .vault
            .access_token(&self.shared.account.id)
            .await
            .map_err(|e| BrokerError {
                kind: BrokerErrorKind::Unavailable,
                message: e.to_string(),
            })?
            .ok_or_else(no_token)?;
        let mut account = self.shared.account.clone();
        if account.base_url.is_empty()
            && let Some(a) = inner.memory.lock().accounts.get(&account.id)
        {
            account.base_url = a.base_url.clone();
        }
        let b = inner.live.broker(&account, token)?;
        if let Some(mut updates) = b.order_updates() {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                while updates.recv().await.is_some() {
                    // A full queue means a busy lane, which reads the book anyway.
                    if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Job::Nudge) {
                        break;
                    }
                }
            });
        }
        *self.shared.live.lock() = Some((issued, b.clone()));
        // A new token: whatever the old one was refused for no longer holds.
        self.shared.health.lock().needs_login = false;
        Ok(b)
    }
}

struct Runner {
    lane: Lane,
    queue: VecDeque<Job>,
    working: HashMap<String, Intent>,
    unknown: Vec<Unknown>,
    resends: HashMap<String, u32>,
    backoff: Option<Duration>,
    backoff_until: Option<Instant>,
    next_poll: Option<Instant>,
}

impl Runner {
    fn engine(&self) -> &Engine {
        &self.lane.engine
    }

    fn account(&self) -> &str {
        &self.lane.shared.account.id
    }

    fn backing_off(&self) -> bool {
        self.backoff_until.is_some_and(|t| Instant::now() < t)
    }

    fn publish(&self) {
        let mut h = self.lane.shared.health.lock();
        h.queued = self.queue.iter().filter(|j| matches!(j, Job::Send(_))).count();
        h.working = self.working.len();
        h.unknown = self.unknown.len();
        h.backoff_until = self.backoff_until.filter(|t| Instant::now() < *t).map(|t| {
            Utc::now() + chrono::Duration::from_std(t.saturating_duration_since(Instant::now())).unwrap_or_default()
        });
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let stop = self.lane.shared.stop.clone();
        loop {
            while let Ok(job) = rx.try_recv() {
                self.queue.push_back(job);
            }
            if stop.is_cancelled() {
                return;
            }
            if !self.engine().holds(self.account()) {
                self.abandon();
            }
            if !self.queue.is_empty() && !self.backing_off() {
                if let Some(job) = self.queue.pop_front() {
                    self.handle(job).await;
                }
                self.publish();
                continue;
            }
            let now = Instant::now();
            if self.next_poll.is_some_and(|t| t <= now) || self.unknown.iter().any(|u| u.next_at <= now) {
                self.poll().await;
                self.publish();
                continue;
            }
            let mut wake = self.next_poll;
            if let Some(u) = self.unknown.iter().map(|u| u.next_at).min() {
                wake = Some(wake.map_or(u, |w| w.min(u)));
            }
            if !self.queue.is_empty()
                && let Some(b) = self.backoff_until
            {
                wake = Some(wake.map_or(b, |w| w.min(b)));
            }
            let sleep = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(TokioInstant::from_std(t)).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = stop.cancelled() => return,
                job = rx.recv() => match job {
                    Some(j) => self.queue.push_back(j),
                    None => return,
                },
                () = sleep => {}
            }
        }
    }

    async fn handle(&mut self, job: Job) {
        match job {
            Job::Send(intent) => self.send(intent).await,
            Job::Recover(intent) => match intent.state {
                IntentState::Placed if !intent.order_ids.is_empty() => {
                    self.working.insert(intent.tag.clone(), intent);
                    self.schedule_poll(Duration::ZERO);
                }
                _ => self.unknown.push(Unknown {
                    since: intent.updated_at,
                    intent,
                    lookups: LOOKUPS.len(),
                    next_at: Instant::now(),
                    recovered: true,
                }),
            },
            Job::CancelOpen { subscription } => self.cancel_open(subscription.as_deref()).await,
            Job::Nudge => {
                if !self.working.is_empty() {
                    self.schedule_poll(Duration::ZERO);
                }
            }
        }
    }

    /// This node no longer holds the account: everything of it is left as recorded, for the
    /// next holder to find by tag; nothing more is sent, looked up or read here.
    fn abandon(&mut self) {
        if self.queue.is_empty() && self.working.is_empty() && self.unknown.is_empty() {
            return;
        }
        tracing::info!(
            account = %self.account(),
            queued = self.queue.len(),
            working = self.working.len(),
            unknown = self.unknown.len(),
            "this node no longer holds the account: its orders are left to the next holder"
        );
        self.queue.clear();
        self.working.clear();
        self.unknown.clear();
        self.next_poll = None;
        self.publish();
    }

    fn schedule_poll(&mut self, after: Duration) {
        let at = Instant::now() + after;
        self.next_poll = Some(self.next_poll.map_or(at, |t| t.min(at)));
    }

    /// Whether the intent may still go: its subscription active and no state against it, as the
    /// engine knows them now.
    fn gate(&self, intent: &Intent) -> Result<(), String> {
        let memory = self.engine().inner().memory.lock();
        let reduces = intent.plan.order.as_ref().is_some_and(|o| o.reduces);
        if intent.plan.forced_exit && reduces {
            return Ok(());
        }
        match memory.subscriptions.get(&intent.subscription).map(|s| s.state) {
            Some(SubState::Active) => {}
            Some(state) => {
                return Err(format!(
                    "the subscription became {} before its order was sent",
                    serde_json::to_string(&state).unwrap_or_default().trim_matches('"')
                ));
            }
            None => return Err("the subscription is gone".into()),
        }
        for (level, state) in [
            ("global", memory.states.global()),
            ("user", memory.states.user(&intent.account)),
            ("subscription", memory.states.subscription(&intent.subscription)),
        ] {
            match state {
                TradingState::Halted => {
                    return Err(format!(
                        "trading was halted at the {level} level before the order was sent"
                    ));
                }
                TradingState::Reducing if !reduces => {
                    return Err(format!("only reducing orders are allowed at the {level} level now"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn send(&mut self, intent: Intent) {
        let Some(req) = request(self.engine(), &intent) else {
            self.finish(
                intent,
                IntentState::Refused,
                Some("the intent has no order".into()),
                None,
            )
            .await;
            return;
        };
        if let Err(why) = self.gate(&intent) {
            self.finish(intent, IntentState::Refused, Some(why), None).await;
            return;
        }
        let broker = match self.lane.broker(intent.plan.paper).await {
            Ok(b) => b,
            Err(e) if e.kind == BrokerErrorKind::Unavailable => {
                // The token could not be read just now (a busy database): nothing was sent, and
                // the order goes once the lane's wait is over.
                let wait = self.back_off();
                self.lane.shared.health.lock().last_error = Some(e.message.clone());
                tracing::warn!(account = %self.account(), error = %e.message, wait_ms = wait.as_millis() as u64, "the account's broker is not available; its order waits");
                self.queue.push_front(Job::Send(intent));
                return;
            }
            Err(e) => {
                if e.kind == BrokerErrorKind::Unauthorized {
                    self.needs_login(&e.message).await;
                }
                self.finish(intent, IntentState::Refused, Some(e.message), None).await;
                return;
            }
        };
        if !self.engine().holds(self.account()) {
            // Left pending in the store: the account's next holder sends it (or finds it).
            self.abandon();
            return;
        }
        self.engine().inner().memory.lock().note_send(self.account());
        let placement = broker.place(&req).await;
        let now = Utc::now();
        let account = intent.account.clone();
        let audit = |kind: &str, body: serde_json::Value| records::draft(now, kind, &account, &body);
        match placement {
            Placement::Placed { order_ids } => {
                self.backoff = None;
                let mut placed = intent.clone();
                placed.state = IntentState::Placed;
                placed.order_ids = order_ids.clone();
                placed.updated_at = now;
                let draft = audit(
                    "order_placed",
                    serde_json::json!({"tag": req.tag, "request": req, "order_ids": order_ids}),
                );
                self.record(&placed, vec![draft]).await;
                self.engine().note(&placed, IntentState::Placed);
                self.working.insert(placed.tag.clone(), placed);
                self.schedule_poll(
                    self.engine()
                        .inner()
                        .config
                        .poll_interval
                        .min(Duration::from_millis(200)),
                );
            }
            Placement::Refused { status, code, message } => {
                let reason = match &code {
                    Some(c) => format!("Upstox refused the order ({status} {c}): {message}"),
                    None => format!("the broker refused the order ({status}): {message}"),
                };
                let draft = audit(
                    "order_refused",
                    serde_json::json!({"tag": req.tag, "request": req, "status": status, "code": code, "message": message}),
                );
                self.finish_with(intent, IntentState::Rejected, Some(reason), None, vec![draft])
                    .await;
            }
            Placement::RateLimited { message } => {
                let wait = self.back_off();
                {
                    let mut h = self.lane.shared.health.lock();
                    h.rate_limited += 1;
                    h.last_error = Some(message.clone());
                }
                tracing::info!(account = %self.account(), wait_ms = wait.as_millis() as u64, "429: this user's lane backs off");
                self.engine()
                    .inner()
                    .journal
                    .record(EngineWrite::audit(vec![audit(
                        "rate_limited",
                        serde_json::json!({"tag": req.tag, "message": message, "backoff_ms": wait.as_millis() as u64}),
                    )]))
                    .await;
                // Nothing was placed: the same order goes again once the wait is over.
                self.queue.push_front(Job::Send(intent));
            }
            Placement::Unauthorized { message } => {
                self.needs_login(&message).await;
                let reason = format!("Upstox refused the account's token (401): log in again ({message})");
                self.finish(intent, IntentState::Refused, Some(reason), None).await;
            }
            Placement::Unknown { why } => {
                tracing::warn!(tag = %req.tag, %why, "place outcome unknown; the order book decides before anything is sent again");
                let mut unknown = intent;
                unknown.state = IntentState::Unknown;
                unknown.reason = Some(format!("no answer to the place ({why}); looking in the order book"));
                unknown.updated_at = now;
                let draft = audit("order_unknown", serde_json::json!({"tag": req.tag, "why": why}));
                self.record(&unknown, vec![draft]).await;
                self.unknown.push(Unknown {
                    intent: unknown,
                    lookups: 0,
                    next_at: Instant::now() + LOOKUPS[0],
                    since: now,
                    recovered: false,
                });
            }
        }
    }

    /// Looks up unknown places and reads the order book of working ones.
    async fn poll(&mut self) {
        let now = Instant::now();
        let due: Vec<Unknown> = {
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.unknown)
                .into_iter()
                .partition(|u| u.next_at <= now);
            self.unknown = later;
            due
        };
        for u in due {
            self.look_up(u).await;
        }
        if self.next_poll.is_some_and(|t| t <= now) {
            self.next_poll = None;
            self.read_book().await;
            if !self.working.is_empty() {
                self.schedule_poll(self.engine().inner().config.poll_interval);
            }
        }
    }

    async fn look_up(&mut self, mut u: Unknown) {
        let Some(req) = request(self.engine(), &u.intent) else {
            return;
        };
        let broker = match self.lane.broker(u.intent.plan.paper).await {
            Ok(b) => b,
            Err(e) => {
                if e.kind == BrokerErrorKind::Unauthorized {
                    self.needs_login(&e.message).await;
                    let reason = format!("{}; the order's outcome is checked after the next login", e.message);
                    self.finish(u.intent, IntentState::Refused, Some(reason), None).await;
                } else {
                    self.retry_later(u, &e.message);
                }
                return;
            }
        };
        match broker.find(&req).await {
            Ok(Found::Orders(ids)) => {
                let now = Utc::now();
                let mut placed = u.intent;
                placed.state = IntentState::Placed;
                placed.order_ids = ids.clone();
                placed.reason = None;
                placed.updated_at = now;
                let draft = records::draft(
                    now,
                    "order_reconciled",
                    &placed.account,
                    &serde_json::json!({"tag": req.tag, "found": ids}),
                );
                self.record(&placed, vec![draft]).await;
                self.engine().note(&placed, IntentState::Placed);
                self.working.insert(placed.tag.clone(), placed);
                self.schedule_poll(Duration::ZERO);
            }
            Ok(Found::Nothing) if u.lookups + 1 < LOOKUPS.len() && !u.recovered => {
                u.lookups += 1;
                u.next_at = Instant::now() + LOOKUPS[u.lookups];
                self.unknown.push(u);
            }
            Ok(Found::Nothing) => {
                let quiet = self.quiet_left(&u);
                if quiet > Duration::ZERO {
                    // A place that timed out may still reach the exchange late: nothing is
                    // decided before the quiet period is over.
                    u.next_at = Instant::now() + quiet.min(QUIET_LOOKS);
                    self.unknown.push(u);
                    return;
                }
                // The order book shows no order with this tag for the whole quiet period: the
                // request never arrived.
                let sent = self.resends.entry(u.intent.tag.clone()).or_insert(0);
                let budget = self.lane.engine.inner().config.unknown_resends + u32::from(u.recovered);
                if *sent < budget {
                    *sent += 1;
                    tracing::info!(tag = %req.tag, "not in the order book; sending it again");
                    self.queue.push_front(Job::Send(u.intent));
                } else {
                    let reason = format!(
                        "no answer and no order with tag {} in the order book after {} send(s); nothing more was sent",
                        req.tag,
                        *sent + 1
                    );
                    self.finish(u.intent, IntentState::Cancelled, Some(reason), None).await;
                }
            }
            Ok(Found::Mismatch(why)) => {
                let mut intent = u.intent;
                intent.reason = Some(format!("left for a person: {why}"));
                self.record(&intent, Vec::new()).await;
                // Looked at again later; a person decides meanwhile.
                self.retry_later(
                    Unknown {
                        intent,
                        lookups: u.lookups,
                        next_at: u.next_at,
                        since: u.since,
                        recovered: u.recovered,
                    },
                    &why,
                );
            }
            Err(e) if e.kind == BrokerErrorKind::Unauthorized => {
                self.needs_login(&e.message).await;
                let reason = format!("{}; the order's outcome is checked after the next login", e.message);
                self.finish(u.intent, IntentState::Refused, Some(reason), None).await;
            }
            Err(e) => self.retry_later(u, &e.message),
        }
    }

    /// The lane's next wait (doubling from `backoff_min` up to `backoff_max`), started now.
    fn back_off(&mut self) -> Duration {
        let cfg = &self.engine().inner().config;
        let wait = self.backoff.map_or(cfg.backoff_min, |b| (b * 2).min(cfg.backoff_max));
        self.backoff = Some(wait);
        self.backoff_until = Some(Instant::now() + wait);
        wait
    }

    /// What is left of `u`'s quiet period (zero once it is over).
    fn quiet_left(&self, u: &Unknown) -> Duration {
        let quiet = self.engine().inner().config.resend_quiet;
        let gone = (Utc::now() - u.since).to_std().unwrap_or(Duration::ZERO);
        quiet.saturating_sub(gone)
    }

    fn retry_later(&mut self, mut u: Unknown, why: &str) {
        self.lane.shared.health.lock().last_error = Some(why.to_owned());
        let cfg = &self.engine().inner().config;
        u.next_at = Instant::now() + cfg.backoff_min.max(cfg.poll_interval);
        self.unknown.push(u);
    }

    async fn read_book(&mut self) {
        if self.working.is_empty() {
            return;
        }
        let mut book: Vec<OrderView> = Vec::new();
        for is_paper in [false, true] {
            let ids: Vec<String> = self
                .working
                .values()
                .filter(|i| i.plan.paper == is_paper)
                .flat_map(|i| i.order_ids.iter().cloned())
                .collect();
            if ids.is_empty() {
                continue;
            }
            // A few orders are read one by one; more, with the whole book.
            let result = match self.lane.broker(is_paper).await {
                Ok(b) if ids.len() <= BY_ID => b.orders_by_id(&ids).await,
                Ok(b) => b.orders().await,
                Err(e) => Err(e),
            };
            match result {
                Ok(mut orders) => book.append(&mut orders),
                Err(e) if e.kind == BrokerErrorKind::Unauthorized => {
                    self.needs_login(&e.message).await;
                    return;
                }
                Err(e) => {
                    self.lane.shared.health.lock().last_error = Some(e.message);
                    return;
                }
            }
        }
        let by_id: HashMap<&str, &OrderView> = book.iter().map(|o| (o.order_id.as_str(), o)).collect();
        let mut done = Vec::new();
        for (tag, intent) in &self.working {
            let views: Vec<OrderView> = intent
                .order_ids
                .iter()
                .filter_map(|id| by_id.get(id.as_str()).map(|v| (*v).clone()))
                .collect();
            if views.len() != intent.order_ids.len() {
                continue;
            }
            let planned = intent.plan.order.as_ref().map_or(0, |o| o.quantity);
            if let Some(s) = settle(planned, &views) {
                done.push((tag.clone(), s, views));
            }
        }
        for (tag, s, views) in done {
            if let Some(intent) = self.working.remove(&tag) {
                let body = serde_json::json!({"tag": tag, "state": s.state, "filled": s.filled,
                    "average_price": s.average_price, "reason": s.reason, "orders": views});
                self.settle(intent, s.state, s.reason, Some((s.filled, s.average_price)), body)
                    .await;
            }
        }
        if !self.working.is_empty() || self.next_poll.is_some() {
            return;
        }
        // Everything ended: the user's funds changed; read them for the next signal.
        self.refresh_funds().await;
    }

    async fn refresh_funds(&self) {
        let paper = self.engine().inner().config.paper;
        if let Ok(b) = self.lane.broker(paper).await
            && let Ok(v) = b.available_margin().await
        {
            self.engine().inner().memory.lock().funds.insert(
                self.account().to_owned(),
                Cached {
                    value: v,
                    at: Instant::now(),
                },
            );
        }
    }

    /// An intent ended with fills: its position moves in the same commit as its outcome.
    async fn settle(
        &mut self,
        mut intent: Intent,
        state: IntentState,
        reason: Option<String>,
        fill: Option<(u64, Option<rust_decimal::Decimal>)>,
        body: serde_json::Value,
    ) {
        let now = Utc::now();
        let engine = self.engine().clone();
        let inner = engine.inner();
        let (filled, avg) = fill.unwrap_or((0, None));
        intent.state = state;
        intent.reason = reason;
        intent.filled = filled;
        intent.average_price = avg;
        intent.updated_at = now;
        let mut write = EngineWrite {
            intent_updates: vec![update_of(&intent)],
            audit: vec![records::draft(now, "order_update", &intent.account, &body)],
            ..EngineWrite::default()
        };
        // Out of flight and into the position in one step: a signal decided in between would
        // count the order in neither and trade the user twice, or skip them.
        {
            let mut guard = inner.memory.lock();
            let memory = &mut *guard;
            memory.in_flight(&intent, false);
            if let (Some(order), Some(price)) = (intent.plan.order.as_ref(), avg)
                && filled > 0
            {
                let mult = inner
                    .instruments
                    .get(&intent.plan.instrument)
                    .map_or(1, |i| i.multiplier);
                let id = memory.instrument_ids.id(&intent.plan.instrument);
                let book = memory.books.entry(&intent.subscription);
                let before = book.positions.by_id(id).cloned().unwrap_or_default();
                let after = apply_fill(&before, order.side, filled, price, mult, today(now));
                write.positions.push(records::position_row(
                    &intent.subscription,
                    &intent.plan.instrument,
                    &after,
                    now,
                ));
                book.positions.insert(id, &intent.plan.instrument, after);
                // A loss limit reached by this fill: the subscription may only reduce from now on.
                let book = book.clone();
                if let Some(sub) = memory.subscriptions.get(&intent.subscription).cloned() {
                    let pnl = super::fanout::day_pnl(&book, &inner.prices, &inner.instruments, today(now));
                    if crate::risk::loss_breached(pnl, sub.inputs.daily_max_loss)
                        && memory.states.subscription(&sub.id) == TradingState::Active
                    {
                        let record = records::daily_loss_state(&sub, -pnl, now);
                        write
                            .audit
                            .push(records::draft(now, "risk_state", &sub.account, &record));
                        write.trading_states.push(records::state_row(&record));
                        memory.states.subscriptions.insert(sub.id.clone(), record);
                    }
                }
            }
        }
        inner.journal.record(write).await;
        engine.note(&intent, state);
    }

    async fn finish(&mut self, intent: Intent, state: IntentState, reason: Option<String>, _fill: Option<()>) {
        let now = Utc::now();
        let body = serde_json::json!({"tag": intent.tag, "state": state, "reason": reason});
        let draft = records::draft(now, "intent_ended", &intent.account, &body);
        self.finish_with(intent, state, reason, None, vec![draft]).await;
    }

    async fn finish_with(
        &mut self,
        mut intent: Intent,
        state: IntentState,
        reason: Option<String>,
        _fill: Option<()>,
        audit: Vec<stoxide_store::AuditDraft>,
    ) {
        intent.state = state;
        intent.reason = reason;
        intent.updated_at = Utc::now();
        self.engine().inner().memory.lock().in_flight(&intent, false);
        self.record(&intent, audit).await;
        self.engine().note(&intent, state);
    }

    async fn record(&self, intent: &Intent, audit: Vec<stoxide_store::AuditDraft>) {
        self.engine()
            .inner()
            .journal
            .record(EngineWrite {
                intent_updates: vec![update_of(intent)],
                audit,
                ..EngineWrite::default()
            })
            .await;
    }

    /// Upstox refused the account's token: its subscriptions wait for a new login; no other
    /// user is touched.
    async fn needs_login(&self, message: &str) {
        self.lane.needs_login(message).await;
    }

    async fn cancel_open(&mut self, subscription: Option<&str>) {
        let targets: Vec<(String, bool)> = self
            .working
            .values()
            .filter(|i| subscription.is_none_or(|s| i.subscription == s))
            .flat_map(|i| i.order_ids.iter().map(move |id| (id.clone(), i.plan.paper)))
            .collect();
        for (order_id, paper) in targets {
            let result = match self.lane.broker(paper).await {
                Ok(b) => b.cancel(&order_id).await,
                Err(e) => Err(e),
            };
            let now = Utc::now();
            let body = serde_json::json!({"order_id": order_id, "cancelled": result.is_ok(),
                "error": result.as_ref().err().map(|e| e.message.clone())});
            self.engine()
                .inner()
                .journal
                .record(EngineWrite::audit(vec![records::draft(
                    now,
                    "kill_cancel",
                    self.account(),
                    &body,
                )]))
                .await;
        }
        self.schedule_poll(Duration::ZERO);
    }
}

fn update_of(i: &Intent) -> IntentUpdate {
    IntentUpdate {
        tag: i.tag.clone(),
        state: i.state.as_str().to_owned(),
        reason: i.reason.clone(),
        order_ids: serde_json::to_string(&i.order_ids).unwrap_or_else(|_| "[]".into()),
        filled: i64::try_from(i.filled).unwrap_or(i64::MAX),
        average_price: i.average_price.map(|p| p.to_string()),
        updated_at: records::ms(i.updated_at),
    }
}
