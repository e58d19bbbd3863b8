//! `stoxide-redis`: each user's rate-limit windows (per API category, Upstox's 1 s / 1 min /
//! 30 min numbers) kept in Redis for every engine node at once.
//!
//! One request is one round trip: a Lua script checks every window of the (user, category)
//! budget and counts the request in all of them only if it fits them all, on Redis's own clock
//! (so nodes' clocks do not matter). Each window is a sorted set of request stamps that expires
//! with its window. When Redis cannot be asked (down, or slower than the timeout), the answer is
//! an error, and [`upstox_client::RateLimiter::shared`] keeps that node to its own conservative
//! share — never to no limit at all.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use upstox_client::{Admission, LimitKey, SharedBudgetError, SharedBudgets};
use upstox_types::{ApiCategory, WindowLimit};

/// Checks every window (KEYS[i]: its sorted set; ARGV[2i+1], ARGV[2i+2]: its maximum and length
/// in ms) at Redis's time; counts the request (member ARGV[1]) in all of them if it fits all,
/// answering 0, else the ms until it may fit.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local max = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if n >= max then
    local oldest = redis.call('ZRANGE', key, n - max, n - max, 'WITHSCORES')
    local free = tonumber(oldest[2]) + window - now
    if free > wait then wait = free end
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1] .. ':' .. now)
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i + 1]))
end
return 0
";

/// How long one admission may take before the node falls back to its own share.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// The budgets in Redis. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisBudgets {
    client: redis::Client,
    /// Connected on first use and kept (it reconnects by itself).
    connection: Arc<tokio::sync::Mutex<Option<ConnectionManager>>>,
    script: Arc<redis::Script>,
    /// Keys start with it: `{prefix}:{user}:{category}:{window}`.
    prefix: String,
    timeout: Duration,
    /// After a failure Redis is not asked again until then (each request would otherwise pay
    /// the timeout while it is away).
    resting_until: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
}

/// How long a node keeps to its own share after Redis failed, before asking it again.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);

impl std::fmt::Debug for RedisBudgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: only where the keys live is shown.
        f.debug_struct("RedisBudgets")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The Redis URL is not one.
#[derive(Debug, thiserror::Error)]
#[error("STOXIDE_REDIS_URL is not a Redis URL (redis://host:port/db): {0}")]
pub struct BadUrl(String);

impl RedisBudgets {
    /// Budgets at `url` (`redis://127.0.0.1:6379/0`), under keys starting with `prefix`. Nothing
    /// is connected until the first request.
    ///
    /// # Errors
    /// A URL that is not a Redis URL.
    pub fn new(url: &str, prefix: &str) -> Result<Self, BadUrl> {
        let client = redis::Client::open(url).map_err(|e| BadUrl(e.to_string()))?;
        Ok(Self {
            client,
            connection: Arc::default(),
            script: Arc::new(redis::Script::new(ADMIT)),
            prefix: prefix.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            resting_until: Arc::default(),
        })
    }

    /// The longest one admission may take (else the node keeps to its own share).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn connection(&self) -> Result<ConnectionManager, SharedBudgetError> {
        let mut slot = self.connection.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = self
            .client
            .get_connection_manager()
            .await
            .map_err(|e| SharedBudgetError(format!("cannot connect to Redis: {e}")))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    fn category_name(c: ApiCategory) -> &'static str {
        match c {
            ApiCategory::Order => "order",
            ApiCategory::MultiOrder => "multi",
            ApiCategory::Standard => "standard",
        }
    }

    async fn admit(
        &self,
        key: &LimitKey,
        category: ApiCategory,
        windows: &[WindowLimit],
    ) -> Result<Option<Duration>, SharedBudgetError> {
        if windows.is_empty() {
            return Ok(None);
        }
        let mut con = self.connection().await?;
        let mut call = self.script.prepare_invoke();
        let base = format!("{}:{}:{}", self.prefix, key.id(), Self::category_name(category));
        for i in 0..windows.len() {
            call.key(format!("{base}:{i}"));
        }
        call.arg(format!("{:016x}", rand::random::<u64>()));
        for w in windows {
            call.arg(w.max)
                .arg(u64::try_from(w.window.as_millis()).unwrap_or(u64::MAX));
        }
        let wait_ms: i64 = call
            .invoke_async(&mut con)
            .await
            .map_err(|e| SharedBudgetError(format!("Redis: {e}")))?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms.unsigned_abs())))
    }
}

impl SharedBudgets for RedisBudgets {
    fn try_admit<'a>(&'a self, key: &'a LimitKey, category: ApiCategory, windows: &'a [WindowLimit]) -> Admission<'a> {
        Box::pin(async move {
            let now = tokio::time::Instant::now();
            let resting = |slot: &std::sync::Mutex<Option<tokio::time::Instant>>| {
                slot.lock().ok().and_then(|s| *s).is_some_and(|until| now < until)
            };
            if resting(&self.resting_until) {
                return Err(SharedBudgetError(
                    "Redis failed a moment ago; asked again shortly".into(),
                ));
            }
            let answer = tokio::time::timeout(self.timeout, self.admit(key, category, windows))
                .await
                .map_err(|_| SharedBudgetError(format!("Redis did not answer within {:?}", self.timeout)))
                .and_then(|r| r);
            if answer.is_err()
                && let Ok(mut slot) = self.resting_until.lock()
            {
                *slot = Some(now + RETRY_AFTER);
            }
            answer
        })
    }
}
