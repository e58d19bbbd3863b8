//! A client-side limiter that keeps a caller under the published per-user limits by waiting
//! before sending, instead of collecting 429s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use upstox_types::{ApiCategory, RateLimits, SlidingWindow};

/// Shared by every clone of a client (one per access token).
#[derive(Debug, Clone)]
pub struct ClientLimiter {
    limits: RateLimits,
    windows: Arc<Mutex<HashMap<ApiCategory, SlidingWindow>>>,
    waited: Arc<Mutex<Duration>>,
}

/// Extra width given to every window on the client side. The server counts a request when it
/// arrives, and arrivals jitter (the first call of a burst also pays for the connection), so a
/// client pacing to the exact window would still meet the odd 429.
fn widen(window: Duration) -> Duration {
    window + (window / 10).max(Duration::from_millis(100))
}

impl ClientLimiter {
    pub fn new(limits: RateLimits) -> Self {
        let widen_all = |v: Vec<upstox_types::WindowLimit>| -> Vec<upstox_types::WindowLimit> {
            v.into_iter()
                .map(|w| upstox_types::WindowLimit {
                    max: w.max,
                    window: widen(w.window),
                })
                .collect()
        };
        let limits = RateLimits {
            order: widen_all(limits.order),
            multi_order: widen_all(limits.multi_order),
            standard: widen_all(limits.standard),
        };
        Self {
            limits,
            windows: Arc::default(),
            waited: Arc::default(),
        }
    }

    /// Waits until one more request of `category` fits every window, then counts it.
    ///
    /// Cancellation safe: dropping the future before it returns counts nothing.
    pub async fn acquire(&self, category: ApiCategory) {
        loop {
            let wait = {
                let mut windows = self.windows.lock();
                let w = windows
                    .entry(category)
                    .or_insert_with(|| SlidingWindow::new(self.limits.for_category(category)));
                let now = Instant::now();
                if w.try_admit(now) {
                    return;
                }
                w.wait_time(now)
            };
            *self.waited.lock() += wait;
            tracing::debug!(?category, wait_ms = wait.as_millis() as u64, "rate limit: waiting");
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Total time spent waiting so far.
    pub fn total_wait(&self) -> Duration {
        *self.waited.lock()
    }
}
