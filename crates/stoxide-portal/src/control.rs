//! The operator's control room: the signal monitor (each signal and its fan-out, per client),
//! the global kill switch, "verify the audit chain", and the compliance export (per client, per
//! IST day, CSV). The export is also open to the client whose account it is.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::NaiveDate;
use serde::Serialize;
use stoxide_engine::risk::{Level, TradingState};
use stoxide_people::{OrderView, Viewer};

use crate::{Error, Portal, Result, actor};

/// One signal and what became of it in every subscribed account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalFanout {
    pub strategy: String,
    pub id: String,
    pub received_at: i64,
    pub accepted: bool,
    /// Why it was refused, when it was.
    pub reason: Option<String>,
    /// How many accounts' orders are in each state (`filled`, `rejected`, `skipped`, …).
    pub states: BTreeMap<String, usize>,
    /// Per account: sized, skipped (why), sent, filled, rejected (Upstox's words), with times.
    pub orders: Vec<OrderView>,
}

/// The most signals the monitor lists.
pub const MAX_SIGNALS: i64 = 200;

/// What verifying the audit chain found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditCheck {
    pub intact: bool,
    /// Records checked, when intact.
    pub records: u64,
    /// What is wrong, when not.
    pub problem: Option<String>,
}

/// One client as the operator's control room sees them: their accounts' link and token state,
/// and how today went for each (orders by state, Upstox's 429s, subscriptions waiting for a
/// login).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientHealth {
    pub person: stoxide_people::Person,
    pub accounts: Vec<AccountHealth>,
}

/// One linked account's day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountHealth {
    pub account: String,
    /// `valid`, `expired` or `missing`.
    pub token: &'static str,
    /// When today's token ends (epoch ms), while it is valid.
    pub token_expires_at: Option<i64>,
    /// Today's orders (IST day) by state: `filled`, `rejected`, `skipped`, …
    pub orders_today: BTreeMap<String, usize>,
    /// Today's 429s from Upstox (each answered by that user's lane backing off).
    pub rate_limited_today: usize,
    /// Subscriptions held until the client logs in to Upstox again.
    pub needs_login: usize,
}

/// The most of today's orders counted per account.
const ORDERS_COUNTED: i64 = 500;

impl Portal {
    /// Every client with their accounts' health today (operator).
    ///
    /// # Errors
    /// Not an operator; store errors.
    pub async fn client_health(&self, v: &Viewer, now: i64) -> Result<Vec<ClientHealth>> {
        v.operator()?;
        let day_start = chrono::DateTime::from_timestamp_millis(now)
            .map(|t| t.with_timezone(&upstox_types::IST).date_naive())
            .and_then(stoxide_engine::audit::ist_day)
            .map_or(now, |(start, _)| start.timestamp_millis());
        let tokens: BTreeMap<String, stoxide_people::AccountView> =
            v.accounts(now).await?.into_iter().map(|a| (a.id.clone(), a)).collect();
        let subscriptions = v.subscriptions().await?;
        let mut out = Vec::new();
        for person in self.people.list(Some(stoxide_people::Role::Client)).await? {
            let mut accounts = Vec::new();
            for account in self.people.accounts_of(&person).await? {
                let mut orders_today = BTreeMap::new();
                for o in v.orders(Some(&account), ORDERS_COUNTED).await?.unwrap_or_default() {
                    if o.created_at >= day_start {
                        *orders_today.entry(o.state).or_insert(0) += 1;
                    }
                }
                let rate_limited_today = v
                    .audit(&account, day_start, now + 1)
                    .await?
                    .unwrap_or_default()
                    .iter()
                    .filter(|r| r.kind == "rate_limited")
                    .count();
                let token = tokens.get(&account);
                accounts.push(AccountHealth {
                    token: token.map_or("missing", |t| t.token),
                    token_expires_at: token.and_then(|t| t.token_expires_at),
                    needs_login: subscriptions
                        .iter()
                        .filter(|s| s.account == account && s.state == "needs_login")
                        .count(),
                    account,
                    orders_today,
                    rate_limited_today,
                });
            }
            out.push(ClientHealth { person, accounts });
        }
        Ok(out)
    }

    /// The latest `limit` signals with their fan-out (operator).
    ///
    /// # Errors
    /// Not an operator; store errors.
    pub async fn signals(&self, v: &Viewer, limit: i64) -> Result<Vec<SignalFanout>> {
        v.operator()?;
        let store = self.vault.store();
        let mut out = Vec::new();
        let signals = store
            .recent_signals(limit.clamp(1, MAX_SIGNALS))
            .await
            .map_err(stoxide_engine::Error::from)?;
        for s in signals {
            let orders: Vec<OrderView> = store
                .intents_of_signal(&s.strategy, &s.id)
                .await
                .map_err(stoxide_engine::Error::from)?
                .into_iter()
                .map(OrderView::from)
                .collect();
            let mut states = BTreeMap::new();
            for o in &orders {
                *states.entry(o.state.clone()).or_insert(0) += 1;
            }
            out.push(SignalFanout {
                strategy: s.strategy,
                id: s.id,
                received_at: s.received_at,
                accepted: s.accepted != 0,
                reason: s.reason,
                states,
                orders,
            });
        }
        Ok(out)
    }

    /// The global kill switch (operator): `halt` stops every order of every client until it is
    /// let go.
    ///
    /// # Errors
    /// Not an operator; store errors.
    pub async fn global_kill(&self, v: &Viewer, halt: bool, from: IpAddr) -> Result<TradingState> {
        let op = v.operator()?;
        let state = if halt {
            TradingState::Halted
        } else {
            TradingState::Active
        };
        let note = Some(format!(
            "{} by operator {} in the portal",
            if halt {
                "global kill switch"
            } else {
                "global kill switch released"
            },
            op.email
        ));
        self.desk
            .set_state(Level::Global, "*", state, note, &actor(v, from))
            .await?;
        Ok(state)
    }

    /// Re-checks the whole audit chain (operator).
    ///
    /// # Errors
    /// Not an operator; store errors.
    pub async fn verify_audit(&self, v: &Viewer) -> Result<AuditCheck> {
        v.operator()?;
        Ok(match self.desk.verify_audit().await? {
            Ok(records) => AuditCheck {
                intact: true,
                records,
                problem: None,
            },
            Err(t) => AuditCheck {
                intact: false,
                records: 0,
                problem: Some(t.to_string()),
            },
        })
    }

    /// One account's audit records of one IST day as CSV — for an operator, or the client who
    /// owns the account.
    ///
    /// # Errors
    /// The account is not in scope ([`Error::NotFound`]); store errors.
    pub async fn compliance_csv(&self, v: &Viewer, account: &str, day: NaiveDate) -> Result<String> {
        if !v.sees(account) || self.vault.account(account).await?.is_none() {
            return Err(Error::NotFound("account"));
        }
        let (from, to) = stoxide_engine::audit::ist_day(day).ok_or(Error::NotFound("day"))?;
        let rows = self.desk.audit(Some(account), from, to).await?;
        Ok(stoxide_engine::audit::csv(&rows))
    }
}

/// What putting a strategy in the catalog did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Registered {
    New,
    Unchanged,
    /// A new version: this many subscriptions went back to awaiting consent.
    NewVersion {
        reconsent: usize,
    },
}

impl Portal {
    /// Puts a strategy in the catalog, or a new version of it — which puts every subscription
    /// of it back to awaiting consent (operator).
    ///
    /// # Errors
    /// Not an operator; a changed definition without a higher version; store errors.
    pub async fn register_strategy(
        &self,
        v: &Viewer,
        s: &stoxide_engine::catalog::Strategy,
        from: IpAddr,
    ) -> Result<Registered> {
        v.operator()?;
        if s.id.trim().is_empty() || s.algo_name.trim().is_empty() || s.instruments.is_empty() {
            return Err(Error::Invalid(
                "a strategy needs an id, the exchange-registered algo name and at least one instrument".into(),
            ));
        }
        Ok(match self.desk.register(s, &actor(v, from)).await? {
            stoxide_engine::desk::Registered::New => Registered::New,
            stoxide_engine::desk::Registered::Unchanged => Registered::Unchanged,
            stoxide_engine::desk::Registered::NewVersion { reconsent } => Registered::NewVersion { reconsent },
        })
    }

    /// A new signing secret for an external strategy's signals, sealed in the vault; the old one
    /// stops working at once. Answers it, to be shown once (operator).
    ///
    /// # Errors
    /// Not an operator; an unknown strategy; vault errors.
    pub async fn rotate_signing_secret(&self, v: &Viewer, strategy: &str) -> Result<secrecy::SecretString> {
        use rand::RngCore;
        v.operator()?;
        match self.desk.strategy(strategy).await {
            Err(stoxide_engine::Error::UnknownStrategy(_)) => return Err(Error::NotFound("strategy")),
            other => {
                other?;
            }
        }
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let secret = secrecy::SecretString::from(raw.iter().map(|b| format!("{b:02x}")).collect::<String>());
        self.vault.put_signing_secret(strategy, &secret).await?;
        tracing::info!(strategy, by = %v.person().id, "signing secret rotated");
        Ok(secret)
    }

    /// A strategy's kill switch (operator): every subscription of it halted, or let go.
    /// Answers the subscriptions set.
    ///
    /// # Errors
    /// Not an operator; an unknown strategy; store errors.
    pub async fn strategy_kill(&self, v: &Viewer, strategy: &str, halt: bool, from: IpAddr) -> Result<Vec<String>> {
        let op = v.operator()?;
        match self.desk.strategy(strategy).await {
            Err(stoxide_engine::Error::UnknownStrategy(_)) => return Err(Error::NotFound("strategy")),
            other => {
                other?;
            }
        }
        let state = if halt {
            TradingState::Halted
        } else {
            TradingState::Active
        };
        let note = Some(format!(
            "{} for strategy {strategy} by operator {}",
            if halt { "kill switch" } else { "kill switch released" },
            op.email
        ));
        let mut set = Vec::new();
        for s in self.desk.subscriptions(None).await? {
            if s.strategy == strategy {
                self.desk
                    .set_state(Level::Subscription, &s.id, state, note.clone(), &actor(v, from))
                    .await?;
                set.push(s.id);
            }
        }
        Ok(set)
    }
}
