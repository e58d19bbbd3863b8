//! Simulator configuration: seeded apps and users, the clock, faults, rate limits and the
//! market's structure. Everything has a sensible default; a TOML file overrides any part.

use std::path::Path;

use serde::{Deserialize, Serialize};
use upstox_types::{FeedCaps, RateLimits};

use crate::error::SimError;

/// At most this many seeded users (`seed_users`).
pub const MAX_SEED_USERS: usize = 100_000;

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of the price process and of everything random that must repeat.
    pub seed: u64,
    pub clock: ClockConfig,
    pub apps: Vec<AppConfig>,
    pub users: Vec<UserConfig>,
    pub faults: FaultConfig,
    pub rate_limits: RateLimits,
    pub market: MarketConfig,
    /// Milliseconds after which a v3 access-token request is approved by the simulated user
    /// (`None`: wait for `POST /sim/token-requests/{id}/approve`).
    pub token_request_auto_approve_ms: Option<u64>,
    /// How often the paper engine re-checks open orders against prices.
    pub matcher_interval_ms: u64,
    pub feed: FeedConfig,
    /// Algo names accepted in `X-Algo-Name` on order APIs (`None`: any; an absent header is
    /// always accepted, as for unregistered algos).
    pub algo_names: Option<Vec<String>>,
    /// Extra users `SIMU00001`, `SIMU00002`, … each with a token of the first app and
    /// ₹1,000,000, for tests and benchmarks with many accounts.
    pub seed_users: usize,
    /// The number of the first seeded user (`SIMU{seed_first:05}`): several simulators seed
    /// disjoint users, as several brokers' worth of accounts.
    pub seed_first: usize,
}

/// The WebSocket feeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedConfig {
    /// How often the market feed looks for changed instruments and sends a `live_feed` frame.
    pub tick_interval_ms: u64,
    /// At most this many instruments per `live_feed` frame (0: no limit); a smaller number
    /// means more, smaller frames (a busy expiry day is many small frames).
    pub max_keys_per_frame: usize,
    /// A ping is sent after this long without any frame.
    pub ping_idle_ms: u64,
    /// Market-data connections per user (2 standard, 5 on Upstox Plus).
    pub max_connections_per_user: usize,
    /// How long an authorized URI stays usable (it is single-use in any case).
    pub authorized_uri_ttl_secs: u64,
    /// Probability per second that a connection is dropped without a close frame.
    pub random_drop_per_sec: f64,
    pub caps: FeedCaps,
    /// A recording of send times, for measuring a client's latency to the microsecond: one line
    /// per market-data frame as it is handed to the socket, `send_ns<TAB>currentTs<TAB>key<TAB>key…`
    /// (`send_ns`: nanoseconds since the Unix epoch by this machine's clock, which another
    /// process on the same machine reads alike). Nothing goes on the wire that the real server
    /// does not send.
    #[serde(default)]
    pub send_log: Option<std::path::PathBuf>,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            tick_interval_ms: 250,
            max_keys_per_frame: 0,
            ping_idle_ms: 10_000,
            max_connections_per_user: 2,
            authorized_uri_ttl_secs: 60,
            random_drop_per_sec: 0.0,
            caps: FeedCaps::default(),
            send_log: None,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            clock: ClockConfig::default(),
            apps: vec![
                AppConfig {
                    client_id: "sim-app-1".into(),
                    client_secret: "sim-secret-1".into(),
                    redirect_uri: "http://127.0.0.1:5055/callback".into(),
                    // Where `stoxide login --request` listens by default.
                    notifier_url: Some("http://127.0.0.1:5057/upstox/notifier".into()),
                    feed_enabled: true,
                    extended_token: false,
                    static_ips: None,
                },
                AppConfig {
                    client_id: "sim-vendor-app".into(),
                    client_secret: "sim-vendor-secret".into(),
                    redirect_uri: "http://127.0.0.1:5056/callback".into(),
                    notifier_url: None,
                    feed_enabled: true,
                    extended_token: true,
                    static_ips: None,
                },
            ],
            users: vec![
                UserConfig::new("SIM001", "Asha Rao", "123456", 1_000_000.0, Some("sim-app-1")),
                UserConfig::new("SIM002", "Vikram Shah", "234567", 250_000.0, Some("sim-vendor-app")),
                UserConfig::new("SIM003", "Meera Iyer", "345678", 50_000.0, Some("sim-vendor-app")),
            ],
            faults: FaultConfig::default(),
            rate_limits: RateLimits::published(),
            market: MarketConfig::default(),
            token_request_auto_approve_ms: Some(500),
            matcher_interval_ms: 200,
            feed: FeedConfig::default(),
            algo_names: None,
            seed_users: 0,
            seed_first: 1,
        }
    }
}

impl SimConfig {
    /// Reads a TOML file over the defaults.
    ///
    /// # Errors
    /// When the file cannot be read or is not valid configuration; the message names the file
    /// and the offending key.
    pub fn from_file(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SimError::Config(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|e| SimError::Config(format!("{}: {e}", path.display())))
    }

    /// Parses TOML over the defaults.
    ///
    /// # Errors
    /// When the text is not valid configuration.
    pub fn from_toml(text: &str) -> Result<Self, SimError> {
        let config: SimConfig = toml::from_str(text).map_err(|e| SimError::Config(e.message().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks cross-references (users' apps exist, ids unique) and the faults' ranges.
    ///
    /// # Errors
    /// Names the first inconsistency.
    pub fn validate(&self) -> Result<(), SimError> {
        self.faults.validate()?;
        for user in &self.users {
            if let Some(app) = &user.app
                && !self.apps.iter().any(|a| &a.client_id == app)
            {
                return Err(SimError::Config(format!(
                    "user {} names app {app:?}, which is not in [[apps]]",
                    user.user_id
                )));
            }
        }
        for (i, a) in self.apps.iter().enumerate() {
            if self.apps[..i].iter().any(|b| b.client_id == a.client_id) {
                return Err(SimError::Config(format!("app {:?} is defined twice", a.client_id)));
            }
        }
        for (i, u) in self.users.iter().enumerate() {
            if self.users[..i].iter().any(|b| b.user_id == u.user_id) {
                return Err(SimError::Config(format!("user {:?} is defined twice", u.user_id)));
            }
        }
        if self.seed_users > MAX_SEED_USERS {
            return Err(SimError::Config(format!(
                "seed_users must be at most {MAX_SEED_USERS}, not {}",
                self.seed_users
            )));
        }
        if self.seed_first == 0 || self.seed_first.saturating_add(self.seed_users) > MAX_SEED_USERS + 1 {
            return Err(SimError::Config(format!(
                "seeded users are numbered 1 to {MAX_SEED_USERS}: seed_first {} with seed_users {} goes past them",
                self.seed_first, self.seed_users
            )));
        }
        if self.seed_users > 0
            && let Some(u) = self.users.iter().find(|u| u.user_id.starts_with("SIMU"))
        {
            return Err(SimError::Config(format!(
                "user {:?} uses the SIMU prefix kept for seed_users; rename it or set seed_users = 0",
                u.user_id
            )));
        }
        if self.seed_users > 0 && self.apps.is_empty() {
            return Err(SimError::Config("seed_users needs at least one app in [[apps]]".into()));
        }
        Ok(())
    }
}

/// How the simulator tells time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockConfig {
    /// `real`: the wall clock. `session`: a trading-day session that starts at `session_start`
    /// IST today (the coming Monday at a weekend), so the market is open whenever the simulator
    /// runs.
    pub mode: ClockMode,
    /// IST time of day at which a `session` clock starts (HH:MM).
    pub session_start: String,
    /// How fast simulated time runs relative to real time.
    pub speed: f64,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            mode: ClockMode::Session,
            session_start: "10:00".into(),
            speed: 1.0,
        }
    }
}

/// Clock modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockMode {
    Real,
    Session,
}

/// A registered API app.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    /// Where v3 access-token requests deliver the token.
    #[serde(default)]
    pub notifier_url: Option<String>,
    /// Whether the app may open market-data feeds (403 otherwise).
    #[serde(default = "yes")]
    pub feed_enabled: bool,
    /// Whether token exchange also issues an extended token.
    #[serde(default)]
    pub extended_token: bool,
    /// When set, order APIs answer only requests from these addresses (`UDAPI1154`).
    #[serde(default)]
    pub static_ips: Option<Vec<std::net::IpAddr>>,
}

fn yes() -> bool {
    true
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .field("notifier_url", &self.notifier_url)
            .field("feed_enabled", &self.feed_enabled)
            .field("extended_token", &self.extended_token)
            .finish()
    }
}

/// A seeded user.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub user_id: String,
    pub user_name: String,
    pub pin: String,
    /// Opening cash balance in rupees.
    pub funds: f64,
    /// The app whose token is pre-issued at start (printed in the banner).
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// The exchanges the account is cleared for (the profile's `exchanges`); every one when
    /// not given.
    #[serde(default)]
    pub exchanges: Option<Vec<String>>,
}

impl UserConfig {
    /// A user of the first app (or `app`) with these details and no email.
    pub fn new(user_id: &str, user_name: &str, pin: &str, funds: f64, app: Option<&str>) -> Self {
        Self {
            user_id: user_id.into(),
            user_name: user_name.into(),
            pin: pin.into(),
            funds,
            app: app.map(Into::into),
            email: None,
            exchanges: None,
        }
    }
}

impl std::fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field("user_id", &self.user_id)
            .field("user_name", &self.user_name)
            .field("pin", &"<redacted>")
            .field("funds", &self.funds)
            .field("app", &self.app)
            .finish()
    }
}

/// Injected latency and failures, for testing clients.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Added to every API response.
    pub latency_ms: u64,
    /// Extra random latency, uniform in 0..jitter.
    pub latency_jitter_ms: u64,
    /// Fraction of API requests answered 500 before any processing.
    pub error_rate: f64,
    /// Fraction of API requests that hang (until `timeout_hang_ms`) before any processing.
    pub timeout_rate: f64,
    /// Fraction of write requests (POST/PUT/DELETE) processed but whose response is lost (500 after the work is done):
    /// the case where a client cannot know whether its order was placed.
    pub lost_response_rate: f64,
    /// Fraction of write requests (POST/PUT/DELETE) answered 500 before any processing: an order
    /// that never reached the exchange, while reads keep working.
    pub write_error_rate: f64,
    /// Fraction of API requests answered 429 (`UDAPI10005`) before any processing, beside the
    /// real per-user limits: the bursts a busy gateway sends.
    #[serde(default)]
    pub rate_limited_rate: f64,
    /// How long a hanging request hangs.
    pub timeout_hang_ms: u64,
    /// Fraction of write requests (POST/PUT/DELETE) that reach the exchange late: each is
    /// carried out `late_write_ms` after it arrived, whether or not the caller is still waiting
    /// — the place a client gave up on (its timeout) that shows up in the order book seconds
    /// later.
    #[serde(default)]
    pub late_write_rate: f64,
    /// How late a late write is carried out.
    #[serde(default)]
    pub late_write_ms: u64,
}

/// The longest latency (and jitter) a fault may add: a minute.
pub const MAX_FAULT_LATENCY_MS: u64 = 60_000;
/// The longest a hanging request may hang: ten minutes.
pub const MAX_FAULT_HANG_MS: u64 = 600_000;

impl FaultConfig {
    /// The one set of rules for faults, whether they come from the config file, the
    /// `stoxide sim` flags or `POST /sim/faults`: rates are fractions in 0..=1, latencies at
    /// most [`MAX_FAULT_LATENCY_MS`], hangs at most [`MAX_FAULT_HANG_MS`].
    ///
    /// # Errors
    /// Names the first field out of range.
    pub fn validate(&self) -> Result<(), SimError> {
        let rates = [
            ("error_rate", self.error_rate),
            ("timeout_rate", self.timeout_rate),
            ("lost_response_rate", self.lost_response_rate),
            ("write_error_rate", self.write_error_rate),
            ("rate_limited_rate", self.rate_limited_rate),
            ("late_write_rate", self.late_write_rate),
        ];
        for (name, rate) in rates {
            if !(rate.is_finite() && (0.0..=1.0).contains(&rate)) {
                return Err(SimError::Config(format!(
                    "faults.{name} must be a fraction between 0 and 1, not {rate}"
                )));
            }
        }
        for (name, ms, max) in [
            ("latency_ms", self.latency_ms, MAX_FAULT_LATENCY_MS),
            ("latency_jitter_ms", self.latency_jitter_ms, MAX_FAULT_LATENCY_MS),
            ("timeout_hang_ms", self.timeout_hang_ms, MAX_FAULT_HANG_MS),
            ("late_write_ms", self.late_write_ms, MAX_FAULT_HANG_MS),
        ] {
            if ms > max {
                return Err(SimError::Config(format!(
                    "faults.{name} must be at most {max} ms, not {ms}"
                )));
            }
        }
        Ok(())
    }
}

/// The market's structure (data from market-facts; defaults in `data/market.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketConfig {
    pub risk_free_rate: f64,
    pub index_daily_vol: f64,
    pub stock_daily_vol_min: f64,
    pub stock_daily_vol_max: f64,
    pub smile_curvature: f64,
    pub smile_skew: f64,
    pub equities: usize,
    pub index_strikes_each_side: u32,
    pub stock_strikes_each_side: u32,
    pub stock_fo_count: usize,
    pub monthly_expiries: usize,
    pub weekly_expiries: usize,
    /// Exchange holidays (every exchange closed): `"YYYY-MM-DD"`, or
    /// `{ date = "YYYY-MM-DD", description = "…" }` for the name `/v2/market/holidays` shows.
    pub holidays: Vec<HolidayEntry>,
    pub sessions: SessionsConfig,
    pub margins: MarginConfig,
    /// Brokerage, taxes and fees (`GET /v2/charges/brokerage`); Upstox's schedule by default.
    #[serde(default)]
    pub charges: crate::charges::ChargesConfig,
    pub indices: Vec<IndexConfig>,
    pub commodities: Vec<CommodityConfig>,
}

/// One exchange holiday of the market's configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum HolidayEntry {
    Date(String),
    Named { date: String, description: String },
}

impl HolidayEntry {
    /// The date as written.
    pub fn date(&self) -> &str {
        match self {
            Self::Date(d) | Self::Named { date: d, .. } => d,
        }
    }

    /// The name, when one was given.
    pub fn description(&self) -> Option<&str> {
        match self {
            Self::Date(_) => None,
            Self::Named { description, .. } => Some(description),
        }
    }
}

/// The market data bundled with the simulator.
pub const DEFAULT_MARKET_TOML: &str = include_str!("../data/market.toml");

impl Default for MarketConfig {
    fn default() -> Self {
        match toml::from_str(DEFAULT_MARKET_TOML) {
            Ok(m) => m,
            // The bundled file is checked by a unit test; this is unreachable in a build that passed it.
            Err(e) => panic!("bundled data/market.toml is invalid: {e}"),
        }
    }
}

/// Session times, IST `HH:MM`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    pub equity_pre_open: String,
    pub equity_pre_open_end: String,
    pub equity_open: String,
    pub equity_close: String,
    pub closing_start: String,
    pub closing_end: String,
    pub mcx_open: String,
    pub mcx_close: String,
}

/// Margin fractions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarginConfig {
    pub intraday_equity: f64,
    pub delivery_equity: f64,
    pub futures: f64,
    pub option_sell: f64,
    pub option_buy: f64,
    pub commodity: f64,
}

/// An index, and its derivatives when `lot` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    pub key: String,
    pub name: String,
    pub symbol: String,
    pub base: f64,
    #[serde(default)]
    pub lot: Option<u32>,
    #[serde(default)]
    pub strike_step: Option<u32>,
    #[serde(default)]
    pub weekly_weekday: Option<String>,
    #[serde(default)]
    pub monthly_weekday: Option<String>,
    #[serde(default)]
    pub freeze_quantity: Option<u32>,
}

/// An MCX commodity with monthly futures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommodityConfig {
    pub symbol: String,
    pub name: String,
    pub base: f64,
    pub lot: u32,
    pub tick_paise: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_market_data_parses() {
        let m: MarketConfig = toml::from_str(DEFAULT_MARKET_TOML).expect("bundled market.toml");
        assert!(
            m.indices
                .iter()
                .any(|i| i.key == "NSE_INDEX|Nifty 50" && i.lot == Some(65))
        );
    }

    #[test]
    fn config_file_overrides_and_rejects_unknown_keys() {
        let c = SimConfig::from_toml("seed = 7\n[clock]\nmode = \"real\"\n").expect("valid");
        assert_eq!(c.seed, 7);
        assert_eq!(c.clock.mode, ClockMode::Real);
        let err = SimConfig::from_toml("sede = 7").expect_err("typo");
        assert!(err.to_string().contains("sede"), "{err}");
    }

    #[test]
    fn debug_hides_secrets() {
        let c = SimConfig::default();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("sim-secret-1") && !dbg.contains("123456"), "{dbg}");
    }
}
