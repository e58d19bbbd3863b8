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

use stoxide_app::doctor::Fix;
use stoxide_vault::{LoginReason, NextStep};
use upstox_feed::StreamState;

/// What to do about a token, as the dashboard says it.
pub(crate) fn next_step(step: &NextStep) -> String {
    match step {
        NextStep::LogIn { reason, .. } => match reason {
            LoginReason::NoToken => "Press Log in to Upstox.".into(),
            LoginReason::Expired => "Tokens die at 03:30 IST every day: press Refresh token to log in again.".into(),
            LoginReason::Revoked => {
                "A login elsewhere (another tool, the web) or a logout revoked this token: press Refresh token.".into()
            }
        },
        NextStep::Diagnose { .. } => "Open the doctor; if the app's permissions changed, press Refresh token.".into(),
        NextStep::CheckNetwork { base_url } => format!("Upstox could not be asked: check the network and {base_url}."),
    }
}

/// The stream's state, as the dashboard shows it.
pub(crate) fn stream_state(s: &StreamState) -> String {
    match s {
        StreamState::Stopped => "stopped".into(),
        StreamState::Connecting => "connecting".into(),
        StreamState::Connected { .. } => "connected".into(),
        StreamState::Reconnecting { attempt, delay_ms, .. } => {
            format!("reconnecting (attempt {attempt} in {:.1} s)", *delay_ms as f64 / 1000.0)
        }
        StreamState::WaitingForToken { .. } => "waiting for a new login".into(),
        StreamState::Failed { .. } => "stopped".into(),
    }
}

/// A doctor's fix, as the dashboard says it.
pub(crate) fn fix(f: &Fix) -> String {
    match f {
        Fix::ProvideToken | Fix::CreateVault => "Press Log in to Upstox.".into(),
        Fix::RepairVault => "The message names the key or file that is wrong; fix it and restart the dashboard.".into(),
        Fix::ChooseAccount => "Choose the account to stream.".into(),
        Fix::LogIn { .. } => "Press Refresh token to log in again.".into(),
        Fix::CheckNetwork | Fix::FeedHostSilent => "Check the network and the Upstox base URL.".into(),
        Fix::CheckFeedPermission => "The token works for REST but not for the feed: check the app's permissions.".into(),
        Fix::HandshakeUnauthorized => "The token is invalid or expired (03:30 IST): press Refresh token.".into(),
        Fix::HandshakeForbidden => "The app has no market-data feed access, or the user's feed connections are used up: close other programs' feed connections or check the app.".into(),
        Fix::HandshakeStatus { status } => format!("The handshake answered HTTP {status}: retry later; check proxies and firewalls."),
        Fix::WebSocketUnavailable => "The WebSocket could not be opened: check the network, proxies and TLS.".into(),
        Fix::FeedSilent => "Connected but silent: a proxy may be buffering WebSocket frames; restart the stream.".into(),
        Fix::TryInSession => "Outside market hours there may be no ticks: try during the session.".into(),
        Fix::WriteKeyAsSegmentId | Fix::FindKey => "Search for the instrument and add it from the results.".into(),
        Fix::InstrumentDownload => "The instrument file could not be downloaded: check the network.".into(),
        Fix::RestartStream => "Press Start stream; if it stops again, the fix above applies.".into(),
        Fix::ActivateSegment { exchange } => format!(
            "Activate the {exchange} segment for this account with the broker (Upstox: My Account → Segment activation), then log in again."
        ),
    }
}

/// Why a login callback was refused, as the dashboard says it.
pub(crate) fn login_error(e: &stoxide_app::linking::LoginError) -> String {
    use stoxide_app::linking::LoginError;
    match e {
        LoginError::OtherSession => "This login was started in another browser session; start it again here.".into(),
        LoginError::NoCode => "The callback came without an authorization code; log in again.".into(),
        other => format!("{other}; start the login again."),
    }
}
