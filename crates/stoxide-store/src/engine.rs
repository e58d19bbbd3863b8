//! The execution engine's tables: strategies, subscriptions, signals, intents, positions,
//! trading states and the audit trail. JSON columns hold the engine's own types (the store does
//! not interpret them); money is decimal text.

use sqlx::FromRow;

use crate::error::Result;
use crate::{Store, with_pool};

mod write;
pub use write::{AuditDraft, Chain, EngineWrite, IntentUpdate, StateChange, WriteOutcome};

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StrategyRow {
    pub id: String,
    pub version: i64,
    /// The strategy's definition, JSON.
    pub definition: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SubscriptionRow {
    pub id: String,
    pub account: String,
    pub strategy: String,
    /// JSON.
    pub inputs: String,
    pub state: String,
    /// JSON, when consented.
    pub consent: Option<String>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SignalRow {
    pub strategy: String,
    pub id: String,
    pub body: String,
    /// 1 accepted, 0 refused.
    pub accepted: i64,
    pub reason: Option<String>,
    pub received_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct IntentRow {
    /// The deterministic tag its order carries.
    pub tag: String,
    pub strategy: String,
    pub signal_id: String,
    pub subscription: String,
    pub account: String,
    /// JSON of the order plan, when there is one.
    pub plan: Option<String>,
    pub state: String,
    pub reason: Option<String>,
    /// JSON array of Upstox order ids.
    pub order_ids: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Units its orders filled, applied to the position in the same transaction.
    pub filled: i64,
    /// Their average fill price (decimal text).
    pub average_price: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PositionRow {
    pub subscription: String,
    pub instrument: String,
    pub quantity: i64,
    pub avg_price: String,
    pub realised: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct TradingStateRow {
    /// `global`, `user` or `subscription`.
    pub level: String,
    /// The user or subscription id (`*` for global).
    pub target: String,
    pub state: String,
    pub reason: Option<String>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    pub user_id: String,
    pub body: String,
    pub prev: String,
    pub hash: String,
}

/// The audit chain's end.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

/// Intent states that are over; the rest are reconciled after a restart.
pub const TERMINAL_INTENT_STATES: [&str; 6] = [
    "filled",
    "partially_filled",
    "rejected",
    "cancelled",
    "skipped",
    "refused",
];

const UNFINISHED: &str = "SELECT * FROM intents WHERE state NOT IN ('filled', 'partially_filled', 'rejected', 'cancelled', 'skipped', 'refused') ORDER BY created_at, tag";

impl Store {
    /// Stores (or replaces) a strategy's definition.
    ///
    /// # Errors
    /// Database errors.
    pub async fn put_strategy(&self, s: &StrategyRow) -> Result<()> {
        self.write_one(EngineWrite {
            strategies: vec![s.clone()],
            ..EngineWrite::default()
        })
        .await
        .map(drop)
    }

    /// # Errors
    /// Database errors.
    pub async fn strategy(&self, id: &str) -> Result<Option<StrategyRow>> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM strategies WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await?),
        )
    }

    /// # Errors
    /// Database errors.
    pub async fn strategies(&self) -> Result<Vec<StrategyRow>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM strategies ORDER BY id").fetch_all(p).await?))
    }

    /// Stores (or replaces) a subscription.
    ///
    /// # Errors
    /// Database errors.
    pub async fn put_subscription(&self, s: &SubscriptionRow) -> Result<()> {
        self.write_one(EngineWrite {
            subscriptions: vec![s.clone()],
            ..EngineWrite::default()
        })
        .await
        .map(drop)
    }

    /// # Errors
    /// Database errors.
    pub async fn subscription(&self, id: &str) -> Result<Option<SubscriptionRow>> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM subscriptions WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await?),
        )
    }

    /// A strategy's subscriptions, by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn subscriptions_of_strategy(&self, strategy: &str) -> Result<Vec<SubscriptionRow>> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM subscriptions WHERE strategy = $1 ORDER BY id")
            .bind(strategy)
            .fetch_all(p)
            .await?),
        )
    }

    /// An account's subscriptions, by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn subscriptions_of_account(&self, account: &str) -> Result<Vec<SubscriptionRow>> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM subscriptions WHERE account = $1 ORDER BY id")
            .bind(account)
            .fetch_all(p)
            .await?),
        )
    }

    /// Records a signal; false when (strategy, id) was already recorded (a duplicate).
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert_signal(&self, s: &SignalRow) -> Result<bool> {
        let out = self
            .write_one(EngineWrite {
                signal: Some(s.clone()),
                ..EngineWrite::default()
            })
            .await?;
        Ok(out.applied)
    }

    /// # Errors
    /// Database errors.
    pub async fn signal(&self, strategy: &str, id: &str) -> Result<Option<SignalRow>> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM signals WHERE strategy = $1 AND id = $2")
            .bind(strategy)
            .bind(id)
            .fetch_optional(p)
            .await?),
        )
    }

    /// The latest signals received (accepted or refused), newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn recent_signals(&self, limit: i64) -> Result<Vec<SignalRow>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_as(
            "SELECT * FROM signals ORDER BY received_at DESC, strategy, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(p)
        .await?))
    }

    /// The signals accepted since `since_ms`, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn accepted_signals_since(&self, since_ms: i64) -> Result<Vec<SignalRow>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_as(
            "SELECT * FROM signals WHERE accepted = 1 AND received_at >= $1 ORDER BY received_at, strategy, id",
        )
        .bind(since_ms)
        .fetch_all(p)
        .await?))
    }

    /// Writes an intent before its order is sent; false when its tag exists (the same signal
    /// for the same subscription is one intent).
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert_intent(&self, i: &IntentRow) -> Result<bool> {
        let out = self
            .write_one(EngineWrite {
                intents: vec![i.clone()],
                ..EngineWrite::default()
            })
            .await?;
        Ok(!out.new_intents.is_empty())
    }

    /// Moves an intent to a new outcome; false when there is no such intent.
    ///
    /// # Errors
    /// Database errors.
    pub async fn update_intent(&self, u: &IntentUpdate) -> Result<bool> {
        let out = self
            .write_one(EngineWrite {
                intent_updates: vec![u.clone()],
                ..EngineWrite::default()
            })
            .await?;
        Ok(out.updated_intents > 0)
    }

    /// # Errors
    /// Database errors.
    pub async fn intent(&self, tag: &str) -> Result<Option<IntentRow>> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM intents WHERE tag = $1")
            .bind(tag)
            .fetch_optional(p)
            .await?),
        )
    }

    /// A signal's intents, by subscription and tag.
    ///
    /// # Errors
    /// Database errors.
    pub async fn intents_of_signal(&self, strategy: &str, signal_id: &str) -> Result<Vec<IntentRow>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_as(
            "SELECT * FROM intents WHERE strategy = $1 AND signal_id = $2 ORDER BY subscription, tag",
        )
        .bind(strategy)
        .bind(signal_id)
        .fetch_all(p)
        .await?))
    }

    /// The subscriptions that have an intent of a signal (a column, not whole rows: a node asks
    /// before each signal it takes).
    ///
    /// # Errors
    /// Database errors.
    pub async fn subscriptions_with_intent(&self, strategy: &str, signal_id: &str) -> Result<Vec<String>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_scalar(
            "SELECT subscription FROM intents WHERE strategy = $1 AND signal_id = $2",
        )
        .bind(strategy)
        .bind(signal_id)
        .fetch_all(p)
        .await?))
    }

    /// Which of `tags` are the tags of recorded intents.
    ///
    /// # Errors
    /// Database errors.
    pub async fn existing_tags(&self, tags: &[String]) -> Result<std::collections::HashSet<String>> {
        let mut out = std::collections::HashSet::new();
        // Well under SQLite's limit of bound values per statement.
        for chunk in tags.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            // Only numbered placeholders go into the text; the tags are bound.
            let sql = format!("SELECT tag FROM intents WHERE tag IN ({})", marks.join(","));
            let found: Vec<String> = with_pool!(&self.pool, p => {
                let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()));
                for t in chunk {
                    q = q.bind(t);
                }
                q.fetch_all(p).await?
            });
            out.extend(found);
        }
        Ok(out)
    }

    /// Intents not in a terminal state: what a restart reconciles.
    ///
    /// # Errors
    /// Database errors.
    pub async fn unfinished_intents(&self) -> Result<Vec<IntentRow>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_as(UNFINISHED).fetch_all(p).await?))
    }

    /// Stores a subscription's position in one instrument.
    ///
    /// # Errors
    /// Database errors.
    pub async fn put_position(&self, r: &PositionRow) -> Result<()> {
        self.write_one(EngineWrite {
            positions: vec![r.clone()],
            ..EngineWrite::default()
        })
        .await
        .map(drop)
    }

    /// # Errors
    /// Database errors.
    pub async fn position(&self, subscription: &str, instrument: &str) -> Result<Option<PositionRow>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_as(
            "SELECT * FROM positions WHERE subscription = $1 AND instrument = $2",
        )
        .bind(subscription)
        .bind(instrument)
        .fetch_optional(p)
        .await?))
    }

    /// Every subscription, by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionRow>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM subscriptions ORDER BY id").fetch_all(p).await?))
    }

    /// Every position.
    ///
    /// # Errors
    /// Database errors.
    pub async fn positions(&self) -> Result<Vec<PositionRow>> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM positions ORDER BY subscription, instrument")
            .fetch_all(p)
            .await?),
        )
    }

    /// Per subscription, how many intents since `since_ms` went to the broker (any state but
    /// skipped or refused): the orders of the day.
    ///
    /// # Errors
    /// Database errors.
    pub async fn orders_since(&self, since_ms: i64) -> Result<Vec<(String, i64)>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_as(
            "SELECT subscription, COUNT(*) FROM intents WHERE created_at >= $1 AND state NOT IN ('skipped', 'refused')
             GROUP BY subscription",
        )
        .bind(since_ms)
        .fetch_all(p)
        .await?))
    }

    /// Intents, newest first, optionally of one signal or one account, at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn intents(
        &self,
        signal: Option<(&str, &str)>,
        account: Option<&str>,
        limit: i64,
    ) -> Result<Vec<IntentRow>> {
        let (strategy, signal_id) = signal.unwrap_or(("", ""));
        Ok(with_pool!(&self.pool, p => sqlx::query_as(
            "SELECT * FROM intents WHERE ($1 = '' OR (strategy = $1 AND signal_id = $2)) AND ($3 = '' OR account = $3)
             ORDER BY created_at DESC, tag LIMIT $4",
        )
        .bind(strategy)
        .bind(signal_id)
        .bind(account.unwrap_or(""))
        .bind(limit)
        .fetch_all(p)
        .await?))
    }

    /// A subscription's positions, by instrument.
    ///
    /// # Errors
    /// Database errors.
    pub async fn positions_of(&self, subscription: &str) -> Result<Vec<PositionRow>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_as(
            "SELECT * FROM positions WHERE subscription = $1 ORDER BY instrument",
        )
        .bind(subscription)
        .fetch_all(p)
        .await?))
    }

    /// Sets a trading state (or kill switch) at a level.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_trading_state(&self, r: &TradingStateRow) -> Result<()> {
        self.write_one(EngineWrite {
            trading_states: vec![r.clone()],
            ..EngineWrite::default()
        })
        .await
        .map(drop)
    }

    /// Every trading state set.
    ///
    /// # Errors
    /// Database errors.
    pub async fn trading_states(&self) -> Result<Vec<TradingStateRow>> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM trading_states ORDER BY level, target")
            .fetch_all(p)
            .await?),
        )
    }

    /// Appends one audit record: `make` gets the chain's head (none before the first record) and
    /// answers the record that follows it. Appends are serialised (SQLite's write lock; a
    /// PostgreSQL advisory lock), so the chain has no forks or gaps.
    ///
    /// # Errors
    /// Database errors.
    pub async fn append_audit(&self, make: impl Fn(Option<AuditHead>) -> AuditRow + Sync) -> Result<AuditRow> {
        let draft = AuditDraft {
            at_ms: 0,
            kind: String::new(),
            user_id: String::new(),
            body: String::new(),
        };
        let chain = |head: Option<&AuditHead>, _: &AuditDraft| make(head.cloned());
        let mut out = self.write_engine(&[EngineWrite::audit(vec![draft])], &chain).await?;
        // One write with one draft appends exactly one record.
        Ok(out.pop().and_then(|mut o| o.audit.pop()).unwrap_or_default())
    }

    /// One write without audit records.
    async fn write_one(&self, w: EngineWrite) -> Result<WriteOutcome> {
        debug_assert!(w.audit.is_empty(), "audit records need a chain");
        let no_chain = |_: Option<&AuditHead>, _: &AuditDraft| AuditRow::default();
        let mut out = self.write_engine(std::slice::from_ref(&w), &no_chain).await?;
        Ok(out.pop().unwrap_or_default())
    }

    /// The audit chain's head.
    ///
    /// # Errors
    /// Database errors.
    pub async fn audit_head(&self) -> Result<Option<AuditHead>> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(p)
            .await?),
        )
    }

    /// The whole audit log, in storage order (by sequence).
    ///
    /// # Errors
    /// Database errors.
    pub async fn audit_log(&self) -> Result<Vec<AuditRow>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM audit_log ORDER BY seq").fetch_all(p).await?))
    }

    /// One user's audit records between two times (epoch ms, inclusive start, exclusive end).
    ///
    /// # Errors
    /// Database errors.
    pub async fn audit_of_user(&self, user: &str, from_ms: i64, to_ms: i64) -> Result<Vec<AuditRow>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_as(
            "SELECT * FROM audit_log WHERE user_id = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY seq",
        )
        .bind(user)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(p)
        .await?))
    }
}
