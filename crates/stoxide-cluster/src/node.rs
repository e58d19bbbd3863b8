//! One node's membership: heartbeat, assignment, leases, and the engine told what it holds.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stoxide_engine::Engine;
use stoxide_store::Store;
use tokio_util::sync::CancellationToken;

use crate::assign::{NodeView, assign};
use crate::bus::SignalBus;
use crate::error::Result;
use crate::leases::Leases;

/// How a node behaves. The defaults take a dead node's accounts over within about
/// `lease_ttl + tick` (11 s).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub name: String,
    /// The (static, whitelisted) address its orders leave from.
    pub egress: String,
    /// How long a lease lasts after each renewal.
    pub lease_ttl: Duration,
    /// How often the node beats, looks at the others and renews.
    pub tick: Duration,
    /// A node silent this long is gone: its accounts are assigned to the others.
    pub node_ttl: Duration,
    /// The engine starts a request for an account only with this much of its lease left:
    /// longer than any request takes (the client's timeout and a second).
    pub margin: Duration,
}

impl NodeConfig {
    pub fn new(name: impl Into<String>, egress: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            egress: egress.into(),
            lease_ttl: Duration::from_secs(10),
            tick: Duration::from_secs(1),
            node_ttl: Duration::from_secs(4),
            margin: Duration::from_secs(6),
        }
    }
}

/// A node of the cluster.
#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    store: Store,
    leases: Arc<Leases>,
    bus: Option<SignalBus>,
}

impl Node {
    /// A node beating, reading and renewing through `store`: best a pool of its own on the
    /// shared database, so the engine's writes (which queue on the audit chain's lock under
    /// load) never hold up a renewal.
    pub fn new(config: NodeConfig, store: Store, bus: Option<SignalBus>) -> Self {
        let leases = Arc::new(Leases::new(config.margin));
        Self {
            store,
            config,
            leases,
            bus,
        }
    }

    /// What the engine asks before each request (`EngineConfig::cluster`).
    pub fn leases(&self) -> Arc<Leases> {
        self.leases.clone()
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Joins: one beat at once, so the others see this node before it holds anything.
    ///
    /// # Errors
    /// Store errors (PostgreSQL is needed).
    pub async fn join(&self) -> Result<()> {
        self.store
            .node_heartbeat(&self.config.name, &self.config.egress, "{}")
            .await?;
        Ok(())
    }

    /// Beats, assigns and renews every `tick` until `stop`; the engine is told which accounts
    /// it takes over and lets go. A failed round is logged and tried again next tick (the
    /// leases then run out on their own, and the engine stops sending for those accounts).
    pub async fn run(&self, engine: Engine, stop: CancellationToken) {
        let mut held: HashSet<String> = HashSet::new();
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.round(&engine, &mut held).await {
                tracing::warn!(node = %self.config.name, error = %e, "a cluster round failed; the leases run out unless the next one works");
            }
        }
    }

    async fn round(&self, engine: &Engine, held: &mut HashSet<String>) -> Result<()> {
        let lag = match &self.bus {
            Some(b) => b.lag(&self.config.name).await.ok(),
            None => None,
        };
        let summary = engine.summary();
        let info = serde_json::json!({
            "users": held.iter().filter(|a| !a.starts_with('~')).count(),
            "feed": held.contains(crate::bus::FEED_LEASE),
            "lag": lag,
            "accepted": summary.signals_accepted,
            "refused": summary.signals_refused,
            "pid": std::process::id(),
        });
        let now_ms = self
            .store
            .node_heartbeat(&self.config.name, &self.config.egress, &info.to_string())
            .await?;
        let ttl_ms = i64::try_from(self.config.node_ttl.as_millis()).unwrap_or(i64::MAX);
        let nodes: Vec<NodeView> = self
            .store
            .nodes()
            .await?
            .into_iter()
            .filter(|n| n.name == self.config.name || n.heartbeat_ms >= now_ms - ttl_ms)
            .map(|n| NodeView {
                name: n.name,
                egress: n.egress,
            })
            .collect();
        let whitelists: HashMap<String, Vec<String>> = self
            .store
            .egress()
            .await?
            .into_iter()
            .map(|r| {
                let ips = r
                    .addresses
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                (r.account, ips)
            })
            .collect();
        let vendor = whitelists.get("*");
        let accounts = self.store.accounts().await?;
        let mut desired: Vec<String> = accounts
            .iter()
            .filter(|a| {
                let allowed = whitelists.get(&a.id).or(vendor).map(Vec::as_slice);
                assign(&a.id, allowed, &nodes).is_some_and(|n| n.name == self.config.name)
            })
            .map(|a| a.id.clone())
            .collect();
        // The market feed is held like an account, by one node at a time.
        if assign(crate::bus::FEED_LEASE, None, &nodes).is_some_and(|n| n.name == self.config.name) {
            desired.push(crate::bus::FEED_LEASE.to_owned());
        }
        // Accounts this node should no longer hold stop at once here; their leases are left to
        // run out, so whatever was sent for them has ended before anyone else takes them.
        let wanted: HashSet<&String> = desired.iter().collect();
        let leaving: Vec<String> = held.iter().filter(|a| !wanted.contains(a)).cloned().collect();
        if !leaving.is_empty() {
            self.leases.drop_accounts(&leaving);
            engine.let_go(&leaving);
            for a in &leaving {
                held.remove(a);
            }
            tracing::info!(node = %self.config.name, accounts = leaving.len(), "accounts handed over");
        }
        let asked = Instant::now();
        let lease_ms = i64::try_from(self.config.lease_ttl.as_millis()).unwrap_or(i64::MAX);
        let rows = self.store.hold_leases(&self.config.name, &desired, lease_ms).await?;
        let now_held: HashSet<String> = rows.into_iter().map(|r| r.account).collect();
        // Accounts whose margin ran out at any moment since the last renewal (this one was slow)
        // may have had their lanes drop their work and signals pass them by: they are let go and
        // taken up again as new below — books read again, unfinished intents looked up by tag,
        // missed signals caught up. (A margin only shrinks between renewals, so looking now,
        // before renewing, sees every lapse.)
        let lapsed: Vec<String> = held
            .iter()
            .filter(|a| !stoxide_engine::ownership::Ownership::holds(&*self.leases, a))
            .cloned()
            .collect();
        if !lapsed.is_empty() {
            self.leases.drop_accounts(&lapsed);
            engine.let_go(&lapsed);
            for a in &lapsed {
                held.remove(a);
            }
            tracing::warn!(node = %self.config.name, accounts = lapsed.len(), "leases' margins ran out before renewal; those accounts are taken up again");
        }
        // Desired but held elsewhere still (a dead node's lease not yet run out), or a renewal
        // that did not go through: not ours now.
        let lost: Vec<String> = held.iter().filter(|a| !now_held.contains(*a)).cloned().collect();
        if !lost.is_empty() {
            self.leases.drop_accounts(&lost);
            engine.let_go(&lost);
            tracing::warn!(node = %self.config.name, accounts = lost.len(), "leases lost");
        }
        let mut new: Vec<String> = now_held.iter().filter(|a| !held.contains(*a)).cloned().collect();
        let mut now_held = now_held;
        // New accounts are used only once the signal being taken is done: the node then decides
        // the signals they missed, in order, before the next one.
        let in_order = if new.is_empty() {
            None
        } else {
            match tokio::time::timeout(self.config.tick * 3, engine.sequencer().lock_owned()).await {
                Ok(guard) => Some(guard),
                Err(_) => {
                    // Still held in PostgreSQL; taken into use at a later round.
                    for a in &new {
                        now_held.remove(a);
                    }
                    new.clear();
                    None
                }
            }
        };
        // A new account's book is read again before it counts as held: what its previous holder
        // did is in it.
        engine.reload_books(&new).await?;
        self.leases
            .renew(now_held.iter().cloned(), asked + self.config.lease_ttl);
        *held = now_held;
        if let Some(guard) = in_order {
            let recovered = match engine.recover_accounts(&new).await {
                Ok(n) => n,
                Err(e) => {
                    // Not taken into use after all: taken up again at the next round.
                    self.leases.drop_accounts(&new);
                    engine.let_go(&new);
                    for a in &new {
                        held.remove(a);
                    }
                    return Err(e.into());
                }
            };
            tracing::info!(node = %self.config.name, accounts = new.len(), recovered, "accounts taken over");
            // The signals the new accounts missed are decided on the side (the leases keep being
            // renewed meanwhile); new signals wait for them.
            // Until they are, no new signal is decided (the guard is held): one that failed is
            // tried again rather than letting a later signal pass it.
            let engine = engine.clone();
            let taken = new.clone();
            tokio::spawn(async move {
                for attempt in 1.. {
                    match engine.catch_up(&guard).await {
                        Ok(_) => break,
                        // Two minutes of a store that does not answer: the node is not working
                        // anyway; the signals wait no longer (and are said to be left).
                        Err(e) if attempt >= 120 => {
                            tracing::error!(error = %e, "signals could not be caught up for accounts taken over; left");
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "signals could not be caught up for accounts taken over; trying again in 1 s");
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        }
                    }
                }
                drop(guard);
                // Older signals they missed are not traded any more; each gets a record saying so.
                match engine.record_late(&taken).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(intents = n, "signals too old to catch up recorded as not traded"),
                    Err(e) => tracing::warn!(error = %e, "signals too old to catch up could not be recorded"),
                }
            });
        }
        Ok(())
    }

    /// Leaves the cluster after the engine stopped: this node's leases end now, so the others
    /// take its accounts at their next tick.
    ///
    /// # Errors
    /// Store errors.
    pub async fn leave(&self) -> Result<()> {
        self.leases.drop_accounts(&self.leases.known());
        self.store.node_leave(&self.config.name).await?;
        Ok(())
    }
}
