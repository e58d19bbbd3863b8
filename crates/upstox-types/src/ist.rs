//! India Standard Time and the 03:30 IST access-token expiry rule (api-facts §2.3).
//!
//! India has no daylight saving time, so IST is a fixed offset of +05:30.

use chrono::{DateTime, Days, FixedOffset, NaiveTime, TimeZone, Utc};

/// IST as a fixed offset (+05:30).
pub const IST: FixedOffset = match FixedOffset::east_opt(5 * 3600 + 1800) {
    Some(offset) => offset,
    None => panic!("+05:30 is a valid offset"),
};

/// The wall-clock time at which every access token dies.
pub const TOKEN_EXPIRY_TIME: NaiveTime = match NaiveTime::from_hms_opt(3, 30, 0) {
    Some(t) => t,
    None => panic!("03:30 is a valid time"),
};

/// When a token issued at `issued_at` expires: the first 03:30 IST strictly after it.
///
/// A token issued at 20:00 on Tuesday dies at 03:30 on Wednesday; one issued at 02:30 on
/// Wednesday dies an hour later, at 03:30 the same Wednesday.
pub fn token_expiry(issued_at: DateTime<Utc>) -> DateTime<Utc> {
    let local = issued_at.with_timezone(&IST);
    let today_cutoff = local.date_naive().and_time(TOKEN_EXPIRY_TIME);
    let cutoff = if local.naive_local() < today_cutoff {
        today_cutoff
    } else {
        today_cutoff + Days::new(1)
    };
    match IST.from_local_datetime(&cutoff).single() {
        Some(t) => t.with_timezone(&Utc),
        // A fixed offset maps every local time to exactly one instant.
        None => issued_at,
    }
}

/// Formats an instant as Upstox's order timestamp: `YYYY-MM-DD HH:MM:SS` in IST.
pub fn order_timestamp(t: DateTime<Utc>) -> String {
    t.with_timezone(&IST).format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ist(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_str(&format!("{s} +0530"), "%Y-%m-%d %H:%M:%S %z")
            .expect("test timestamp")
            .with_timezone(&Utc)
    }

    #[test]
    fn evening_token_dies_next_morning() {
        assert_eq!(token_expiry(ist("2026-11-24 20:00:00")), ist("2026-11-25 03:30:00"));
    }

    #[test]
    fn early_morning_token_dies_same_morning() {
        assert_eq!(token_expiry(ist("2026-11-25 02:30:00")), ist("2026-11-25 03:30:00"));
    }

    #[test]
    fn token_issued_exactly_at_cutoff_lives_a_day() {
        assert_eq!(token_expiry(ist("2026-11-25 03:30:00")), ist("2026-11-26 03:30:00"));
    }

    proptest! {
        #[test]
        fn expiry_is_next_0330_within_a_day(secs in 0i64..4_000_000_000) {
            let issued = DateTime::<Utc>::from_timestamp(secs, 0).expect("in range");
            let expiry = token_expiry(issued);
            prop_assert!(expiry > issued);
            prop_assert!(expiry - issued <= chrono::Duration::hours(24));
            prop_assert_eq!(expiry.with_timezone(&IST).time(), TOKEN_EXPIRY_TIME);
        }
    }
}
