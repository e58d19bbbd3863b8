//! What the engine holds in memory between signals: the subscriptions and trading states as last
//! read from the store, the accounts as the vault describes them, each subscription's positions
//! and orders of the day, and the caches of funds, margins and market status that keep broker
//! reads off the path from a signal to its orders.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use stoxide_vault::Account;
use upstox_types::{InstrumentKey, Product, Segment, TransactionType};

use crate::positions::Position;
use crate::records::{StateReason, StateRecord};
use crate::risk::{Level, TradingState};
use crate::subscription::Subscription;

/// The maps the engine looks things up in on a signal's path: foldhash (hashbrown's own default,
/// randomly seeded per map) instead of SipHash, several times cheaper on short string ids.
pub(crate) type Map<K, V> = foldhash::HashMap<K, V>;

/// The trading states in force, by level.
#[derive(Debug, Clone, Default)]
pub(crate) struct States {
    pub global: Option<StateRecord>,
    pub users: Map<String, StateRecord>,
    pub subscriptions: Map<String, StateRecord>,
}

impl States {
    pub(crate) fn from_records(records: Vec<StateRecord>, today: NaiveDate) -> Self {
        let mut s = Self::default();
        for r in records {
            // A daily-loss state ends with its day.
            if matches!(r.reason, Some(StateReason::DailyLoss { day, .. }) if day != today) {
                continue;
            }
            match r.level {
                Level::Global => s.global = Some(r),
                Level::User => {
                    s.users.insert(r.target.clone(), r);
                }
                Level::Subscription => {
                    s.subscriptions.insert(r.target.clone(), r);
                }
            }
        }
        s
    }

    fn of(r: Option<&StateRecord>) -> TradingState {
        r.map_or(TradingState::Active, |r| r.state)
    }

    pub(crate) fn global(&self) -> TradingState {
        Self::of(self.global.as_ref())
    }

    pub(crate) fn user(&self, account: &str) -> TradingState {
        Self::of(self.users.get(account))
    }

    pub(crate) fn subscription(&self, id: &str) -> TradingState {
        Self::of(self.subscriptions.get(id))
    }
}

/// One subscription's book.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubBook {
    pub positions: Positions,
    /// Units ordered and not yet ended (signed), by instrument number: an order still working
    /// counts towards the position the next signal aims at, so a second entry before the first
    /// fills is not a second order.
    pub in_flight: smallvec::SmallVec<[(u32, i64); 1]>,
    /// Orders sent (or to be sent) on `day`.
    pub orders_day: Option<NaiveDate>,
    pub orders_today: u32,
}

impl SubBook {
    pub(crate) fn orders_on(&self, today: NaiveDate) -> u32 {
        if self.orders_day == Some(today) {
            self.orders_today
        } else {
            0
        }
    }

    pub(crate) fn count_order(&mut self, today: NaiveDate) {
        if self.orders_day != Some(today) {
            self.orders_day = Some(today);
            self.orders_today = 0;
        }
        self.orders_today += 1;
    }

    /// The signed position in the instrument numbered `id` ([`InstrumentIds`]).
    pub(crate) fn position(&self, id: u32) -> i64 {
        self.positions.by_id(id).map_or(0, |p| p.quantity)
    }

    /// Units ordered in the instrument numbered `id` and not yet ended (signed).
    pub(crate) fn in_flight(&self, id: u32) -> i64 {
        self.in_flight.iter().find(|(i, _)| *i == id).map_or(0, |(_, q)| *q)
    }

    /// Adds `delta` signed units to those in flight in the instrument numbered `id`.
    pub(crate) fn add_in_flight(&mut self, id: u32, delta: i64) {
        match self.in_flight.iter_mut().find(|(i, _)| *i == id) {
            Some(e) => e.1 += delta,
            None => self.in_flight.push((id, delta)),
        }
        self.in_flight.retain(|(_, q)| *q != 0);
    }

    pub(crate) fn open_positions(&self) -> u32 {
        u32::try_from(self.positions.iter().filter(|(_, p)| p.quantity != 0).count()).unwrap_or(u32::MAX)
    }
}

/// A book's positions by instrument: a short list (a subscription holds few instruments; the
/// first is held in the book itself, not behind a pointer) whose entries carry the instrument's
/// number, so the path from a signal finds a position by
/// comparing numbers instead of hashing and comparing keys.
#[derive(Debug, Clone, Default)]
pub(crate) struct Positions(smallvec::SmallVec<[(u32, InstrumentKey, Position); 1]>);

impl Positions {
    pub(crate) fn by_id(&self, id: u32) -> Option<&Position> {
        self.0.iter().find(|(i, _, _)| *i == id).map(|(_, _, p)| p)
    }

    /// Sets the position in `key`, numbered `id` by the memory's [`InstrumentIds`].
    pub(crate) fn insert(&mut self, id: u32, key: &InstrumentKey, position: Position) {
        match self.0.iter_mut().find(|(i, _, _)| *i == id) {
            Some(e) => e.2 = position,
            None => self.0.push((id, key.clone(), position)),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&InstrumentKey, &Position)> {
        self.0.iter().map(|(_, k, p)| (k, p))
    }

    pub(crate) fn iter_ids(&self) -> impl Iterator<Item = (u32, &InstrumentKey, &Position)> {
        self.0.iter().map(|(i, k, p)| (*i, k, p))
    }
}

/// Instruments numbered in the order the engine first meets them.
#[derive(Debug, Default)]
pub(crate) struct InstrumentIds(Map<InstrumentKey, u32>);

impl InstrumentIds {
    pub(crate) fn id(&mut self, key: &InstrumentKey) -> u32 {
        let n = u32::try_from(self.0.len()).unwrap_or(u32::MAX);
        *self.0.entry(key.clone()).or_insert(n)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// A cached value and when it was read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cached<T> {
    pub value: T,
    pub at: Instant,
}

impl<T: Copy> Cached<T> {
    pub(crate) fn fresh(&self, ttl: Duration) -> Option<T> {
        (self.at.elapsed() < ttl).then_some(self.value)
    }
}

/// Margin of one unit, by instrument, product and side.
pub(crate) type MarginKey = (InstrumentKey, Product, TransactionType);

/// Everything in memory, behind one lock (held for plain computations only, never across an
/// await).
#[derive(Debug, Default)]
pub(crate) struct Memory {
    pub subscriptions: Map<String, Subscription>,
    pub states: States,
    pub accounts: Map<String, Account>,
    pub books: Books,
    /// The numbers of the instruments books hold.
    pub instrument_ids: InstrumentIds,
    /// Sends per account in the last second (the exchange's threshold for unregistered algos).
    pub sends: Map<String, VecDeque<Instant>>,
    /// The last send of any account: none within the last second means no account's count
    /// needs looking up.
    pub last_send: Option<Instant>,
    pub funds: Map<String, Cached<Decimal>>,
    pub margins: Map<MarginKey, Cached<Decimal>>,
    pub market: Map<Segment, Cached<bool>>,
    /// The last failed read of funds, by account (cleared by a good read).
    pub read_errors: Map<String, String>,
    /// Why the margin of one unit could not be read, by key (cleared by a good read).
    pub margin_errors: Map<MarginKey, String>,
    /// Consents whose hash was checked against exactly these inputs and version, by
    /// subscription: the check (JSON and SHA-256) is made again only when something changed.
    pub consents: Map<String, Checked>,
    /// Bumped whenever a subscription in memory changes: rosters built before are stale.
    pub generation: u64,
    /// Each strategy's subscriptions as a signal's decisions walk them.
    pub rosters: Map<String, Roster>,
}

/// Every subscription's book, in slots that stay where they are: a roster remembers the slot, so
/// a signal's decisions reach a book without a lookup by id.
#[derive(Debug, Default)]
pub(crate) struct Books {
    slots: Vec<SubBook>,
    index: Map<String, usize>,
}

impl Books {
    pub(crate) fn get(&self, subscription: &str) -> Option<&SubBook> {
        self.index.get(subscription).map(|&i| &self.slots[i])
    }

    /// The slot of `subscription`'s book, made empty when it has none yet.
    pub(crate) fn slot(&mut self, subscription: &str) -> usize {
        if let Some(&i) = self.index.get(subscription) {
            return i;
        }
        self.slots.push(SubBook::default());
        let i = self.slots.len() - 1;
        self.index.insert(subscription.to_owned(), i);
        i
    }

    /// `subscription`'s book, made empty when it has none yet.
    pub(crate) fn entry(&mut self, subscription: &str) -> &mut SubBook {
        let i = self.slot(subscription);
        &mut self.slots[i]
    }

    pub(crate) fn at(&self, slot: usize) -> &SubBook {
        &self.slots[slot]
    }

    pub(crate) fn at_mut(&mut self, slot: usize) -> &mut SubBook {
        &mut self.slots[slot]
    }
}

/// One strategy's subscriptions in id order, with what a signal's decisions need of each found
/// once when the roster is built instead of once per signal: the book's slot, the account's
/// place among the roster's accounts, and the version its consent was checked for.
#[derive(Debug, Default)]
pub(crate) struct Roster {
    /// The memory's generation it was built from.
    pub generation: u64,
    /// The strategy version its consents were checked for.
    pub version: u32,
    pub subs: std::sync::Arc<[std::sync::Arc<Subscription>]>,
    pub entries: Vec<Entry>,
    /// The distinct accounts, in the order `Entry::account` counts them.
    pub accounts: usize,
}

/// What a roster knows of one subscription.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub book: usize,
    pub account: usize,
    /// The strategy version whose consent check this subscription passed, as it is now.
    pub consented: Option<u32>,
}

/// What a consent's hash was checked against.
#[derive(Debug)]
pub(crate) struct Checked {
    pub hash: String,
    pub version: u32,
    pub account: String,
    pub strategy: String,
    pub inputs: crate::subscription::Inputs,
}

impl Memory {
    /// Notes that `intent`'s order went to (`starts`) or came back from (ended) its lane: its
    /// signed units count as in flight in between.
    pub(crate) fn in_flight(&mut self, intent: &crate::records::Intent, starts: bool) {
        let Some(order) = intent.plan.order.as_ref() else {
            return;
        };
        let units = order.signed_units();
        let id = self.instrument_ids.id(&intent.plan.instrument);
        self.books
            .entry(&intent.subscription)
            .add_in_flight(id, if starts { units } else { -units });
    }

    /// Notes that a subscription changed.
    pub(crate) fn changed(&mut self) {
        self.generation += 1;
    }

    /// `strategy`'s roster, up to date for the subscriptions in memory and `version`, taken out
    /// of memory until [`Memory::put_roster`] gives it back.
    pub(crate) fn take_roster(&mut self, strategy: &str, version: u32) -> Roster {
        let mut roster = self.rosters.remove(strategy).unwrap_or_default();
        if roster.generation != self.generation {
            roster = self.build_roster(strategy, version);
        }
        if roster.version != version {
            for (e, sub) in roster.entries.iter_mut().zip(roster.subs.iter()) {
                e.consented = consent_checked(&mut self.consents, sub, version).then_some(version);
            }
            roster.version = version;
        }
        roster
    }

    pub(crate) fn put_roster(&mut self, strategy: &str, roster: Roster) {
        self.rosters.insert(strategy.to_owned(), roster);
    }

    fn build_roster(&mut self, strategy: &str, version: u32) -> Roster {
        let mut subs: Vec<&Subscription> = self.subscriptions.values().filter(|s| s.strategy == strategy).collect();
        subs.sort_by(|a, b| a.id.cmp(&b.id));
        let mut accounts: Map<&str, usize> = Map::default();
        let mut entries = Vec::with_capacity(subs.len());
        for sub in &subs {
            let n = accounts.len();
            let account = *accounts.entry(sub.account.as_str()).or_insert(n);
            entries.push(Entry {
                book: self.books.slot(&sub.id),
                account,
                consented: consent_checked(&mut self.consents, sub, version).then_some(version),
            });
        }
        Roster {
            generation: self.generation,
            version,
            accounts: accounts.len(),
            subs: subs.into_iter().map(|s| std::sync::Arc::new(s.clone())).collect(),
            entries,
        }
    }
}

impl Memory {
    /// Whether the account has a token that is not past its expiry.
    pub(crate) fn token_valid(&self, account: &str, now: DateTime<Utc>) -> bool {
        self.accounts
            .get(account)
            .is_some_and(|a| a.has_token && a.expires_at.is_none_or(|e| e > now))
    }

    /// Sends of `account` within the second before `now`.
    pub(crate) fn sends_last_second(&mut self, account: &str, now: Instant) -> u32 {
        if self
            .last_send
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            return 0;
        }
        let Some(q) = self.sends.get_mut(account) else {
            return 0;
        };
        prune_sends(q, now);
        u32::try_from(q.len()).unwrap_or(u32::MAX)
    }

    pub(crate) fn note_send(&mut self, account: &str) {
        let now = Instant::now();
        let q = self.sends.entry(account.to_owned()).or_default();
        prune_sends(q, now);
        q.push_back(now);
        self.last_send = Some(now);
    }
}

/// Drops the sends older than a second before `now`.
fn prune_sends(q: &mut VecDeque<Instant>, now: Instant) {
    while q
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(1))
    {
        q.pop_front();
    }
}

/// Whether `sub` may trade under `version` ([`Subscription::may_trade`]), remembered in
/// `consents`: the hash is checked again only when the inputs, version, account or strategy differ.
pub(crate) fn consent_checked(consents: &mut Map<String, Checked>, sub: &Subscription, version: u32) -> bool {
    let Some(c) = &sub.consent else { return false };
    if sub.state != crate::subscription::SubState::Active {
        return false;
    }
    if let Some(k) = consents.get(&sub.id)
        && k.hash == c.hash
        && k.version == version
        && k.account == sub.account
        && k.strategy == sub.strategy
        && k.inputs == sub.inputs
    {
        return true;
    }
    let ok = sub.may_trade(version);
    if ok {
        consents.insert(
            sub.id.clone(),
            Checked {
                hash: c.hash.clone(),
                version,
                account: sub.account.clone(),
                strategy: sub.strategy.clone(),
                inputs: sub.inputs.clone(),
            },
        );
    }
    ok
}
