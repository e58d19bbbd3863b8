//! Where a stream stands, as a value: folded from the stream's events by a plain function, so
//! every front end shows (and tests) the same states instead of matching prose.

use serde::Serialize;

use crate::error::Diagnosis;
use crate::events::FeedEvent;

/// The state of one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StreamState {
    /// Not started, or stopped by its owner.
    #[default]
    Stopped,
    /// Started; the first connection is being made.
    Connecting,
    /// Connected (attempt 1 is the first connection).
    Connected { attempt: u32 },
    /// The connection ended; the next attempt waits `delay_ms`.
    Reconnecting {
        attempt: u32,
        delay_ms: u64,
        reason: String,
    },
    /// The token was refused or is missing; waiting for a new login.
    WaitingForToken { reason: String },
    /// Stopped for good, with the reason.
    Failed { diagnosis: Diagnosis },
}

impl StreamState {
    /// The state after `event`. Events that do not change the state (ticks, market info,
    /// portfolio updates) leave it as it is.
    #[must_use]
    pub fn after(&self, event: &FeedEvent) -> Self {
        match event {
            FeedEvent::Connected { attempt } => Self::Connected { attempt: *attempt },
            FeedEvent::Disconnected { .. } => Self::Connecting,
            FeedEvent::Reconnecting { attempt, delay, reason } => Self::Reconnecting {
                attempt: *attempt,
                delay_ms: delay.as_millis() as u64,
                reason: reason.clone(),
            },
            FeedEvent::WaitingForToken { reason } => Self::WaitingForToken { reason: reason.clone() },
            FeedEvent::Stopped(d) => Self::Failed { diagnosis: d.clone() },
            _ => self.clone(),
        }
    }

    /// Whether ticks can flow now.
    pub fn is_connected(&self) -> bool {
        matches!(self, Self::Connected { .. })
    }

    /// Whether the stream has ended (by its owner or for good).
    pub fn is_over(&self) -> bool {
        matches!(self, Self::Stopped | Self::Failed { .. })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn events_fold_into_states() {
        let s = StreamState::Connecting;
        let s = s.after(&FeedEvent::Connected { attempt: 1 });
        assert!(s.is_connected());
        let s = s.after(&FeedEvent::Ticks(Vec::new()));
        assert_eq!(s, StreamState::Connected { attempt: 1 });
        let s = s.after(&FeedEvent::Reconnecting {
            attempt: 2,
            delay: Duration::from_millis(1500),
            reason: "closed".into(),
        });
        assert_eq!(
            s,
            StreamState::Reconnecting {
                attempt: 2,
                delay_ms: 1500,
                reason: "closed".into()
            }
        );
        let s = s.after(&FeedEvent::Stopped(Diagnosis::NoToken));
        assert!(s.is_over() && !s.is_connected());
        assert_eq!(
            serde_json::to_value(&s).expect("json"),
            serde_json::json!({"state": "failed", "diagnosis": {"diagnosis": "no_token"}})
        );
    }
}
