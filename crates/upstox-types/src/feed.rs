//! Market Data Feed v3 subscription modes and the per-connection caps (api-facts §9.3), shared
//! by the simulator (which drops keys over a cap silently, as the real server does) and the
//! streamer (which refuses them with a clear error instead).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A subscription mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FeedMode {
    #[serde(rename = "ltpc")]
    Ltpc,
    #[serde(rename = "option_greeks")]
    OptionGreeks,
    #[serde(rename = "full")]
    Full,
    #[serde(rename = "full_d30")]
    FullD30,
}

impl FeedMode {
    pub const ALL: [FeedMode; 4] = [
        FeedMode::Ltpc,
        FeedMode::OptionGreeks,
        FeedMode::Full,
        FeedMode::FullD30,
    ];

    /// The spelling in `sub` / `change_mode` requests.
    pub const fn as_str(self) -> &'static str {
        match self {
            FeedMode::Ltpc => "ltpc",
            FeedMode::OptionGreeks => "option_greeks",
            FeedMode::Full => "full",
            FeedMode::FullD30 => "full_d30",
        }
    }

    /// Index into per-mode arrays.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for FeedMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FeedMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FeedMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a feed mode: use ltpc, option_greeks, full or full_d30"))
    }
}

/// Caps per mode: (when the mode is the only one on the connection, when modes are mixed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedCaps {
    pub ltpc: (usize, usize),
    pub option_greeks: (usize, usize),
    pub full: (usize, usize),
    pub full_d30: (usize, usize),
}

impl Default for FeedCaps {
    fn default() -> Self {
        Self {
            ltpc: (5000, 2000),
            option_greeks: (3000, 2000),
            full: (2000, 1500),
            full_d30: (50, 1500),
        }
    }
}

impl FeedCaps {
    /// The cap of `mode`, alone or mixed.
    pub fn cap(&self, mode: FeedMode, mixed: bool) -> usize {
        let (alone, with_others) = match mode {
            FeedMode::Ltpc => self.ltpc,
            FeedMode::OptionGreeks => self.option_greeks,
            FeedMode::Full => self.full,
            FeedMode::FullD30 => self.full_d30,
        };
        if mixed { with_others } else { alone }
    }

    /// Whether per-mode key counts satisfy every cap.
    pub fn allows(&self, counts: &[usize; 4]) -> bool {
        let mixed = counts.iter().filter(|c| **c > 0).count() > 1;
        FeedMode::ALL.iter().all(|m| counts[m.index()] <= self.cap(*m, mixed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_depend_on_mixing() {
        let caps = FeedCaps::default();
        assert!(caps.allows(&[5000, 0, 0, 0]));
        assert!(!caps.allows(&[5001, 0, 0, 0]));
        assert!(!caps.allows(&[2001, 0, 1, 0]), "mixed ltpc cap is 2000");
        assert!(caps.allows(&[2000, 0, 1500, 0]));
        assert!(!caps.allows(&[0, 0, 0, 51]));
        assert_eq!("full_d30".parse::<FeedMode>(), Ok(FeedMode::FullD30));
        assert!("full_d5".parse::<FeedMode>().is_err());
    }
}
