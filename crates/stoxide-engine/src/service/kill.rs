//! The kill switch of a running engine: a halted (or reducing) state at a level, written with its
//! audit record before anything else; then the open orders in its scope cancelled and, when
//! asked, every open position in its scope exited — as intents like any other (durable before
//! they are sent, tagged, reconciled), which pass the very state the kill set.

use chrono::Utc;
use serde::Serialize;
use stoxide_store::EngineWrite;
use upstox_types::TransactionType;

use super::Engine;
use crate::allocation::{self, OrderPlan};
use crate::desk::{self, Actor};
use crate::error::{Error, Result};
use crate::intent::IntentState;
use crate::records::{self, Intent, PlanRecord, StateRecord};
use crate::risk::{Level, TradingState};

/// What a kill switch covers and does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    pub level: Level,
    /// The account (user level) or subscription id; empty for the global level.
    pub target: String,
    /// Halted (nothing) or Reducing (exits only).
    pub state: TradingState,
    /// Cancel the open orders in scope.
    pub cancel: bool,
    /// Exit every open position in scope with a market order.
    pub exit: bool,
    pub note: Option<String>,
}

/// What a kill switch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KillReport {
    pub state: StateRecord,
    /// Lanes asked to cancel their open orders.
    pub lanes_cancelling: usize,
    /// Exit orders queued (one per subscription and instrument with a position).
    pub exits: Vec<String>,
}

impl Engine {
    /// Pulls a kill switch (see [`Kill`]).
    ///
    /// # Errors
    /// An unknown target; store errors (then nothing was cancelled or sent).
    pub async fn kill(&self, kill: Kill, actor: &Actor) -> Result<KillReport> {
        let now = Utc::now();
        self.refresh().await?;
        let (subs, target) = {
            let memory = self.inner().memory.lock();
            let subs: Vec<_> = memory
                .subscriptions
                .values()
                .filter(|s| match kill.level {
                    Level::Global => true,
                    Level::User => s.account == kill.target,
                    Level::Subscription => s.id == kill.target,
                })
                .cloned()
                .collect();
            let known = match kill.level {
                Level::Global => true,
                Level::User => memory.accounts.contains_key(&kill.target),
                Level::Subscription => !subs.is_empty(),
            };
            if !known {
                return Err(match kill.level {
                    Level::User => Error::UnknownAccount(kill.target.clone()),
                    _ => Error::UnknownSubscription(kill.target.clone()),
                });
            }
            let target = if kill.level == Level::Global {
                String::new()
            } else {
                kill.target.clone()
            };
            (subs, target)
        };
        let record = desk::state_record(kill.level, target, kill.state, kill.note.clone(), actor, now);
        // The exits, decided from the positions as the engine holds them.
        let mut algo_names = std::collections::HashMap::new();
        for sub in &subs {
            if !algo_names.contains_key(&sub.strategy)
                && let Some(s) = self.strategy(&sub.strategy).await?
            {
                algo_names.insert(sub.strategy.clone(), s.algo_name);
            }
        }
        let mut exits = Vec::new();
        if kill.exit {
            let memory = self.inner().memory.lock();
            for sub in &subs {
                let Some(book) = memory.books.get(&sub.id) else {
                    continue;
                };
                let mut held: Vec<_> = book.positions.iter().filter(|(_, p)| p.quantity != 0).collect();
                held.sort_by(|a, b| a.0.cmp(b.0));
                for (key, pos) in held {
                    let Some(inst) = self.inner().instruments.get(key) else {
                        continue;
                    };
                    let quantity = pos.quantity.unsigned_abs();
                    let signal_id = format!("kill-{}-{key}", now.timestamp_millis());
                    let strategy = memory
                        .subscriptions
                        .get(&sub.id)
                        .map(|s| s.strategy.clone())
                        .unwrap_or_default();
                    exits.push(Intent {
                        tag: allocation::intent_tag(&strategy, &signal_id, &sub.id),
                        strategy,
                        signal_id,
                        subscription: sub.id.clone(),
                        account: sub.account.clone(),
                        plan: PlanRecord {
                            instrument: key.clone(),
                            product: sub.inputs.product,
                            order: Some(OrderPlan {
                                side: if pos.quantity > 0 {
                                    TransactionType::Sell
                                } else {
                                    TransactionType::Buy
                                },
                                quantity,
                                slice: inst.info.freeze_quantity.is_some_and(|f| quantity > f),
                                reduces: true,
                                target: 0,
                            }),
                            algo_name: algo_names.get(&sub.strategy).cloned().unwrap_or_default(),
                            paper: sub.inputs.paper || self.inner().config.paper,
                            forced_exit: true,
                        },
                        state: IntentState::Pending,
                        reason: Some("kill switch: exit".into()),
                        order_ids: Vec::new(),
                        filled: 0,
                        average_price: None,
                        created_at: now,
                        updated_at: now,
                    });
                }
            }
        }
        let user = if kill.level == Level::User {
            record.target.clone()
        } else {
            String::new()
        };
        let mut write = EngineWrite {
            trading_states: vec![records::state_row(&record)],
            audit: vec![records::draft(
                now,
                "kill_switch",
                &user,
                &serde_json::json!({"state": record, "cancel": kill.cancel, "exit": kill.exit, "by": actor.by, "from": actor.from}),
            )],
            ..EngineWrite::default()
        };
        for e in &exits {
            write.intents.push(records::intent_row(e));
            write.audit.push(records::draft(
                now,
                "intent",
                &e.account,
                &serde_json::json!({"tag": e.tag, "subscription": e.subscription, "state": e.state, "plan": e.plan, "reason": e.reason}),
            ));
        }
        self.inner().journal.write(write).await?;
        self.set_state_in_memory(record.clone());
        let mut lanes = std::collections::BTreeSet::new();
        if kill.cancel {
            for sub in &subs {
                lanes.insert(sub.account.clone());
            }
            for account in &lanes {
                let scope = (kill.level == Level::Subscription).then(|| kill.target.clone());
                self.lane(account).cancel_open(scope).await;
            }
        }
        let tags = exits.iter().map(|e| e.tag.clone()).collect();
        for e in exits {
            self.inner().memory.lock().in_flight(&e, true);
            self.lane(&e.account.clone()).send(e).await;
        }
        tracing::warn!(level = ?kill.level, target = %kill.target, state = ?kill.state, "kill switch pulled");
        Ok(KillReport {
            state: record,
            lanes_cancelling: lanes.len(),
            exits: tags,
        })
    }

    fn set_state_in_memory(&self, record: StateRecord) {
        let mut memory = self.inner().memory.lock();
        match record.level {
            Level::Global => memory.states.global = Some(record),
            Level::User => {
                memory.states.users.insert(record.target.clone(), record);
            }
            Level::Subscription => {
                memory.states.subscriptions.insert(record.target.clone(), record);
            }
        }
    }
}
