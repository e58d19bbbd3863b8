//! The command line's words for what the libraries report as typed values.

use stoxide_vault::TokenEvent;
use stoxide_vault::status::human;

/// A token watcher's event, as a stream prints it.
pub(crate) fn token_event(e: &TokenEvent) -> String {
    match e {
        TokenEvent::Replaced { account } => format!("picked up a new token for {account} from the vault"),
        TokenEvent::Wiped { account } => format!("the token of {account} was wiped from the vault (logout)"),
        TokenEvent::ExpiresSoon { account, expires_at } => format!(
            "the token of {account} expires at 03:30 IST, in {}; log in again (`stoxide login --account {account}`) — the new token is picked up by itself",
            human(*expires_at - chrono::Utc::now())
        ),
        TokenEvent::Unreadable { error, .. } => format!("cannot read the vault: {error}"),
        TokenEvent::Gone { account } => format!("account {account} is no longer in the vault"),
    }
}
