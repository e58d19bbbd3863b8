//! The desk: what an operator or a user does to the engine's records, with or without an engine
//! running — register strategies, subscribe an account, activate (the consent), pause, resume,
//! stop, change inputs (which needs a new consent), set trading states (the kill switch's
//! record), read intents, and verify or export the audit trail. Every change is written with its
//! audit record in one transaction; a running engine picks it up before its next signal.

use chrono::{DateTime, Utc};
use stoxide_store::{EngineWrite, Store};
use stoxide_vault::Vault;

use crate::audit::{self, Entry, Tamper};
use crate::catalog::Strategy;
use crate::error::{Error, Result};
use crate::records::{self, Intent, StateReason, StateRecord};
use crate::risk::{Level, TradingState};
use crate::subscription::{Inputs, SubState, Subscription};

/// Who did something, and from where (recorded with consents and state changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub by: String,
    pub from: String,
}

impl Actor {
    /// The operator at this machine's command line.
    pub fn cli() -> Self {
        Self {
            by: std::env::var("USER").unwrap_or_else(|_| "operator".into()),
            from: "cli".into(),
        }
    }
}

/// What registering a strategy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// New in the store.
    New,
    /// Already there, exactly so.
    Unchanged,
    /// A new version: this many subscriptions went back to awaiting consent.
    NewVersion { reconsent: usize },
}

/// The desk over the vault's store.
#[derive(Debug, Clone)]
pub struct Desk {
    vault: Vault,
}

impl Desk {
    pub fn new(vault: Vault) -> Self {
        Self { vault }
    }

    fn store(&self) -> &Store {
        self.vault.store()
    }

    async fn write(&self, w: EngineWrite) -> Result<()> {
        self.store().write_engine(&[w], &records::chain).await?;
        Ok(())
    }

    /// Puts a strategy in the catalog. A changed definition must come with a higher version;
    /// subscribers of an older version must consent again before it trades for them.
    ///
    /// # Errors
    /// A changed definition under the same (or a lower) version; store errors.
    pub async fn register(&self, s: &Strategy, actor: &Actor) -> Result<Registered> {
        let now = Utc::now();
        let existing = self
            .store()
            .strategy(&s.id)
            .await?
            .map(|r| records::strategy_of(&r))
            .transpose()?;
        let outcome = match &existing {
            Some(old) if old == s => return Ok(Registered::Unchanged),
            Some(old) if s.version <= old.version => {
                return Err(Error::Invalid(format!(
                    "strategy {} changed but its version is {} (stored: {}): raise the version so subscribers consent again",
                    s.id, s.version, old.version
                )));
            }
            Some(_) => None,
            None => Some(Registered::New),
        };
        let mut subs = Vec::new();
        if existing.is_some() {
            for row in self.store().subscriptions_of_strategy(&s.id).await? {
                let mut sub = records::subscription_of(&row)?;
                let before = sub.state;
                sub.strategy_version_is(s.version);
                if sub.state != before {
                    subs.push(sub);
                }
            }
        }
        let mut write = EngineWrite {
            strategies: vec![records::strategy_row(s, now)],
            ..EngineWrite::default()
        };
        write.audit.push(records::draft(
            now,
            "strategy_registered",
            "",
            &serde_json::json!({"strategy": s, "by": actor.by, "from": actor.from}),
        ));
        for sub in &subs {
            write.subscriptions.push(records::subscription_row(sub, now));
            write.audit.push(records::draft(
                now,
                "consent_needed",
                &sub.account,
                &serde_json::json!({"subscription": sub.id, "strategy_version": s.version}),
            ));
        }
        self.write(write).await?;
        Ok(outcome.unwrap_or(Registered::NewVersion { reconsent: subs.len() }))
    }

    /// The catalog, by id.
    ///
    /// # Errors
    /// Store errors; a stored strategy that does not read back.
    pub async fn strategies(&self) -> Result<Vec<Strategy>> {
        let mut v: Vec<Strategy> = self
            .store()
            .strategies()
            .await?
            .iter()
            .map(records::strategy_of)
            .collect::<Result<_>>()?;
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }

    /// One strategy.
    ///
    /// # Errors
    /// [`Error::UnknownStrategy`]; store errors.
    pub async fn strategy(&self, id: &str) -> Result<Strategy> {
        let row = self
            .store()
            .strategy(id)
            .await?
            .ok_or_else(|| Error::UnknownStrategy(id.to_owned()))?;
        records::strategy_of(&row)
    }

    /// A new subscription of `account` to `strategy` with these inputs, awaiting consent.
    ///
    /// # Errors
    /// An unknown strategy or account, inputs outside the strategy's bounds, an id in use.
    pub async fn subscribe(
        &self,
        id: Option<&str>,
        account: &str,
        strategy: &str,
        inputs: Inputs,
        actor: &Actor,
    ) -> Result<Subscription> {
        let s = self.strategy(strategy).await?;
        s.check_inputs(&inputs).map_err(Error::Inputs)?;
        if self.vault.account(account).await?.is_none() {
            return Err(Error::UnknownAccount(account.to_owned()));
        }
        let id = id.map_or_else(|| format!("{strategy}:{account}"), ToOwned::to_owned);
        if self.store().subscription(&id).await?.is_some() {
            return Err(Error::Invalid(format!(
                "subscription {id} already exists: change its inputs (`stoxide subscription set`) or stop it first"
            )));
        }
        let sub = Subscription::new(id, account, strategy, inputs);
        self.save(
            &sub,
            "subscribed",
            actor,
            serde_json::json!({"strategy": strategy, "inputs": sub.inputs}),
        )
        .await?;
        Ok(sub)
    }

    async fn save(&self, sub: &Subscription, kind: &str, actor: &Actor, body: serde_json::Value) -> Result<()> {
        let now = Utc::now();
        let mut body = body;
        if let Some(o) = body.as_object_mut() {
            o.insert("subscription".into(), sub.id.clone().into());
            o.insert("state".into(), serde_json::to_value(sub.state).unwrap_or_default());
            o.insert("by".into(), actor.by.clone().into());
            o.insert("from".into(), actor.from.clone().into());
        }
        self.write(EngineWrite {
            subscriptions: vec![records::subscription_row(sub, now)],
            audit: vec![records::draft(now, kind, &sub.account, &body)],
            ..EngineWrite::default()
        })
        .await
    }

    /// One subscription.
    ///
    /// # Errors
    /// [`Error::UnknownSubscription`]; store errors.
    pub async fn subscription(&self, id: &str) -> Result<Subscription> {
        let row = self
            .store()
            .subscription(id)
            .await?
            .ok_or_else(|| Error::UnknownSubscription(id.to_owned()))?;
        records::subscription_of(&row)
    }

    /// Every subscription (of one account, when given), by id.
    ///
    /// # Errors
    /// Store errors.
    pub async fn subscriptions(&self, account: Option<&str>) -> Result<Vec<Subscription>> {
        let rows = match account {
            Some(a) => self.store().subscriptions_of_account(a).await?,
            None => self.store().subscriptions().await?,
        };
        let mut v: Vec<Subscription> = rows.iter().map(records::subscription_of).collect::<Result<_>>()?;
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }

    /// The user's consent: these exact inputs, this strategy version, recorded with who, when and
    /// from where.
    ///
    /// # Errors
    /// A stopped subscription or one whose account needs a login; unknown ids.
    pub async fn activate(&self, id: &str, actor: &Actor) -> Result<Subscription> {
        let mut sub = self.subscription(id).await?;
        let strategy = self.strategy(&sub.strategy).await?;
        let consent = sub.activate(strategy.version, &actor.by, Utc::now(), &actor.from)?;
        self.save(
            &sub,
            "consent",
            actor,
            serde_json::json!({"consent": consent, "inputs": sub.inputs, "strategy_version": strategy.version}),
        )
        .await?;
        Ok(sub)
    }

    /// Holds a subscription before its next signal.
    ///
    /// # Errors
    /// A stopped subscription; unknown ids.
    pub async fn pause(&self, id: &str, actor: &Actor) -> Result<Subscription> {
        let mut sub = self.subscription(id).await?;
        sub.pause()?;
        self.save(&sub, "paused", actor, serde_json::json!({})).await?;
        Ok(sub)
    }

    /// Resumes a paused subscription under its consent.
    ///
    /// # Errors
    /// A stopped subscription or one never consented to; unknown ids.
    pub async fn resume(&self, id: &str, actor: &Actor) -> Result<Subscription> {
        let mut sub = self.subscription(id).await?;
        sub.resume()?;
        self.save(&sub, "resumed", actor, serde_json::json!({})).await?;
        Ok(sub)
    }

    /// Ends a subscription for good (its positions stay; exit them with a kill switch).
    ///
    /// # Errors
    /// Unknown ids; store errors.
    pub async fn stop(&self, id: &str, actor: &Actor) -> Result<Subscription> {
        let mut sub = self.subscription(id).await?;
        sub.stop();
        self.save(&sub, "stopped", actor, serde_json::json!({})).await?;
        Ok(sub)
    }

    /// New inputs; changed ones put the subscription back to awaiting consent.
    ///
    /// # Errors
    /// Inputs outside the bounds; a stopped subscription; unknown ids.
    pub async fn change_inputs(&self, id: &str, inputs: Inputs, actor: &Actor) -> Result<Subscription> {
        let mut sub = self.subscription(id).await?;
        let strategy = self.strategy(&sub.strategy).await?;
        strategy.check_inputs(&inputs).map_err(Error::Inputs)?;
        if sub.change_inputs(inputs)? {
            self.save(
                &sub,
                "inputs_changed",
                actor,
                serde_json::json!({"inputs": sub.inputs, "needs_consent": sub.state == SubState::AwaitingConsent}),
            )
            .await?;
        }
        Ok(sub)
    }

    /// Records a trading state (halted, reducing, or active again) at a level. A running
    /// engine refuses new orders under it before its next send; `Engine::kill` also cancels
    /// open orders and exits positions.
    ///
    /// # Errors
    /// An unknown user or subscription; store errors.
    pub async fn set_state(
        &self,
        level: Level,
        target: &str,
        state: TradingState,
        note: Option<String>,
        actor: &Actor,
    ) -> Result<StateRecord> {
        let target = match level {
            Level::Global => String::new(),
            Level::User => {
                if self.vault.account(target).await?.is_none() {
                    return Err(Error::UnknownAccount(target.to_owned()));
                }
                target.to_owned()
            }
            Level::Subscription => self.subscription(target).await?.id,
        };
        let record = state_record(level, target, state, note, actor, Utc::now());
        let user = if level == Level::User {
            record.target.clone()
        } else {
            String::new()
        };
        self.write(EngineWrite {
            trading_states: vec![records::state_row(&record)],
            audit: vec![records::draft(record.updated_at, "trading_state", &user, &record)],
            ..EngineWrite::default()
        })
        .await?;
        Ok(record)
    }

    /// The trading states set now.
    ///
    /// # Errors
    /// Store errors; records that do not read back.
    pub async fn states(&self) -> Result<Vec<StateRecord>> {
        self.store()
            .trading_states()
            .await?
            .iter()
            .map(records::state_of)
            .collect()
    }

    /// The intents of a signal (strategy, signal id), an account, or the latest ones.
    ///
    /// # Errors
    /// Store errors; records that do not read back.
    pub async fn intents(
        &self,
        signal: Option<(&str, &str)>,
        account: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Intent>> {
        self.store()
            .intents(signal, account, i64::from(limit))
            .await?
            .iter()
            .map(records::intent_of)
            .collect()
    }

    /// Checks the whole audit chain against its stored head: the number of records, or where it
    /// was tampered with.
    ///
    /// # Errors
    /// Store errors.
    pub async fn verify_audit(&self) -> Result<std::result::Result<u64, Tamper>> {
        let rows = self.store().audit_log().await?;
        let head = self.store().audit_head().await?.map(|h| audit::Head {
            seq: u64::try_from(h.seq).unwrap_or(0),
            hash: h.hash,
        });
        let entries: Vec<Entry> = rows.iter().map(records::entry_of).collect();
        Ok(audit::verify(&entries, head.as_ref()))
    }

    /// The audit records (of one user, when given) between two times.
    ///
    /// # Errors
    /// Store errors.
    pub async fn audit(&self, user: Option<&str>, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Entry>> {
        let rows = match user {
            Some(u) => {
                self.store()
                    .audit_of_user(u, records::ms(from), records::ms(to))
                    .await?
            }
            None => self
                .store()
                .audit_log()
                .await?
                .into_iter()
                .filter(|r| r.at_ms >= records::ms(from) && r.at_ms <= records::ms(to))
                .collect(),
        };
        Ok(rows.iter().map(records::entry_of).collect())
    }
}

pub(crate) fn state_record(
    level: Level,
    target: String,
    state: TradingState,
    note: Option<String>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> StateRecord {
    StateRecord {
        level,
        target,
        state,
        reason: Some(StateReason::Operator {
            by: actor.by.clone(),
            note,
        }),
        updated_at: now,
    }
}
