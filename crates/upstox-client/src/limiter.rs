//! The client-side limiter: one budget per (user, API category), with Upstox's published
//! windows, so a caller waits before sending instead of collecting 429s (`UDAPI10005`).
//!
//! Upstox limits each user per API category. So a process makes one [`RateLimiter`] and hands it
//! to every client it builds ([`crate::ClientConfig::limiter`]): N users on one host each get
//! their own full budget, and one user's calls through several clients share one budget.
//!
//! Several processes acting for the same users share the budgets through a [`SharedBudgets`]
//! store ([`RateLimiter::shared`]); while that store cannot be asked, each process falls back
//! to a conservative local budget — every window's maximum divided among the processes — never
//! to no limit at all.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use secrecy::{ExposeSecret, SecretString};
use upstox_types::{ApiCategory, RateLimits, SlidingWindow, WindowLimit};

/// Whose budget a call spends: the Upstox user, or (when the caller does not know the user)
/// the token itself, by a fingerprint that reveals nothing of it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    User(String),
    Token([u8; 16]),
}

impl LimitKey {
    /// The key of a token whose user is unknown.
    pub fn of_token(token: &SecretString) -> Self {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"stoxide limiter\0");
        h.update(token.expose_secret().as_bytes());
        let digest = h.finalize();
        let mut fp = [0u8; 16];
        fp.copy_from_slice(&digest[..16]);
        Self::Token(fp)
    }
}

impl LimitKey {
    /// A name for the key that reveals nothing of a token: the user id, or the fingerprint in hex.
    pub fn id(&self) -> String {
        match self {
            Self::User(u) => format!("u:{u}"),
            Self::Token(fp) => format!("t:{}", fp.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        }
    }
}

/// A shared budget store could not be asked (unreachable, slow, or it answered nonsense).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shared rate-limit store: {0}")]
pub struct SharedBudgetError(pub String);

/// What a shared budget store answers.
pub type Admission<'a> = Pin<Box<dyn Future<Output = Result<Option<Duration>, SharedBudgetError>> + Send + 'a>>;

/// Budgets kept outside the process, so that several processes acting for the same users
/// stay within each user's limits together.
pub trait SharedBudgets: Send + Sync + std::fmt::Debug {
    /// In one atomic step: if one more request of `category` fits every window of `key`'s
    /// budget, counts it and answers `None`; else counts nothing and answers how long until it
    /// may fit.
    fn try_admit<'a>(&'a self, key: &'a LimitKey, category: ApiCategory, windows: &'a [WindowLimit]) -> Admission<'a>;
}

impl std::fmt::Debug for LimitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User(u) => write!(f, "User({u})"),
            Self::Token(_) => f.write_str("Token(<fingerprint>)"),
        }
    }
}

/// Extra width given to every window on the client side. The server counts a request when it
/// arrives, and arrivals jitter (the first call of a burst also pays for the connection), so a
/// client pacing to the exact window would still meet the odd 429.
fn widen(window: Duration) -> Duration {
    window + (window / 10).max(Duration::from_millis(100))
}

/// Above this many budgets, idle ones (nothing admitted within their windows) are forgotten.
const PRUNE_ABOVE: usize = 4096;

#[derive(Debug, Default)]
struct Budgets {
    windows: HashMap<(LimitKey, ApiCategory), SlidingWindow>,
    waited: HashMap<LimitKey, Duration>,
    /// Pruned again above this many budgets (at least [`PRUNE_ABOVE`]): twice what the last
    /// pruning kept, so while most budgets are in use (thousands of users trading) a call does
    /// not scan them all — pruning costs O(1) a call, amortised.
    prune_at: usize,
    /// Times pruned.
    prunes: u64,
}

/// Budgets per (user, category). Cheap to clone; clones share the budgets.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    limits: Arc<RateLimits>,
    budgets: Arc<Mutex<Budgets>>,
    /// Budgets shared with other processes, and the local limits to fall back to while they
    /// cannot be asked.
    shared: Option<(Arc<dyn SharedBudgets>, Arc<RateLimits>)>,
    /// The shared store failed on the last try (said once per outage, not per call).
    store_down: Arc<std::sync::atomic::AtomicBool>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new(RateLimits::published())
    }
}

impl RateLimiter {
    /// A limiter enforcing `limits` (each window widened a little, see `widen`).
    pub fn new(limits: RateLimits) -> Self {
        let widen_all = |v: Vec<WindowLimit>| -> Vec<WindowLimit> {
            v.into_iter()
                .map(|w| WindowLimit {
                    max: w.max,
                    window: widen(w.window),
                })
                .collect()
        };
        Self {
            limits: Arc::new(RateLimits {
                order: widen_all(limits.order),
                multi_order: widen_all(limits.multi_order),
                standard: widen_all(limits.standard),
            }),
            budgets: Arc::default(),
            shared: None,
            store_down: Arc::default(),
        }
    }

    /// A limiter whose budgets live in `store`, shared with the other processes that use it.
    /// While `store` cannot be asked, this process keeps to `1/processes` of every window
    /// (at least one request per window) on its own.
    pub fn shared(limits: RateLimits, store: Arc<dyn SharedBudgets>, processes: u32) -> Self {
        let processes = processes.max(1);
        let share = |v: &[WindowLimit]| -> Vec<WindowLimit> {
            v.iter()
                .map(|w| WindowLimit {
                    max: (w.max / processes).max(1),
                    window: w.window,
                })
                .collect()
        };
        let fallback = RateLimits {
            order: share(&limits.order),
            multi_order: share(&limits.multi_order),
            standard: share(&limits.standard),
        };
        let mut limiter = Self::new(limits);
        // The fallback windows are widened like the shared ones.
        let local = Self::new(fallback);
        limiter.shared = Some((store, local.limits));
        limiter
    }

    /// Waits until one more request of `category` fits every window of `key`'s budget, then
    /// counts it.
    ///
    /// Cancellation safe: dropping the future before it returns counts nothing.
    pub async fn acquire(&self, key: &LimitKey, category: ApiCategory) {
        if let Some((store, fallback)) = &self.shared {
            loop {
                use std::sync::atomic::Ordering;
                let answer = store.try_admit(key, category, self.limits.for_category(category)).await;
                if answer.is_ok() && self.store_down.swap(false, Ordering::Relaxed) {
                    tracing::warn!("rate limit: the shared store answers again");
                }
                match answer {
                    Ok(None) => return,
                    Ok(Some(wait)) => {
                        *self.budgets.lock().waited.entry(key.clone()).or_default() += wait;
                        tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
                    }
                    Err(e) => {
                        if !self.store_down.swap(true, Ordering::Relaxed) {
                            tracing::warn!(error = %e, "rate limit: the shared store cannot be asked; keeping to this process's share");
                        }
                        return self.acquire_local(key, category, fallback).await;
                    }
                }
            }
        }
        self.acquire_local(key, category, &self.limits).await;
    }

    /// [`Self::acquire`] against this process's own budgets, under `limits`.
    async fn acquire_local(&self, key: &LimitKey, category: ApiCategory, limits: &RateLimits) {
        loop {
            let wait = {
                let mut b = self.budgets.lock();
                let now = Instant::now();
                if b.windows.len() > b.prune_at.max(PRUNE_ABOVE) {
                    b.windows.retain(|_, w| !w.is_idle(now));
                    b.prune_at = 2 * b.windows.len();
                    b.prunes += 1;
                }
                let w = b
                    .windows
                    .entry((key.clone(), category))
                    .or_insert_with(|| SlidingWindow::new(limits.for_category(category)));
                if w.try_admit(now) {
                    return;
                }
                let wait = w.wait_time(now);
                *b.waited.entry(key.clone()).or_default() += wait;
                wait
            };
            tracing::debug!(?category, wait_ms = wait.as_millis() as u64, "rate limit: waiting");
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Time every budget has spent waiting so far.
    pub fn total_wait(&self) -> Duration {
        self.budgets.lock().waited.values().sum()
    }

    /// Time `key`'s budget has spent waiting so far.
    pub fn waited(&self, key: &LimitKey) -> Duration {
        self.budgets.lock().waited.get(key).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tight() -> RateLimits {
        let w = |max| {
            vec![WindowLimit {
                max,
                window: Duration::from_secs(60),
            }]
        };
        RateLimits {
            order: w(3),
            multi_order: w(1),
            standard: w(5),
        }
    }

    #[tokio::test]
    async fn many_busy_budgets_are_not_scanned_on_every_call() {
        // 20,000 users each with a request in the window: none can be forgotten, so a pruning
        // per call (what a fixed threshold did) would scan every budget 16,000 times.
        let limiter = RateLimiter::new(tight());
        for u in 0..20_000 {
            limiter
                .acquire(&LimitKey::User(format!("U{u}")), ApiCategory::Standard)
                .await;
        }
        let b = limiter.budgets.lock();
        assert_eq!(b.windows.len(), 20_000, "every budget is in use and kept");
        assert!(b.prunes <= 3, "pruned {} times", b.prunes);
    }

    #[tokio::test]
    async fn each_user_and_category_has_its_own_budget() {
        let limiter = RateLimiter::new(tight());
        let (a, b) = (LimitKey::User("A".into()), LimitKey::User("B".into()));
        for _ in 0..5 {
            limiter.acquire(&a, ApiCategory::Standard).await;
            limiter.acquire(&b, ApiCategory::Standard).await;
        }
        for _ in 0..3 {
            limiter.acquire(&a, ApiCategory::Order).await;
        }
        assert_eq!(limiter.total_wait(), Duration::ZERO, "full budgets, nobody waited");
        // The sixth standard call of A must wait; B's budget is untouched by it.
        let sixth = limiter.clone();
        let key = a.clone();
        let waiting = tokio::spawn(async move { sixth.acquire(&key, ApiCategory::Standard).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        assert!(limiter.waited(&a) > Duration::ZERO);
        assert_eq!(limiter.waited(&b), Duration::ZERO);
        waiting.abort();
    }

    /// A store that cannot be asked.
    #[derive(Debug)]
    struct Down;

    impl SharedBudgets for Down {
        fn try_admit<'a>(&'a self, _: &'a LimitKey, _: ApiCategory, _: &'a [WindowLimit]) -> Admission<'a> {
            Box::pin(async { Err(SharedBudgetError("connection refused".into())) })
        }
    }

    #[tokio::test]
    async fn without_its_shared_store_a_process_keeps_to_its_share_never_to_no_limit() {
        // Two processes: each may send 2 of the 5 standard calls a minute on its own.
        let limiter = RateLimiter::shared(tight(), Arc::new(Down), 2);
        let a = LimitKey::User("A".into());
        for _ in 0..2 {
            limiter.acquire(&a, ApiCategory::Standard).await;
        }
        assert_eq!(limiter.total_wait(), Duration::ZERO);
        let third = limiter.clone();
        let key = a.clone();
        let waiting = tokio::spawn(async move { third.acquire(&key, ApiCategory::Standard).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a third call went out without the shared store");
        waiting.abort();
    }

    #[test]
    fn token_keys_are_stable_and_reveal_nothing() {
        let t = SecretString::from("sim_at_0123456789abcdef");
        assert_eq!(LimitKey::of_token(&t), LimitKey::of_token(&t));
        assert_ne!(LimitKey::of_token(&t), LimitKey::of_token(&SecretString::from("other")));
        assert_eq!(format!("{:?}", LimitKey::of_token(&t)), "Token(<fingerprint>)");
        assert!(!LimitKey::of_token(&t).id().contains("sim_at"));
        assert_eq!(LimitKey::User("AB12".into()).id(), "u:AB12");
    }
}
