//! The simulator's clock: the wall clock, or a trading-day session anchored on the latest
//! weekday so the market is open whenever the simulator runs. Tests move it forward with
//! `POST /sim/clock` to watch tokens hit 03:30 IST.

use std::time::Instant;

use chrono::{DateTime, Datelike, Days, NaiveTime, TimeZone, Utc, Weekday};
use parking_lot::Mutex;
use upstox_types::IST;

use crate::config::{ClockConfig, ClockMode};
use crate::error::SimError;

/// The simulated clock stays within these years, so every date computation stays in range.
pub const EARLIEST_YEAR: i32 = 2000;
/// The first year the clock may not reach.
pub const LATEST_YEAR: i32 = 2200;
/// The fastest a simulated clock may run.
pub const MAX_SPEED: f64 = 1_000_000.0;

/// A clock change out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ClockError(String);

fn earliest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(EARLIEST_YEAR, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn latest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(LATEST_YEAR, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn in_range(t: DateTime<Utc>) -> Result<DateTime<Utc>, ClockError> {
    if t < earliest() || t >= latest() {
        return Err(ClockError(format!(
            "the simulated clock must stay between {EARLIEST_YEAR}-01-01 and {LATEST_YEAR}-01-01, not {}",
            t.to_rfc3339()
        )));
    }
    Ok(t)
}

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
        if !(config.speed.is_finite() && config.speed > 0.0 && config.speed <= MAX_SPEED) {
            return Err(SimError::Config(format!(
                "clock.speed must be a positive number up to {MAX_SPEED}, not {}",
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

    /// The simulated now (never past the clock's range, however long it runs).
    pub fn now(&self) -> DateTime<Utc> {
        Self::now_of(&self.inner.lock())
    }

    fn now_of(s: &ClockState) -> DateTime<Utc> {
        let elapsed_us = (s.real_anchor.elapsed().as_secs_f64() * s.speed * 1e6).min(i64::MAX as f64) as i64;
        s.sim_anchor
            .checked_add_signed(chrono::Duration::microseconds(elapsed_us))
            .map_or_else(latest, |t| t.min(latest()))
    }

    /// Moves simulated time forward (or back, with a negative amount).
    ///
    /// # Errors
    /// A move that would leave the clock's range; the clock is unchanged then.
    pub fn advance_secs(&self, secs: i64) -> Result<(), ClockError> {
        let by = chrono::Duration::try_seconds(secs).ok_or_else(|| {
            ClockError(format!(
                "advance_secs {secs} would move the simulated clock out of range"
            ))
        })?;
        let mut s = self.inner.lock();
        let to = Self::now_of(&s).checked_add_signed(by).ok_or_else(|| {
            ClockError(format!(
                "advance_secs {secs} would move the simulated clock out of range"
            ))
        })?;
        s.sim_anchor = in_range(to)?;
        s.real_anchor = Instant::now();
        Ok(())
    }

    /// Jumps to an instant.
    ///
    /// # Errors
    /// An instant outside the clock's range; the clock is unchanged then.
    pub fn set(&self, to: DateTime<Utc>) -> Result<(), ClockError> {
        let to = in_range(to)?;
        let mut s = self.inner.lock();
        s.sim_anchor = to;
        s.real_anchor = Instant::now();
        Ok(())
    }
}

/// `HH:MM` IST on `now`'s IST date, or the Monday after it when that is a weekend.
fn session_anchor(now: DateTime<Utc>, start: &str) -> Result<DateTime<Utc>, SimError> {
    let time = NaiveTime::parse_from_str(start, "%H:%M")
        .map_err(|_| SimError::Config(format!("clock.session_start must be HH:MM, not {start:?}")))?;
    // A weekend moves forward to Monday, never back to Friday: the simulated day is then never
    // behind the wall clock's, so a token it issues (valid until 03:30 IST after its day) is
    // valid by the wall clock too, as clients judge it.
    let mut date = now.with_timezone(&IST).date_naive();
    while matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
        date = date + Days::new(1);
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
        clock.advance_secs(2 * 3600).expect("two hours");
        assert_eq!(clock.now().with_timezone(&IST).format("%H:%M").to_string(), "12:00");
        let before = clock.now();
        assert!(clock.advance_secs(i64::MAX).is_err());
        assert!(
            clock.advance_secs(300 * 365 * 86_400).is_err(),
            "past the clock's range"
        );
        assert!(clock.set(DateTime::<Utc>::MAX_UTC).is_err());
        assert!(
            clock.now() >= before && clock.now() < before + chrono::Duration::minutes(1),
            "unchanged"
        );
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
