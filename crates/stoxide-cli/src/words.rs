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

use stoxide_app::doctor::Fix;
use stoxide_vault::{LoginReason, NextStep};

fn login_command(account: Option<&str>) -> String {
    match account {
        Some(a) => format!("run `stoxide login --account {a}` (or `stoxide login --request`)"),
        None => "log in again (`stoxide login`) and use the new token".into(),
    }
}

/// What to do about a token, as a command to run.
pub(crate) fn next_step(step: &NextStep) -> String {
    match step {
        NextStep::LogIn { account, reason } => login_reason(Some(account), *reason),
        NextStep::Diagnose { account } => format!(
            "see `stoxide doctor`; if the app's permissions changed, {}",
            login_command(Some(account))
        ),
        NextStep::CheckNetwork { base_url } => format!("check the network and {base_url}"),
    }
}

fn login_reason(account: Option<&str>, reason: LoginReason) -> String {
    let login = login_command(account);
    match reason {
        LoginReason::NoToken => login,
        LoginReason::Expired => format!("tokens die at 03:30 IST every day; {login}"),
        LoginReason::Revoked => format!(
            "Upstox keeps one live token per app and user: a login elsewhere (another tool, the web) or a logout revoked this one; {login}"
        ),
    }
}

/// A doctor's fix, as the command line says it.
pub(crate) fn fix(f: &Fix) -> String {
    match f {
        Fix::ProvideToken => "set UPSTOX_ACCESS_TOKEN, add access_token to the config file, or log in".into(),
        Fix::CreateVault => "run `stoxide login` (or pass the right --data-dir)".into(),
        Fix::RepairVault => {
            "the message says which key or file is wrong; `stoxide vault info` shows where the vault looks".into()
        }
        Fix::ChooseAccount => "pass --account ID (`stoxide token status --all` lists them)".into(),
        Fix::LogIn { account, reason } => login_reason(account.as_deref(), *reason),
        Fix::CheckNetwork => "check the base URL and the network; then run doctor again".into(),
        Fix::CheckFeedPermission => {
            "the token works for REST but not for the feed authorize call; check the app's permissions".into()
        }
        Fix::HandshakeUnauthorized => "401 at the handshake: the token is invalid or expired (03:30 IST), or the authorized URI was already used — authorize again for every connect and log in again if the token is old".into(),
        Fix::HandshakeForbidden => "403 at the handshake: the app does not have market-data feed access, or this user already has the maximum of feed connections open (2 standard, 5 Upstox Plus; this doctor had none open) — close other programs' feed connections or check the app's permissions".into(),
        Fix::HandshakeStatus { status } => format!(
            "the handshake answered HTTP {status}; retry later, and check a proxy or firewall between you and Upstox"
        ),
        Fix::WebSocketUnavailable => "the WebSocket could not be opened: check the network, proxies and TLS".into(),
        Fix::FeedHostSilent => "the feed host does not answer: check the network".into(),
        Fix::FeedSilent => "the connection opened but stays silent: a proxy may be buffering WebSocket frames, or the server stalled; reconnect".into(),
        Fix::TryInSession => "subscriptions are sent as binary JSON frames; outside market hours there may be no ticks — try again during the session".into(),
        Fix::WriteKeyAsSegmentId => "write keys as SEGMENT|ID; find them with `stoxide instruments search TEXT`".into(),
        Fix::FindKey => "the key is well formed but unknown (expired contract? wrong ISIN?); find it with `stoxide instruments search TEXT`".into(),
        Fix::InstrumentDownload => "the instrument file could not be downloaded; check the network".into(),
        Fix::RestartStream => "start the stream again; if it stops again, the fix above applies".into(),
        Fix::ActivateSegment { exchange } => format!(
            "activate the {exchange} segment for this account with the broker (Upstox: My Account → Segment activation; F&O and commodity need proof of income), then log in again so the token carries it"
        ),
    }
}

fn vault_hint(v: &stoxide_vault::Error) -> Option<String> {
    match v {
        stoxide_vault::Error::NoSuchAccount(_) => {
            Some("`stoxide token status --all` lists the accounts, `stoxide login` adds one".into())
        }
        stoxide_vault::Error::KeyNotHeld { .. } => Some("`stoxide vault info` shows the vault's current key".into()),
        stoxide_vault::Error::Store(stoxide_store::Error::NotAVault { .. }) => {
            Some("or point --data-dir / STOXIDE_DATA_DIR elsewhere".into())
        }
        _ => None,
    }
}

/// What the command line adds to a library's error: the command or flag that fixes it.
pub(crate) fn hint(e: &anyhow::Error) -> Option<String> {
    for cause in e.chain() {
        if let Some(v) = cause.downcast_ref::<stoxide_vault::Error>() {
            return vault_hint(v);
        }
        if let Some(a) = cause.downcast_ref::<stoxide_app::Error>() {
            return match a {
                stoxide_app::Error::AccountAmbiguous(_) => {
                    Some("choose one with --account ID or STOXIDE_ACCOUNT".into())
                }
                stoxide_app::Error::NoAccount => {
                    Some("run `stoxide login` (or `stoxide token import FILE`) first".into())
                }
                stoxide_app::Error::LoggedOut(id) => Some(format!("run `stoxide login --account {id}`")),
                stoxide_app::Error::Vault(v) => vault_hint(v),
                stoxide_app::Error::Upstox(upstox_client::Error::NoToken) => {
                    Some("log in (`stoxide login`) or set UPSTOX_ACCESS_TOKEN".into())
                }
                _ => None,
            };
        }
        if let Some(upstox_client::Error::NoToken) = cause.downcast_ref::<upstox_client::Error>() {
            return Some("log in (`stoxide login`) or set UPSTOX_ACCESS_TOKEN".into());
        }
    }
    None
}
