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

impl ClientLimiter {
    pub fn new(limits: RateLimits) -> Self {
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
