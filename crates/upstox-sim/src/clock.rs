//! The simulator's clock: the wall clock, or a trading-day session anchored on the latest
//! weekday so the market is open whenever the simulator runs. Tests move it forward with
//! `POST /sim/clock` to watch tokens hit 03:30 IST.

use std::time::Instant;

use chrono::{DateTime, Datelike, Days, NaiveTime, TimeZone, Utc, Weekday};
use parking_lot::Mutex;
use upstox_types::IST;

use crate::config::{ClockConfig, ClockMode};
use crate::error::SimError;

/// A clock that can be read concurrently and moved by control requests.
#[derive(Debug)]
pub struct SimClock {
    inner: Mutex<ClockState>,
}

#[derive(Debug, Clone, Copy)]
struct ClockState {
    /// Simulated instant at `real_anchor`.
    sim_anchor: DateTime<Utc>,
    real_anchor: Instant,
    speed: f64,
}

impl SimClock {
    /// A clock as configured, anchored now.
    ///
    /// # Errors
    /// When `session_start` is not `HH:MM`.
    pub fn new(config: &ClockConfig) -> Result<Self, SimError> {
        let now = Utc::now();
        let sim_anchor = match config.mode {
            ClockMode::Real => now,
            ClockMode::Session => session_anchor(now, &config.session_start)?,
        };
        if !(config.speed.is_finite() && config.speed > 0.0) {
            return Err(SimError::Config(format!(
                "clock.speed must be a positive number, not {}",
                config.speed
            )));
        }
        Ok(Self {
            inner: Mutex::new(ClockState {
                sim_anchor,
                real_anchor: Instant::now(),
                speed: config.speed,
            }),
        })
    }

    /// The simulated now.
    pub fn now(&self) -> DateTime<Utc> {
        let s = *self.inner.lock();
        let elapsed = s.real_anchor.elapsed().as_secs_f64() * s.speed;
        s.sim_anchor + chrono::Duration::microseconds((elapsed * 1e6) as i64)
    }

    /// Moves simulated time forward (or back, with a negative amount).
    pub fn advance(&self, by: chrono::Duration) {
        let mut s = self.inner.lock();
        let now_sim = {
            let elapsed = s.real_anchor.elapsed().as_secs_f64() * s.speed;
            s.sim_anchor + chrono::Duration::microseconds((elapsed * 1e6) as i64)
        };
        s.sim_anchor = now_sim + by;
        s.real_anchor = Instant::now();
    }

    /// Jumps to an instant.
    pub fn set(&self, to: DateTime<Utc>) {
        let mut s = self.inner.lock();
        s.sim_anchor = to;
        s.real_anchor = Instant::now();
    }
}

/// `HH:MM` IST on the latest weekday at or before `now`'s IST date.
fn session_anchor(now: DateTime<Utc>, start: &str) -> Result<DateTime<Utc>, SimError> {
    let time = NaiveTime::parse_from_str(start, "%H:%M")
        .map_err(|_| SimError::Config(format!("clock.session_start must be HH:MM, not {start:?}")))?;
    let mut date = now.with_timezone(&IST).date_naive();
    while matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
        date = date - Days::new(1);
    }
    IST.from_local_datetime(&date.and_time(time))
        .single()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| SimError::Config(format!("clock.session_start {start:?} is not a valid IST time")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_clock_starts_on_a_weekday_at_the_configured_time() {
        let clock = SimClock::new(&ClockConfig::default()).expect("clock");
        let now = clock.now().with_timezone(&IST);
        assert!(!matches!(now.weekday(), Weekday::Sat | Weekday::Sun));
        assert_eq!(now.format("%H:%M").to_string(), "10:00");
        clock.advance(chrono::Duration::hours(2));
        assert_eq!(clock.now().with_timezone(&IST).format("%H:%M").to_string(), "12:00");
    }

    #[test]
    fn bad_session_start_is_a_config_error() {
        let config = ClockConfig {
            session_start: "ten".into(),
            ..ClockConfig::default()
        };
        assert!(SimClock::new(&config).is_err());
    }
}
