//! What `stoxide cluster status` shows.

use serde::Serialize;
use stoxide_store::Store;

use crate::error::Result;

/// One node as the cluster sees it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub name: String,
    pub egress: String,
    pub alive: bool,
    /// Since its last heartbeat, ms.
    pub silent_ms: i64,
    /// Accounts whose lease it holds now.
    pub users: usize,
    /// Whether it reads the market for every node.
    pub feed: bool,
    /// Signals waiting for it on the bus, as it last reported.
    pub lag: Option<u64>,
    pub signals_accepted: Option<u64>,
}

/// The cluster now.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub nodes: Vec<NodeStatus>,
    /// Linked accounts no live node holds a lease on.
    pub unowned: Vec<String>,
    pub accounts: usize,
}

/// Reads nodes and leases; `node_ttl_ms`: a node silent longer is not alive.
///
/// # Errors
/// Store errors (PostgreSQL is needed).
pub async fn status(store: &Store, accounts: &[String], node_ttl_ms: i64) -> Result<ClusterStatus> {
    let now = store.cluster_now_ms().await?;
    let leases = store.leases().await?;
    let mut nodes: Vec<NodeStatus> = store
        .nodes()
        .await?
        .into_iter()
        .map(|n| {
            let info: serde_json::Value = serde_json::from_str(&n.info).unwrap_or_default();
            NodeStatus {
                users: leases
                    .iter()
                    .filter(|l| l.node == n.name && l.expires_ms > now && !l.account.starts_with('~'))
                    .count(),
                feed: leases
                    .iter()
                    .any(|l| l.node == n.name && l.expires_ms > now && l.account == crate::bus::FEED_LEASE),
                alive: now - n.heartbeat_ms <= node_ttl_ms,
                silent_ms: now - n.heartbeat_ms,
                lag: info["lag"].as_u64(),
                signals_accepted: info["accepted"].as_u64(),
                name: n.name,
                egress: n.egress,
            }
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let unowned = accounts
        .iter()
        .filter(|a| !leases.iter().any(|l| &l.account == *a && l.expires_ms > now))
        .cloned()
        .collect();
    Ok(ClusterStatus {
        nodes,
        unowned,
        accounts: accounts.len(),
    })
}
