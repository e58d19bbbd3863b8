//! Failed sign-ins counted per account (email) and per address over a sliding window: past the
//! limit, sign-in is refused with the time to wait, without checking the password. A success
//! clears the account's count (not the address's: one address trying many accounts stays slow).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::Error;

/// How many failures are allowed within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_account: usize,
    pub per_address: usize,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_account: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Default)]
struct Failures {
    accounts: HashMap<String, VecDeque<Instant>>,
    addresses: HashMap<IpAddr, VecDeque<Instant>>,
}

/// The sign-in throttle. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Throttle {
    limits: Limits,
    failures: Arc<Mutex<Failures>>,
}

fn prune(q: &mut VecDeque<Instant>, window: Duration, now: Instant) {
    while q.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
        q.pop_front();
    }
}

/// The wait until the oldest failure in a full queue leaves the window.
fn wait(q: &VecDeque<Instant>, limit: usize, window: Duration, now: Instant) -> Option<Duration> {
    if q.len() < limit {
        return None;
    }
    q.front()
        .map(|t| window.saturating_sub(now.saturating_duration_since(*t)))
}

impl Throttle {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            failures: Arc::default(),
        }
    }

    /// Refused when the account or the address used up its failures.
    ///
    /// # Errors
    /// [`Error::Throttled`] with the time to wait.
    pub fn check(&self, account: &str, from: IpAddr) -> Result<(), Error> {
        let now = Instant::now();
        let l = self.limits;
        let mut f = self.failures.lock();
        let by_account = f.accounts.get_mut(account).and_then(|q| {
            prune(q, l.window, now);
            wait(q, l.per_account, l.window, now)
        });
        let by_address = f.addresses.get_mut(&from).and_then(|q| {
            prune(q, l.window, now);
            wait(q, l.per_address, l.window, now)
        });
        match by_account.into_iter().chain(by_address).max() {
            Some(retry_after) => Err(Error::Throttled { retry_after }),
            None => Ok(()),
        }
    }

    pub fn failed(&self, account: &str, from: IpAddr) {
        let now = Instant::now();
        let mut f = self.failures.lock();
        f.accounts.entry(account.to_owned()).or_default().push_back(now);
        f.addresses.entry(from).or_default().push_back(now);
    }

    pub fn succeeded(&self, account: &str) {
        self.failures.lock().accounts.remove(account);
    }
}
