//! The dashboard's words for what the libraries report as typed values.

use stoxide_vault::TokenEvent;
use stoxide_vault::status::human;
use upstox_types::IST;

/// A token watcher's event, as the dashboard shows it.
pub(crate) fn token_event(e: &TokenEvent) -> String {
    match e {
        TokenEvent::Replaced { account } => format!("Picked up a new token for {account}."),
        TokenEvent::Wiped { account } => format!("The token of {account} was removed (logout)."),
        TokenEvent::ExpiresSoon { account, expires_at } => format!(
            "The token of {account} expires at {} (in {}): press Refresh token to log in again.",
            expires_at.with_timezone(&IST).format("%H:%M IST"),
            human(*expires_at - chrono::Utc::now())
        ),
        TokenEvent::Unreadable { account, error } => format!("Cannot read the token of {account}: {error}"),
        TokenEvent::Gone { account } => format!("Account {account} is no longer in the vault."),
    }
}
