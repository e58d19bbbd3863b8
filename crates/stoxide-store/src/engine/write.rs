//! Engine writes in one transaction: a signal with its intents and their audit records, an
//! intent's outcome with the position its fills moved, a consent with its record. Many writes
//! can share one transaction (group commit); each is all or nothing on its own terms (a write
//! whose signal is a duplicate applies nothing).

use super::{AuditHead, AuditRow, IntentRow, PositionRow, SignalRow, StrategyRow, SubscriptionRow, TradingStateRow};
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
    /// The rows of consecutive writes go in together, a statement per table for many rows, so
    /// a group of hundreds of writes holds the append lock for a handful of round trips, not
    /// thousands. A write with a signal or a state change (whose outcome decides whether the
    /// rest of it applies) first flushes what the writes before it gathered, so it sees them, as
    /// it would one write at a time.
    ///
    /// # Errors
    /// Database errors; nothing is applied then.
    pub async fn write_engine(&self, writes: &[EngineWrite], chain: Chain<'_>) -> Result<Vec<WriteOutcome>> {
        let mut tx = self.begin(TxMode::Append).await?;
        let mut head: Option<AuditHead> = with_tx!(&mut tx.inner, c => sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(c)
            .await?);
        let before = head.clone();
        let mut outcomes: Vec<WriteOutcome> = Vec::with_capacity(writes.len());
        let mut batch = Batch::default();
        for (i, w) in writes.iter().enumerate() {
            let mut out = WriteOutcome::default();
            if w.signal.is_some() || w.state_change.is_some() {
                batch.flush(&mut tx, &mut outcomes).await?;
                if !conditions_hold(&mut tx, w).await? {
                    outcomes.push(out);
                    continue;
                }
            }
            out.applied = true;
            for d in &w.audit {
                let row = chain(head.as_ref(), d);
                head = Some(AuditHead {
                    seq: row.seq,
                    hash: row.hash.clone(),
                });
                out.audit.push(row);
            }
            batch.add(i, w, &out.audit);
            outcomes.push(out);
        }
        batch.flush(&mut tx, &mut outcomes).await?;
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

/// Inserts the write's signal and applies its state change; false when either says the rest
/// of the write must not apply.
async fn conditions_hold(tx: &mut Tx, w: &EngineWrite) -> Result<bool> {
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
            return Ok(false);
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
            return Ok(false);
        }
    }
    Ok(true)
}

/// Rows per statement at most: well under SQLite's 32,766 and PostgreSQL's 65,535 bound
/// parameters with the widest row (an intent's 13 columns).
const ROWS: usize = 1000;

/// The rows of consecutive writes, gathered to go in together. Each row remembers its write
/// (an index into the outcomes) where the outcome reports on it.
#[derive(Default)]
struct Batch<'w> {
    strategies: Vec<&'w StrategyRow>,
    subscriptions: Vec<&'w SubscriptionRow>,
    intents: Vec<(usize, &'w IntentRow)>,
    intent_updates: Vec<(usize, &'w IntentUpdate)>,
    positions: Vec<&'w PositionRow>,
    trading_states: Vec<&'w TradingStateRow>,
    audit: Vec<AuditRow>,
}

/// Keeps the last row of each key, in the order of their last occurrences: one statement must
/// not upsert a row twice (PostgreSQL refuses it), and one write after another leaves the last.
fn last_of_each<T, K: Eq + std::hash::Hash>(rows: &[T], key: impl Fn(&T) -> K) -> Vec<&T> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<&T> = rows.iter().rev().filter(|r| seen.insert(key(r))).collect();
    out.reverse();
    out
}

impl<'w> Batch<'w> {
    fn add(&mut self, i: usize, w: &'w EngineWrite, audit: &[AuditRow]) {
        self.strategies.extend(&w.strategies);
        self.subscriptions.extend(&w.subscriptions);
        self.intents.extend(w.intents.iter().map(|r| (i, r)));
        self.intent_updates.extend(w.intent_updates.iter().map(|u| (i, u)));
        self.positions.extend(&w.positions);
        self.trading_states.extend(&w.trading_states);
        self.audit.extend_from_slice(audit);
    }

    /// Writes what is gathered, in the order one write at a time would leave it (strategies,
    /// subscriptions, intents, their updates, positions, trading states, audit records), and
    /// reports the intents inserted and the updates that found their intent.
    async fn flush(&mut self, tx: &mut Tx, outcomes: &mut [WriteOutcome]) -> Result<()> {
        let b = std::mem::take(self);
        for rows in last_of_each(&b.strategies, |s| s.id.as_str()).chunks(ROWS) {
            with_tx!(&mut tx.inner, c => {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO strategies (id, version, definition, updated_at) ");
                q.push_values(rows, |mut v, s| {
                    v.push_bind(&s.id).push_bind(s.version).push_bind(&s.definition).push_bind(s.updated_at);
                });
                q.push(
                    " ON CONFLICT (id) DO UPDATE SET version = excluded.version, definition = excluded.definition,
                       updated_at = excluded.updated_at",
                );
                q.build().execute(c).await?.rows_affected()
            });
        }
        for rows in last_of_each(&b.subscriptions, |s| s.id.as_str()).chunks(ROWS) {
            with_tx!(&mut tx.inner, c => {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO subscriptions (id, account, strategy, inputs, state, consent, updated_at) ",
                );
                q.push_values(rows, |mut v, s| {
                    v.push_bind(&s.id)
                        .push_bind(&s.account)
                        .push_bind(&s.strategy)
                        .push_bind(&s.inputs)
                        .push_bind(&s.state)
                        .push_bind(&s.consent)
                        .push_bind(s.updated_at);
                });
                q.push(
                    " ON CONFLICT (id) DO UPDATE SET account = excluded.account, strategy = excluded.strategy,
                       inputs = excluded.inputs, state = excluded.state, consent = excluded.consent,
                       updated_at = excluded.updated_at",
                );
                q.build().execute(c).await?.rows_affected()
            });
        }
        // An intent goes in unless its tag exists: the first of a tag in the batch is the one
        // that can.
        let mut seen = std::collections::HashSet::new();
        let intents: Vec<&(usize, &IntentRow)> =
            b.intents.iter().filter(|(_, r)| seen.insert(r.tag.as_str())).collect();
        let mut inserted = std::collections::HashSet::new();
        for rows in intents.chunks(ROWS) {
            let tags: Vec<String> = with_tx!(&mut tx.inner, c => {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO intents (tag, strategy, signal_id, subscription, account, plan, state, reason,
                       order_ids, created_at, updated_at, filled, average_price) ",
                );
                q.push_values(rows, |mut v, (_, i)| {
                    v.push_bind(&i.tag)
                        .push_bind(&i.strategy)
                        .push_bind(&i.signal_id)
                        .push_bind(&i.subscription)
                        .push_bind(&i.account)
                        .push_bind(&i.plan)
                        .push_bind(&i.state)
                        .push_bind(&i.reason)
                        .push_bind(&i.order_ids)
                        .push_bind(i.created_at)
                        .push_bind(i.updated_at)
                        .push_bind(i.filled)
                        .push_bind(&i.average_price);
                });
                q.push(" ON CONFLICT (tag) DO NOTHING RETURNING tag");
                q.build_query_scalar().fetch_all(c).await?
            });
            inserted.extend(tags);
        }
        for (i, r) in intents {
            if inserted.contains(&r.tag) {
                outcomes[*i].new_intents.push(r.tag.clone());
            }
        }
        let mut found = std::collections::HashSet::new();
        for rows in last_of_each(&b.intent_updates, |(_, u)| u.tag.as_str()).chunks(ROWS) {
            let tags: Vec<String> = with_tx!(&mut tx.inner, c => {
                let mut q = sqlx::QueryBuilder::new("WITH v (tag, state, reason, order_ids, filled, average_price, updated_at) AS (");
                q.push_values(rows, |mut v, (_, u)| {
                    v.push_bind(&u.tag)
                        .push_bind(&u.state)
                        .push_bind(&u.reason)
                        .push_bind(&u.order_ids)
                        .push_bind(u.filled)
                        .push_bind(&u.average_price)
                        .push_bind(u.updated_at);
                });
                q.push(
                    ") UPDATE intents SET state = v.state, reason = v.reason, order_ids = v.order_ids,
                       filled = v.filled, average_price = v.average_price, updated_at = v.updated_at
                     FROM v WHERE intents.tag = v.tag RETURNING intents.tag",
                );
                q.build_query_scalar().fetch_all(c).await?
            });
            found.extend(tags);
        }
        for (i, u) in &b.intent_updates {
            outcomes[*i].updated_intents += usize::from(found.contains(&u.tag));
        }
        for rows in last_of_each(&b.positions, |p| (p.subscription.as_str(), p.instrument.as_str())).chunks(ROWS) {
            with_tx!(&mut tx.inner, c => {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO positions (subscription, instrument, quantity, avg_price, realised, updated_at) ",
                );
                q.push_values(rows, |mut v, p| {
                    v.push_bind(&p.subscription)
                        .push_bind(&p.instrument)
                        .push_bind(p.quantity)
                        .push_bind(&p.avg_price)
                        .push_bind(&p.realised)
                        .push_bind(p.updated_at);
                });
                q.push(
                    " ON CONFLICT (subscription, instrument) DO UPDATE SET quantity = excluded.quantity,
                       avg_price = excluded.avg_price, realised = excluded.realised, updated_at = excluded.updated_at",
                );
                q.build().execute(c).await?.rows_affected()
            });
        }
        for rows in last_of_each(&b.trading_states, |t| (t.level.as_str(), t.target.as_str())).chunks(ROWS) {
            with_tx!(&mut tx.inner, c => {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO trading_states (level, target, state, reason, updated_at) ");
                q.push_values(rows, |mut v, t| {
                    v.push_bind(&t.level)
                        .push_bind(&t.target)
                        .push_bind(&t.state)
                        .push_bind(&t.reason)
                        .push_bind(t.updated_at);
                });
                q.push(
                    " ON CONFLICT (level, target) DO UPDATE SET state = excluded.state, reason = excluded.reason,
                       updated_at = excluded.updated_at",
                );
                q.build().execute(c).await?.rows_affected()
            });
        }
        for rows in b.audit.chunks(ROWS) {
            with_tx!(&mut tx.inner, c => {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO audit_log (seq, at_ms, kind, user_id, body, prev, hash) ");
                q.push_values(rows, |mut v, r| {
                    v.push_bind(r.seq)
                        .push_bind(r.at_ms)
                        .push_bind(&r.kind)
                        .push_bind(&r.user_id)
                        .push_bind(&r.body)
                        .push_bind(&r.prev)
                        .push_bind(&r.hash);
                });
                q.build().execute(c).await?.rows_affected()
            });
        }
        Ok(())
    }
}
