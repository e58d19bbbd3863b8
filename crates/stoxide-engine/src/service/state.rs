//! What the engine holds in memory between signals: the subscriptions and trading states as last
//! read from the store, the accounts as the vault describes them, each subscription's positions
//! and orders of the day, and the caches of funds, margins and market status that keep broker
//! reads off the path from a signal to its orders.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use stoxide_vault::Account;
use upstox_types::{InstrumentKey, Product, Segment, TransactionType};

use crate::positions::Position;
use crate::records::{StateReason, StateRecord};
use crate::risk::{Level, TradingState};
use crate::subscription::Subscription;

/// The trading states in force, by level.
#[derive(Debug, Clone, Default)]
pub(crate) struct States {
    pub global: Option<StateRecord>,
    pub users: HashMap<String, StateRecord>,
    pub subscriptions: HashMap<String, StateRecord>,
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
    pub positions: HashMap<InstrumentKey, Position>,
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

    pub(crate) fn position(&self, key: &InstrumentKey) -> i64 {
        self.positions.get(key).map_or(0, |p| p.quantity)
    }

    pub(crate) fn open_positions(&self) -> u32 {
        u32::try_from(self.positions.values().filter(|p| p.quantity != 0).count()).unwrap_or(u32::MAX)
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
    pub subscriptions: HashMap<String, Subscription>,
    pub states: States,
    pub accounts: HashMap<String, Account>,
    pub books: HashMap<String, SubBook>,
    /// Sends per account in the last second (the exchange's threshold for unregistered algos).
    pub sends: HashMap<String, VecDeque<Instant>>,
    pub funds: HashMap<String, Cached<Decimal>>,
    pub margins: HashMap<MarginKey, Cached<Decimal>>,
    pub market: HashMap<Segment, Cached<bool>>,
    /// The last failed read of funds or margin, by account (cleared by a good read).
    pub read_errors: HashMap<String, String>,
    /// Consents whose hash was checked against exactly these inputs and version, by
    /// subscription: the check (JSON and SHA-256) is made again only when something changed.
    pub consents: HashMap<String, Checked>,
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
    /// Whether `sub` may trade under `version` ([`Subscription::may_trade`]), remembered.
    pub(crate) fn consented(&mut self, sub: &Subscription, version: u32) -> bool {
        let Some(c) = &sub.consent else { return false };
        if sub.state != crate::subscription::SubState::Active {
            return false;
        }
        if let Some(k) = self.consents.get(&sub.id)
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
            self.consents.insert(
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
}

impl Memory {
    /// Whether the account has a token that is not past its expiry.
    pub(crate) fn token_valid(&self, account: &str, now: DateTime<Utc>) -> bool {
        self.accounts
            .get(account)
            .is_some_and(|a| a.has_token && a.expires_at.is_none_or(|e| e > now))
    }

    /// Sends of `account` within the last second.
    pub(crate) fn sends_last_second(&mut self, account: &str) -> u32 {
        let Some(q) = self.sends.get_mut(account) else {
            return 0;
        };
        while q.front().is_some_and(|t| t.elapsed() >= Duration::from_secs(1)) {
            q.pop_front();
        }
        u32::try_from(q.len()).unwrap_or(u32::MAX)
    }

    pub(crate) fn note_send(&mut self, account: &str) {
        self.sends
            .entry(account.to_owned())
            .or_default()
            .push_back(Instant::now());
    }
}
