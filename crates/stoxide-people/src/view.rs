//! What a signed-in person may see: a [`Viewer`] answers every read through the person's scope.
//! A client sees only the accounts they own (`person_accounts`) and what hangs off them —
//! subscriptions, orders (the engine's intents), positions, audit records; anything else is
//! `None`, exactly as if it did not exist, so identifiers cannot be probed. An operator sees
//! everything.

use std::collections::BTreeSet;

use serde::Serialize;
use stoxide_store::{AccountRow, AuditRow, IntentRow, PositionRow, Store, SubscriptionRow};

use crate::{Error, People, Person, Result, Role};

/// A linked Upstox account, without its tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountView {
    pub id: String,
    pub user_name: Option<String>,
    /// `valid`, `expired` or `missing` (never linked, or logged out).
    pub token: &'static str,
    /// Epoch ms when today's token dies, when there is one.
    pub token_expires_at: Option<i64>,
}

/// An account's token at `now` (epoch ms): `valid`, `expired` or `missing`.
pub fn token_state(row: Option<&AccountRow>, now: i64) -> &'static str {
    match row {
        Some(r) if r.access_token.is_some() && r.expires_at.is_none_or(|e| e > now) => "valid",
        Some(r) if r.access_token.is_some() => "expired",
        _ => "missing",
    }
}

impl AccountView {
    fn of(id: &str, row: Option<&AccountRow>, now: i64) -> Self {
        Self {
            id: id.to_owned(),
            user_name: row.and_then(|r| r.user_name.clone()),
            token: token_state(row, now),
            token_expires_at: row.and_then(|r| r.access_token.as_ref().and(r.expires_at)),
        }
    }
}

/// A subscription: a strategy run in one account with the client's inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriptionView {
    pub id: String,
    pub account: String,
    pub strategy: String,
    pub inputs: serde_json::Value,
    pub state: String,
    pub consented: bool,
    pub updated_at: i64,
}

impl From<SubscriptionRow> for SubscriptionView {
    fn from(r: SubscriptionRow) -> Self {
        Self {
            inputs: serde_json::from_str(&r.inputs).unwrap_or(serde_json::Value::Null),
            consented: r.consent.is_some(),
            id: r.id,
            account: r.account,
            strategy: r.strategy,
            state: r.state,
            updated_at: r.updated_at,
        }
    }
}

/// One order the engine decided for a signal in one account (its intent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderView {
    /// The tag its Upstox orders carry; the order's id here.
    pub tag: String,
    pub strategy: String,
    pub signal_id: String,
    pub subscription: String,
    pub account: String,
    pub state: String,
    /// Why it was skipped, refused or rejected (Upstox's words for a rejection).
    pub reason: Option<String>,
    pub order_ids: Vec<String>,
    pub plan: Option<serde_json::Value>,
    pub filled: i64,
    pub average_price: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<IntentRow> for OrderView {
    fn from(r: IntentRow) -> Self {
        Self {
            order_ids: serde_json::from_str(&r.order_ids).unwrap_or_default(),
            plan: r.plan.as_deref().and_then(|p| serde_json::from_str(p).ok()),
            tag: r.tag,
            strategy: r.strategy,
            signal_id: r.signal_id,
            subscription: r.subscription,
            account: r.account,
            state: r.state,
            reason: r.reason,
            filled: r.filled,
            average_price: r.average_price,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A subscription's position in one instrument (decimal text for money).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PositionView {
    pub instrument: String,
    pub quantity: i64,
    pub avg_price: String,
    pub realised: String,
    pub updated_at: i64,
}

impl From<PositionRow> for PositionView {
    fn from(r: PositionRow) -> Self {
        Self {
            instrument: r.instrument,
            quantity: r.quantity,
            avg_price: r.avg_price,
            realised: r.realised,
            updated_at: r.updated_at,
        }
    }
}

/// One audit record of an account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditView {
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    pub account: String,
    pub body: serde_json::Value,
    pub hash: String,
}

impl From<AuditRow> for AuditView {
    fn from(r: AuditRow) -> Self {
        Self {
            body: serde_json::from_str(&r.body).unwrap_or(serde_json::Value::String(r.body)),
            seq: r.seq,
            at_ms: r.at_ms,
            kind: r.kind,
            account: r.user_id,
            hash: r.hash,
        }
    }
}

/// The most orders one listing answers.
pub const MAX_ORDERS: i64 = 500;

/// A signed-in person's window on the records.
#[derive(Debug, Clone)]
pub struct Viewer {
    store: Store,
    person: Person,
    /// The accounts a client owns; `None` for an operator (all of them).
    own: Option<BTreeSet<String>>,
    operator_two_factor: bool,
}

impl People {
    /// The window of `person` (read once: an account linked later needs a new viewer).
    ///
    /// # Errors
    /// A disabled person; store errors.
    pub async fn viewer(&self, person: Person) -> Result<Viewer> {
        if person.disabled {
            return Err(Error::Disabled);
        }
        let own = match person.role {
            Role::Operator => None,
            Role::Client => Some(self.accounts_of(&person).await?.into_iter().collect()),
        };
        Ok(Viewer {
            store: self.store.clone(),
            person,
            own,
            operator_two_factor: self.operator_two_factor,
        })
    }
}

impl Viewer {
    pub fn person(&self) -> &Person {
        &self.person
    }

    /// Whether `account` is in scope.
    pub fn sees(&self, account: &str) -> bool {
        self.own.as_ref().is_none_or(|own| own.contains(account))
    }

    /// Refuses anyone but an operator — and an operator without two-factor sign-in, when that
    /// is required.
    ///
    /// # Errors
    /// [`Error::NotOperator`], [`Error::TwoFactorNeeded`].
    pub fn operator(&self) -> Result<&Person> {
        if self.person.role != Role::Operator {
            Err(Error::NotOperator)
        } else if self.operator_two_factor && !self.person.two_factor {
            Err(Error::TwoFactorNeeded)
        } else {
            Ok(&self.person)
        }
    }

    /// The accounts in scope, by id.
    ///
    /// # Errors
    /// Store errors.
    pub async fn accounts(&self, now: i64) -> Result<Vec<AccountView>> {
        let rows = self.store.accounts().await?;
        Ok(match &self.own {
            None => rows.iter().map(|r| AccountView::of(&r.id, Some(r), now)).collect(),
            Some(own) => own
                .iter()
                .map(|id| AccountView::of(id, rows.iter().find(|r| &r.id == id), now))
                .collect(),
        })
    }

    /// One account in scope.
    ///
    /// # Errors
    /// Store errors.
    pub async fn account(&self, id: &str, now: i64) -> Result<Option<AccountView>> {
        if !self.sees(id) {
            return Ok(None);
        }
        let row = self.store.account(id).await?;
        if row.is_none() && self.own.is_none() {
            return Ok(None);
        }
        Ok(Some(AccountView::of(id, row.as_ref(), now)))
    }

    /// The subscriptions in scope, by account then id.
    ///
    /// # Errors
    /// Store errors.
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionView>> {
        let rows = match &self.own {
            None => self.store.subscriptions().await?,
            Some(own) => {
                let mut all = Vec::new();
                for a in own {
                    all.extend(self.store.subscriptions_of_account(a).await?);
                }
                all
            }
        };
        Ok(rows.into_iter().map(SubscriptionView::from).collect())
    }

    /// One subscription in scope.
    ///
    /// # Errors
    /// Store errors.
    pub async fn subscription(&self, id: &str) -> Result<Option<SubscriptionView>> {
        Ok(self
            .store
            .subscription(id)
            .await?
            .filter(|s| self.sees(&s.account))
            .map(SubscriptionView::from))
    }

    /// A subscription's positions, when the subscription is in scope.
    ///
    /// # Errors
    /// Store errors.
    pub async fn positions(&self, subscription: &str) -> Result<Option<Vec<PositionView>>> {
        if self.subscription(subscription).await?.is_none() {
            return Ok(None);
        }
        let rows = self.store.positions_of(subscription).await?;
        Ok(Some(rows.into_iter().map(PositionView::from).collect()))
    }

    /// Orders in scope, newest first, at most `limit` (capped at [`MAX_ORDERS`]), optionally of
    /// one account (an account out of scope answers `None`).
    ///
    /// # Errors
    /// Store errors.
    pub async fn orders(&self, account: Option<&str>, limit: i64) -> Result<Option<Vec<OrderView>>> {
        let limit = limit.clamp(1, MAX_ORDERS);
        if let Some(a) = account
            && !self.sees(a)
        {
            return Ok(None);
        }
        let rows = match (&self.own, account) {
            (_, Some(a)) => self.store.intents(None, Some(a), limit).await?,
            (None, None) => self.store.intents(None, None, limit).await?,
            (Some(own), None) => {
                let mut all = Vec::new();
                for a in own {
                    all.extend(self.store.intents(None, Some(a), limit).await?);
                }
                all.sort_by(|x, y| y.created_at.cmp(&x.created_at).then_with(|| x.tag.cmp(&y.tag)));
                all.truncate(usize::try_from(limit).unwrap_or(0));
                all
            }
        };
        Ok(Some(rows.into_iter().map(OrderView::from).collect()))
    }

    /// One order (by its tag) in scope.
    ///
    /// # Errors
    /// Store errors.
    pub async fn order(&self, tag: &str) -> Result<Option<OrderView>> {
        Ok(self
            .store
            .intent(tag)
            .await?
            .filter(|i| self.sees(&i.account))
            .map(OrderView::from))
    }

    /// An account's audit records between two times (epoch ms), when it is in scope.
    ///
    /// # Errors
    /// Store errors.
    pub async fn audit(&self, account: &str, from_ms: i64, to_ms: i64) -> Result<Option<Vec<AuditView>>> {
        if !self.sees(account) {
            return Ok(None);
        }
        let rows = self.store.audit_of_user(account, from_ms, to_ms).await?;
        Ok(Some(rows.into_iter().map(AuditView::from).collect()))
    }
}
