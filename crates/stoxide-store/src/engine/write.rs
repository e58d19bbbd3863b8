//! Engine writes in one transaction: a signal with its intents and their audit records, an
//! intent's outcome with the position its fills moved, a consent with its record. Many writes
//! can share one transaction (group commit); each is all or nothing on its own terms (a write
//! whose signal is a duplicate applies nothing).

use super::{
    AuditHead, AuditRow, INSERT_INTENT, IntentRow, PositionRow, SignalRow, StrategyRow, SubscriptionRow,
    TradingStateRow, UPSERT_STRATEGY,
};
use crate::error::Result;
use crate::{Store, Tx, TxMode, with_tx};

/// A new outcome of an intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentUpdate {
    pub tag: String,
    pub state: String,
    pub reason: Option<String>,
    /// JSON array of Upstox order ids.
    pub order_ids: String,
    pub filled: i64,
    pub average_price: Option<String>,
    pub updated_at: i64,
}

/// An audit record to append; the chain's fields are filled in under the append lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDraft {
    pub at_ms: i64,
    pub kind: String,
    pub user_id: String,
    pub body: String,
}

/// A subscription's state moved from `from` to `to` — written only if the stored state is still
/// `from`, so a change someone else made meanwhile (new inputs put it back to awaiting consent, a
/// pause, a stop) is never overwritten by an older copy. Only the state is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub id: String,
    pub from: String,
    pub to: String,
    pub updated_at: i64,
}

/// One write of the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineWrite {
    /// Inserted first; when (strategy, id) exists already, nothing else of this write applies
    /// — unless `shared_signal`.
    pub signal: Option<SignalRow>,
    /// The signal is shared by engine nodes, each writing the intents of the accounts it holds:
    /// it is recorded by the first and the rest of each node's write applies either way (its
    /// intents still go in only where their tag is new).
    pub shared_signal: bool,
    /// Applied next; when the stored subscription is no longer as read, nothing else of this
    /// write applies.
    pub state_change: Option<StateChange>,
    /// Strategy definitions stored (or replaced).
    pub strategies: Vec<StrategyRow>,
    pub subscriptions: Vec<SubscriptionRow>,
    /// Inserted unless their tag exists.
    pub intents: Vec<IntentRow>,
    pub intent_updates: Vec<IntentUpdate>,
    pub positions: Vec<PositionRow>,
    pub trading_states: Vec<TradingStateRow>,
    pub audit: Vec<AuditDraft>,
}

impl EngineWrite {
    /// A write of audit records alone.
    pub fn audit(drafts: Vec<AuditDraft>) -> Self {
        Self {
            audit: drafts,
            ..Self::default()
        }
    }
}

/// What one write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// False when its signal was a duplicate or its state change found the subscription changed
    /// (nothing was applied).
    pub applied: bool,
    /// Tags of the intents it inserted (an existing tag is not inserted again).
    pub new_intents: Vec<String>,
    /// Intent updates that found their intent.
    pub updated_intents: usize,
    /// The audit records it appended, chained.
    pub audit: Vec<AuditRow>,
}

/// Makes the next audit record from the chain's head and a draft.
pub type Chain<'a> = &'a (dyn Fn(Option<&AuditHead>, &AuditDraft) -> AuditRow + Sync);

impl Store {
    /// Applies `writes` in one transaction under the audit append lock, in order; answers what
    /// each did.
    ///
    /// # Errors
    /// Database errors; nothing is applied then.
    pub async fn write_engine(&self, writes: &[EngineWrite], chain: Chain<'_>) -> Result<Vec<WriteOutcome>> {
        let mut tx = self.begin(TxMode::Append).await?;
        let mut head: Option<AuditHead> = with_tx!(&mut tx.inner, c => sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(c)
            .await?);
        let before = head.clone();
        let mut outcomes = Vec::with_capacity(writes.len());
        for w in writes {
            outcomes.push(apply(&mut tx, w, &mut head, chain).await?);
        }
        if head != before
            && let Some(h) = &head
        {
            with_tx!(&mut tx.inner, c => sqlx::query(
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            )
            .bind(h.seq)
            .bind(&h.hash)
            .execute(c)
            .await?
            .rows_affected());
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

async fn apply(tx: &mut Tx, w: &EngineWrite, head: &mut Option<AuditHead>, chain: Chain<'_>) -> Result<WriteOutcome> {
    let mut out = WriteOutcome::default();
    if let Some(s) = &w.signal {
        let n = with_tx!(&mut tx.inner, c => sqlx::query(
            "INSERT INTO signals (strategy, id, body, accepted, reason, received_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (strategy, id) DO NOTHING",
        )
        .bind(&s.strategy)
        .bind(&s.id)
        .bind(&s.body)
        .bind(s.accepted)
        .bind(&s.reason)
        .bind(s.received_at)
        .execute(c)
        .await?
        .rows_affected());
        if n == 0 && !w.shared_signal {
            return Ok(out);
        }
    }
    if let Some(c) = &w.state_change {
        let n = with_tx!(&mut tx.inner, c2 => sqlx::query(
            "UPDATE subscriptions SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4",
        )
        .bind(&c.to)
        .bind(c.updated_at)
        .bind(&c.id)
        .bind(&c.from)
        .execute(c2)
        .await?
        .rows_affected());
        if n == 0 {
            return Ok(out);
        }
    }
    out.applied = true;
    for s in &w.strategies {
        with_tx!(&mut tx.inner, c => sqlx::query(UPSERT_STRATEGY)
            .bind(&s.id)
            .bind(s.version)
            .bind(&s.definition)
            .bind(s.updated_at)
            .execute(c)
            .await?
            .rows_affected());
    }
    for s in &w.subscriptions {
        with_tx!(&mut tx.inner, c => sqlx::query(
            "INSERT INTO subscriptions (id, account, strategy, inputs, state, consent, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET account = excluded.account, strategy = excluded.strategy,
               inputs = excluded.inputs, state = excluded.state, consent = excluded.consent,
               updated_at = excluded.updated_at",
        )
        .bind(&s.id)
        .bind(&s.account)
        .bind(&s.strategy)
        .bind(&s.inputs)
        .bind(&s.state)
        .bind(&s.consent)
        .bind(s.updated_at)
        .execute(c)
        .await?
        .rows_affected());
    }
    for i in &w.intents {
        let n = with_tx!(&mut tx.inner, c => sqlx::query(INSERT_INTENT)
            .bind(&i.tag)
            .bind(&i.strategy)
            .bind(&i.signal_id)
            .bind(&i.subscription)
            .bind(&i.account)
            .bind(&i.plan)
            .bind(&i.state)
            .bind(&i.reason)
            .bind(&i.order_ids)
            .bind(i.created_at)
            .bind(i.updated_at)
            .bind(i.filled)
            .bind(&i.average_price)
            .execute(c)
            .await?
            .rows_affected());
        if n > 0 {
            out.new_intents.push(i.tag.clone());
        }
    }
    for u in &w.intent_updates {
        let n = with_tx!(&mut tx.inner, c => sqlx::query(
            "UPDATE intents SET state = $1, reason = $2, order_ids = $3, filled = $4, average_price = $5,
               updated_at = $6 WHERE tag = $7",
        )
        .bind(&u.state)
        .bind(&u.reason)
        .bind(&u.order_ids)
        .bind(u.filled)
        .bind(&u.average_price)
        .bind(u.updated_at)
        .bind(&u.tag)
        .execute(c)
        .await?
        .rows_affected());
        out.updated_intents += usize::from(n > 0);
    }
    for r in &w.positions {
        with_tx!(&mut tx.inner, c => sqlx::query(
            "INSERT INTO positions (subscription, instrument, quantity, avg_price, realised, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (subscription, instrument) DO UPDATE SET quantity = excluded.quantity,
               avg_price = excluded.avg_price, realised = excluded.realised, updated_at = excluded.updated_at",
        )
        .bind(&r.subscription)
        .bind(&r.instrument)
        .bind(r.quantity)
        .bind(&r.avg_price)
        .bind(&r.realised)
        .bind(r.updated_at)
        .execute(c)
        .await?
        .rows_affected());
    }
    for r in &w.trading_states {
        with_tx!(&mut tx.inner, c => sqlx::query(
            "INSERT INTO trading_states (level, target, state, reason, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (level, target) DO UPDATE SET state = excluded.state, reason = excluded.reason,
               updated_at = excluded.updated_at",
        )
        .bind(&r.level)
        .bind(&r.target)
        .bind(&r.state)
        .bind(&r.reason)
        .bind(r.updated_at)
        .execute(c)
        .await?
        .rows_affected());
    }
    for d in &w.audit {
        let row = chain(head.as_ref(), d);
        with_tx!(&mut tx.inner, c => sqlx::query(
            "INSERT INTO audit_log (seq, at_ms, kind, user_id, body, prev, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(row.seq)
        .bind(row.at_ms)
        .bind(&row.kind)
        .bind(&row.user_id)
        .bind(&row.body)
        .bind(&row.prev)
        .bind(&row.hash)
        .execute(c)
        .await?
        .rows_affected());
        *head = Some(AuditHead {
            seq: row.seq,
            hash: row.hash.clone(),
        });
        out.audit.push(row);
    }
    Ok(out)
}
