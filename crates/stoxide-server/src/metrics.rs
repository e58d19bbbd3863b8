//! Prometheus metrics at `/metrics`: counters kept here and rendered in the text exposition
//! format. No account data: no user ids, no tokens — only totals and endpoint names.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// An endpoint label with bounded cardinality: at most four path segments, cut at the first one
/// that looks like an id or an instrument key (`GET /v3/historical-candle/intraday/NSE_EQ|…` →
/// `GET /v3/historical-candle/intraday`).
pub fn endpoint_label(method: &str, path: &str) -> String {
    let looks_like_id = |s: &str| s.chars().any(|c| c.is_ascii_digit() || c == '|' || c == '%');
    let kept: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .enumerate()
        .take_while(|(i, s)| *i == 0 || !looks_like_id(s))
        .map(|(_, s)| s)
        .take(4)
        .collect();
    format!("{method} /{}", kept.join("/"))
}

/// The dashboard's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    pub ticks: AtomicU64,
    pub reconnects: AtomicU64,
    pub sse_clients: AtomicU64,
    /// (endpoint, status) → calls.
    rest: Mutex<BTreeMap<(String, String), u64>>,
    /// Seconds spent waiting in the client-side rate limiter, in milliseconds.
    pub rate_limit_wait_ms: AtomicU64,
    /// Ticks per second over the last second, updated by the stream hub.
    pub ticks_per_second: AtomicU64,
}

impl Metrics {
    /// Counts one REST call by endpoint and outcome (`200`, `401`, `error`).
    pub fn rest_call(&self, endpoint: &str, status: &str) {
        *self
            .rest
            .lock()
            .entry((endpoint.to_owned(), status.to_owned()))
            .or_default() += 1;
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, kind: &str, value: u64| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
        };
        counter(
            "stoxide_ticks_total",
            "Market ticks received by the dashboard's stream.",
            "counter",
            self.ticks.load(Ordering::Relaxed),
        );
        counter(
            "stoxide_ticks_per_second",
            "Ticks received over the last second.",
            "gauge",
            self.ticks_per_second.load(Ordering::Relaxed),
        );
        counter(
            "stoxide_feed_reconnects_total",
            "Market feed reconnect attempts.",
            "counter",
            self.reconnects.load(Ordering::Relaxed),
        );
        counter(
            "stoxide_sse_clients",
            "Browsers connected to the live event stream.",
            "gauge",
            self.sse_clients.load(Ordering::Relaxed),
        );
        let waits = self.rate_limit_wait_ms.load(Ordering::Relaxed);
        out.push_str(&format!(
            "# HELP stoxide_rate_limit_wait_seconds_total Time REST calls waited in the client-side rate limiter.\n# TYPE stoxide_rate_limit_wait_seconds_total counter\nstoxide_rate_limit_wait_seconds_total {}\n",
            waits as f64 / 1000.0
        ));
        out.push_str("# HELP stoxide_rest_calls_total REST calls to Upstox by endpoint and HTTP status.\n# TYPE stoxide_rest_calls_total counter\n");
        for ((endpoint, status), n) in self.rest.lock().iter() {
            out.push_str(&format!(
                "stoxide_rest_calls_total{{endpoint=\"{}\",status=\"{}\"}} {n}\n",
                endpoint.replace('\\', "\\\\").replace('"', "\\\""),
                status
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_few_labels() {
        assert_eq!(endpoint_label("GET", "/v2/user/profile"), "GET /v2/user/profile");
        assert_eq!(
            endpoint_label("GET", "/v3/historical-candle/intraday/NSE_EQ%7CINE/minutes/1"),
            "GET /v3/historical-candle/intraday"
        );
        assert_eq!(
            endpoint_label("POST", "/v3/login/auth/token/request/abc-123"),
            "POST /v3/login/auth/token"
        );
        assert_eq!(
            endpoint_label("POST", "/v2/login/authorization/token"),
            "POST /v2/login/authorization/token"
        );
        let m = Metrics::default();
        m.rest_call("GET /v2/user/profile", "200");
        m.rest_call("GET /v2/user/profile", "200");
        assert!(
            m.render()
                .contains("stoxide_rest_calls_total{endpoint=\"GET /v2/user/profile\",status=\"200\"} 2")
        );
    }
}
