//! The published per-user rate limits (api-facts §8) and the sliding-window counter that both
//! the simulator (to refuse with 429) and the client (to wait before sending) use.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Rate-limit categories: each has its own windows per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiCategory {
    /// Place, modify, cancel, GTT (regular, unregistered algos).
    Order,
    /// Multi place, multi cancel, exit all positions.
    MultiOrder,
    /// Everything else that takes a token: quotes, portfolio, funds, history, ...
    Standard,
}

impl ApiCategory {
    /// The category of a request, from its method and path.
    pub fn of(method: &str, path: &str) -> Self {
        if path.contains("/order/multi/") || path.contains("/order/positions/exit") {
            ApiCategory::MultiOrder
        } else if (path.contains("/order/place") || path.contains("/order/modify") || path.contains("/order/cancel"))
            || (path.contains("/order/gtt") && method != "GET")
        {
            ApiCategory::Order
        } else {
            ApiCategory::Standard
        }
    }
}

/// One window: at most `max` requests in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowLimit {
    pub max: u32,
    #[serde(with = "secs")]
    pub window: Duration,
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// The windows of each category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimits {
    pub order: Vec<WindowLimit>,
    pub multi_order: Vec<WindowLimit>,
    pub standard: Vec<WindowLimit>,
}

impl RateLimits {
    /// The numbers Upstox publishes (post May 2025 circular; multi-order from the older page).
    pub fn published() -> Self {
        let w = |max, secs| WindowLimit {
            max,
            window: Duration::from_secs(secs),
        };
        Self {
            order: vec![w(10, 1), w(500, 60), w(2000, 1800)],
            multi_order: vec![w(4, 1), w(40, 60), w(160, 1800)],
            standard: vec![w(50, 1), w(500, 60), w(2000, 1800)],
        }
    }

    /// The windows of one category.
    pub fn for_category(&self, category: ApiCategory) -> &[WindowLimit] {
        match category {
            ApiCategory::Order => &self.order,
            ApiCategory::MultiOrder => &self.multi_order,
            ApiCategory::Standard => &self.standard,
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::published()
    }
}

/// A sliding-window counter over several windows at once.
///
/// It remembers the instants of admitted requests, at most as many as the largest window
/// allows, so its memory is bounded by the limits themselves.
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    limits: Vec<WindowLimit>,
    admitted: VecDeque<Instant>,
}

impl SlidingWindow {
    /// A counter enforcing every one of `limits`.
    pub fn new(limits: &[WindowLimit]) -> Self {
        Self {
            limits: limits.to_vec(),
            admitted: VecDeque::new(),
        }
    }

    /// How long to wait from `now` before one more request fits every window (zero when it fits now).
    pub fn wait_time(&self, now: Instant) -> Duration {
        let mut wait = Duration::ZERO;
        for limit in &self.limits {
            if limit.max == 0 {
                return limit.window;
            }
            let in_window = self
                .admitted
                .iter()
                .rev()
                .take_while(|t| now.saturating_duration_since(**t) < limit.window)
                .count();
            if in_window >= limit.max as usize {
                // The oldest request that must leave the window before one more fits.
                let idx = self.admitted.len() - limit.max as usize;
                let leaves_at = self.admitted[idx] + limit.window;
                wait = wait.max(leaves_at.saturating_duration_since(now));
            }
        }
        wait
    }

    /// Admits a request at `now` if every window has room; returns whether it did.
    pub fn try_admit(&mut self, now: Instant) -> bool {
        if !self.wait_time(now).is_zero() {
            return false;
        }
        self.admitted.push_back(now);
        let keep = self.limits.iter().map(|l| l.max as usize).max().unwrap_or(0);
        let longest = self.limits.iter().map(|l| l.window).max().unwrap_or_default();
        while self.admitted.len() > keep
            || self
                .admitted
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= longest)
        {
            self.admitted.pop_front();
        }
        true
    }

    /// Whether nothing was admitted within the longest window before `now` (the counter could
    /// be forgotten and made again without changing any decision).
    pub fn is_idle(&self, now: Instant) -> bool {
        let longest = self.limits.iter().map(|l| l.window).max().unwrap_or_default();
        self.admitted
            .back()
            .is_none_or(|t| now.saturating_duration_since(*t) >= longest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn categories_follow_the_paths() {
        assert_eq!(ApiCategory::of("POST", "/v3/order/place"), ApiCategory::Order);
        assert_eq!(
            ApiCategory::of("POST", "/v2/order/multi/place"),
            ApiCategory::MultiOrder
        );
        assert_eq!(ApiCategory::of("GET", "/v2/order/retrieve-all"), ApiCategory::Standard);
        assert_eq!(ApiCategory::of("GET", "/v3/market-quote/ltp"), ApiCategory::Standard);
    }

    #[test]
    fn eleventh_order_in_a_second_waits() {
        let mut w = SlidingWindow::new(&RateLimits::published().order);
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(w.try_admit(t0 + Duration::from_millis(i * 10)));
        }
        let t = t0 + Duration::from_millis(100);
        assert!(!w.try_admit(t));
        assert_eq!(w.wait_time(t), Duration::from_millis(900));
        assert!(w.try_admit(t0 + Duration::from_millis(1000)));
    }

    proptest! {
        /// Whatever the arrival pattern, no window ever holds more than its limit.
        #[test]
        fn never_more_than_the_limit_in_any_window(gaps in proptest::collection::vec(0u64..400, 1..200)) {
            let limits = [WindowLimit { max: 3, window: Duration::from_millis(1000) }, WindowLimit { max: 7, window: Duration::from_millis(5000) }];
            let mut w = SlidingWindow::new(&limits);
            let t0 = Instant::now();
            let mut now = t0;
            let mut admitted = Vec::new();
            for gap in gaps {
                now += Duration::from_millis(gap);
                if w.try_admit(now) {
                    admitted.push(now);
                } else {
                    prop_assert!(!w.wait_time(now).is_zero());
                }
            }
            for limit in limits {
                for (i, start) in admitted.iter().enumerate() {
                    let n = admitted[i..].iter().take_while(|t| t.duration_since(*start) < limit.window).count();
                    prop_assert!(n <= limit.max as usize);
                }
            }
        }
    }
}
