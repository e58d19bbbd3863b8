//! What this node holds, as the engine asks it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The accounts this node holds, each until a deadline on this node's monotonic clock: the
/// moment the lease's last renewal was *asked for* plus the lease's length — never later than
/// the lease's end in PostgreSQL. The engine may start a request for an account only while at
/// least `margin` (longer than any request takes) is left, so whatever it sent has ended
/// before another node could take the account.
#[derive(Debug)]
pub struct Leases {
    margin: Duration,
    held: Mutex<HashMap<String, Instant>>,
}

impl Leases {
    pub fn new(margin: Duration) -> Self {
        Self {
            margin,
            held: Mutex::default(),
        }
    }

    /// Sets `accounts`' deadline (held, or renewed).
    pub fn renew(&self, accounts: impl IntoIterator<Item = String>, until: Instant) {
        let mut held = self.held.lock();
        for a in accounts {
            held.insert(a, until);
        }
    }

    /// Stops holding `accounts` at once.
    pub fn drop_accounts(&self, accounts: &[String]) {
        let mut held = self.held.lock();
        for a in accounts {
            held.remove(a);
        }
    }

    /// The accounts held now (with enough time left to start a request).
    pub fn held(&self) -> Vec<String> {
        let now = Instant::now();
        let mut v: Vec<String> = self
            .held
            .lock()
            .iter()
            .filter(|(_, d)| d.saturating_duration_since(now) >= self.margin)
            .map(|(a, _)| a.clone())
            .collect();
        v.sort();
        v
    }

    /// Every account in the map, whatever time it has left.
    pub fn known(&self) -> Vec<String> {
        self.held.lock().keys().cloned().collect()
    }
}

impl stoxide_engine::ownership::Ownership for Leases {
    fn holds(&self, account: &str) -> bool {
        self.held
            .lock()
            .get(account)
            .is_some_and(|d| d.saturating_duration_since(Instant::now()) >= self.margin)
    }
}

#[cfg(test)]
mod tests {
    use stoxide_engine::ownership::Ownership;

    use super::*;

    #[test]
    fn an_account_is_held_only_while_more_than_the_margin_is_left() {
        let l = Leases::new(Duration::from_secs(3));
        l.renew(["A".to_owned()], Instant::now() + Duration::from_secs(10));
        l.renew(["B".to_owned()], Instant::now() + Duration::from_secs(2));
        assert!(l.holds("A"));
        assert!(!l.holds("B"), "2 s left is less than the 3 s a request may take");
        assert!(!l.holds("C"));
        assert_eq!(l.held(), vec!["A".to_owned()]);
        l.drop_accounts(&["A".to_owned()]);
        assert!(!l.holds("A"));
    }
}
