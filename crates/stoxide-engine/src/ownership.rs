//! Which accounts this engine may send for, when it is one node of several.
//!
//! A node holds an account through a lease (kept by `stoxide-cluster` in PostgreSQL). The engine
//! asks before every place, look-up and book read whether it still holds the account; a node
//! that lost it stops touching the account, and the next holder finds its unfinished intents
//! by tag. A single engine (no ownership given) holds every account.

/// Whether this engine may act for an account now.
pub trait Ownership: Send + Sync + std::fmt::Debug {
    /// Whether this engine holds `account` for long enough that a request started now ends
    /// before anyone else could take the account over.
    fn holds(&self, account: &str) -> bool;
}
