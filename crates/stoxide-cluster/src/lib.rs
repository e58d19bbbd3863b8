//! `stoxide-cluster`: several engine nodes sharing the work, on existing infrastructure.
//!
//! - [`assign`]: which live node should hold an account — rendezvous hashing over the nodes
//!   whose egress address the account's app has whitelisted (a plain function: every node
//!   computes the same answer from the same view, and a node joining or leaving moves only the
//!   accounts it gains or held).
//! - [`Leases`]: what this node holds, each account until a deadline on this node's clock that
//!   ends before the lease in PostgreSQL does; the engine asks it before every request.
//! - [`Node`]: the membership loop — heartbeat, assignment, leases taken, renewed and let go,
//!   accounts handed to and taken from the engine.
//! - [`SignalBus`]: signals over NATS JetStream — durable, deduplicated by signal id,
//!   acknowledged after each node's intents are written, redelivered to a node that restarts.
//!   The node holding the [`FEED_LEASE`] reads the last prices and passes them on to every
//!   node over plain NATS: one market connection serves the cluster.
//! - [`status`]: nodes, leases, users per node and signal lag, for `stoxide cluster status`.
//!
//! Tests: `cargo test -p stoxide-cluster` (unit); the two-node cluster with a SIGKILL is in
//! `crates/stoxide-cli/tests/it/cluster.rs`.

mod assign;
mod bus;
mod error;
mod leases;
mod node;
mod status;

pub use assign::{NodeView, assign};
pub use bus::{FEED_LEASE, SIGNAL_STREAM, SignalBus};
pub use error::{Error, Result};
pub use leases::Leases;
pub use node::{Node, NodeConfig};
pub use status::{ClusterStatus, NodeStatus, status};
