//! The doctor: why a REST call or the feed fails, step by step — the vault (key, account, token,
//! expiry), the token at the REST profile endpoint, the feed's authorize call, the WebSocket
//! handshake, a first `market_info` and tick, and instrument keys. Each check says what it saw;
//! a failed one carries a typed [`Fix`] that each front end words in its own way.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use stoxide_vault::status::human;
use stoxide_vault::{LoginReason, Vault};
use tokio_tungstenite::tungstenite::{self, Message};
use upstox_client::{InstrumentMaster, UpstoxClient};
use upstox_feed::HandshakeRefusal;
use upstox_types::{IST, InstrumentKey, token_expiry};

/// The instrument the feed checks subscribe to.
pub const PROBE_KEY: &str = "NSE_INDEX|Nifty 50";

/// What was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    VaultPresent,
    VaultKey,
    VaultAccount,
    TokenDecryptable,
    NotExpired,
    TokenPresent,
    ExpiryRule,
    RestProfile,
    FeedAuthorize,
    FeedHandshake,
    FirstTick,
    Key(String),
    InstrumentMaster,
    Stream,
}

impl Step {
    /// The step's name, as the checklist shows it.
    pub fn label(&self) -> String {
        match self {
            Self::VaultPresent => "vault present".into(),
            Self::VaultKey => "vault key present and right".into(),
            Self::VaultAccount => "vault account".into(),
            Self::TokenDecryptable => "token decryptable".into(),
            Self::NotExpired => "not past its 03:30 IST expiry".into(),
            Self::TokenPresent => "access token present".into(),
            Self::ExpiryRule => "03:30 IST expiry".into(),
            Self::RestProfile => "REST profile accepts the token".into(),
            Self::FeedAuthorize => "feed authorize".into(),
            Self::FeedHandshake => "feed handshake".into(),
            Self::FirstTick => "market_info and first tick".into(),
            Self::Key(k) => format!("key {k}"),
            Self::InstrumentMaster => "instrument master".into(),
            Self::Stream => "stream".into(),
        }
    }
}

/// What to do about a failed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "fix", rename_all = "snake_case")]
pub enum Fix {
    /// Give a token: configure one, or log in.
    ProvideToken,
    /// Create the vault by logging in (or point at the right data directory).
    CreateVault,
    /// The vault's error names the key or file that is wrong.
    RepairVault,
    /// Several accounts: choose one.
    ChooseAccount,
    /// Log in (again) for the account.
    LogIn {
        account: Option<String>,
        reason: LoginReason,
    },
    /// Check the base URL and the network.
    CheckNetwork,
    /// The token works for REST but not for the feed authorize call: the app's permissions.
    CheckFeedPermission,
    /// 401 at the handshake: invalid or expired token, or an authorized URI used twice.
    HandshakeUnauthorized,
    /// 403 at the handshake: no feed access for the app, or the user's connections used up.
    HandshakeForbidden,
    /// Another status at the handshake: retry; check proxies and firewalls.
    HandshakeStatus { status: u16 },
    /// The WebSocket could not be opened: network, proxies, TLS.
    WebSocketUnavailable,
    /// The feed host does not answer.
    FeedHostSilent,
    /// Connected but silent: a proxy buffering frames, or a stalled server.
    FeedSilent,
    /// No tick outside the trading session is normal: try during the session.
    TryInSession,
    /// Write keys as SEGMENT|ID and find them by searching.
    WriteKeyAsSegmentId,
    /// A well-formed key the instrument master does not know.
    FindKey,
    /// The account is not cleared for the key's exchange (its profile's `exchanges`).
    ActivateSegment { exchange: String },
    /// The instrument file could not be downloaded.
    InstrumentDownload,
    /// Start the stream again.
    RestartStream,
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub step: Step,
    pub ok: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<Fix>,
}

/// The checklist so far.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(transparent)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn pass(&mut self, step: Step, detail: impl Into<String>) {
        self.checks.push(Check {
            step,
            ok: true,
            detail: detail.into(),
            fix: None,
        });
    }

    pub fn fail(&mut self, step: Step, detail: impl Into<String>, fix: Fix) {
        self.checks.push(Check {
            step,
            ok: false,
            detail: detail.into(),
            fix: Some(fix),
        });
    }

    /// How many checks failed.
    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|c| !c.ok).count()
    }
}

/// Whether the checks after the vault's can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    Stop,
}

/// The vault's part: it opens with its key, the account is there, its token decrypts and is not
/// past 03:30 IST. `opened` is the outcome of opening the vault; `wanted` the account asked for.
pub async fn vault(
    report: &mut Report,
    opened: Result<Option<Vault>, stoxide_vault::Error>,
    wanted: Option<&str>,
) -> Next {
    let vault = match opened {
        Ok(Some(v)) => v,
        Ok(None) if wanted.is_some() => {
            report.fail(Step::VaultPresent, "there is no vault yet", Fix::CreateVault);
            return Next::Stop;
        }
        Ok(None) => return Next::Continue,
        Err(e) => {
            report.fail(Step::VaultKey, e.to_string(), Fix::RepairVault);
            return Next::Stop;
        }
    };
    report.pass(
        Step::VaultKey,
        format!("{} opens with the key from {}", vault.location(), vault.key_source()),
    );
    let account = match crate::accounts::select(&vault, wanted).await {
        Ok(Some(a)) => a,
        Ok(None) => return Next::Continue,
        Err(e) => {
            report.fail(Step::VaultAccount, e.to_string(), Fix::ChooseAccount);
            return Next::Stop;
        }
    };
    let login = |reason| Fix::LogIn {
        account: Some(account.id.clone()),
        reason,
    };
    match vault.access_token(&account.id).await {
        Ok(Some(_)) => report.pass(Step::TokenDecryptable, format!("account {}", account.id)),
        Ok(None) => {
            report.fail(
                Step::TokenDecryptable,
                format!("account {} has no token (logged out)", account.id),
                login(LoginReason::NoToken),
            );
            return Next::Stop;
        }
        Err(e) => {
            report.fail(Step::TokenDecryptable, e.to_string(), login(LoginReason::NoToken));
            return Next::Stop;
        }
    }
    let now = chrono::Utc::now();
    match account.expires_at {
        Some(exp) if now >= exp => {
            report.fail(
                Step::NotExpired,
                format!(
                    "the token of {} expired at {} ({} ago)",
                    account.id,
                    exp.with_timezone(&IST).format("%Y-%m-%d %H:%M IST"),
                    human(now - exp)
                ),
                login(LoginReason::Expired),
            );
            Next::Stop
        }
        Some(exp) => {
            report.pass(
                Step::NotExpired,
                format!(
                    "expires {} (in {})",
                    exp.with_timezone(&IST).format("%Y-%m-%d %H:%M IST"),
                    human(exp - now)
                ),
            );
            Next::Continue
        }
        None => {
            report.pass(Step::NotExpired, "issue time unknown (imported token)");
            Next::Continue
        }
    }
}

/// Where the token being checked came from, for the first line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSourceKind {
    Vault { account: String },
    Simulator,
    Configured,
    Missing,
}

/// The connection's part: the token at the REST profile endpoint, the feed's authorize call,
/// the handshake, then `market_info` and a first tick of [`PROBE_KEY`] within `wait`. `client`
/// carries the token.
///
/// Answers the user's profile when the REST check passed (its `exchanges` say which segments
/// the account may trade: [`keys`] checks them).
pub async fn connection(
    report: &mut Report,
    client: &UpstoxClient,
    source: &TokenSourceKind,
    wait: Duration,
) -> Option<upstox_client::user::Profile> {
    let detail = match source {
        TokenSourceKind::Missing => {
            report.fail(Step::TokenPresent, "no token found", Fix::ProvideToken);
            return None;
        }
        TokenSourceKind::Vault { account } => format!("from the vault (account {account})"),
        TokenSourceKind::Simulator => "the embedded simulator's seeded user".into(),
        TokenSourceKind::Configured => "from flags, environment or config".into(),
    };
    report.pass(Step::TokenPresent, detail);

    // The 03:30 IST rule (a vault token's own expiry was judged with the vault).
    if !matches!(source, TokenSourceKind::Vault { .. }) {
        let now = chrono::Utc::now();
        let cutoff = token_expiry(now);
        let left = cutoff - now;
        report.pass(
            Step::ExpiryRule,
            format!(
                "every Upstox token dies at 03:30 IST; the next cutoff is {} ({}h {:02}m from now) — a token issued before the last cutoff is already dead",
                cutoff.with_timezone(&IST).format("%Y-%m-%d %H:%M IST"),
                left.num_hours(),
                left.num_minutes() % 60
            ),
        );
    }

    let profile = match client.profile().await {
        Ok(p) => {
            report.pass(Step::RestProfile, format!("GET /v2/user/profile → user {}", p.user_id));
            p
        }
        Err(e) => {
            let fix = if e.is_unauthorized() {
                Fix::LogIn {
                    account: None,
                    reason: LoginReason::Revoked,
                }
            } else {
                Fix::CheckNetwork
            };
            report.fail(Step::RestProfile, e.to_string(), fix);
            return None;
        }
    };

    let uri = match client.market_feed_authorize().await {
        Ok(u) => {
            report.pass(
                Step::FeedAuthorize,
                "GET /v3/feed/market-data-feed/authorize answered a single-use URI",
            );
            u
        }
        Err(e) => {
            let fix = if e.status() == Some(403) {
                Fix::HandshakeForbidden
            } else {
                Fix::CheckFeedPermission
            };
            report.fail(Step::FeedAuthorize, e.to_string(), fix);
            return Some(profile);
        }
    };

    let mut ws =
        match tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(uri.as_str())).await {
            Ok(Ok((ws, resp))) => {
                report.pass(
                    Step::FeedHandshake,
                    format!("HTTP {} (switched to WebSocket)", resp.status().as_u16()),
                );
                ws
            }
            Ok(Err(tungstenite::Error::Http(resp))) => {
                let refusal = HandshakeRefusal::from_response(&resp);
                let fix = match refusal.status {
                    401 => Fix::HandshakeUnauthorized,
                    403 => Fix::HandshakeForbidden,
                    status => Fix::HandshakeStatus { status },
                };
                report.fail(Step::FeedHandshake, refusal.to_string(), fix);
                return Some(profile);
            }
            Ok(Err(e)) => {
                report.fail(Step::FeedHandshake, e.to_string(), Fix::WebSocketUnavailable);
                return Some(profile);
            }
            Err(_) => {
                report.fail(Step::FeedHandshake, "no answer within 10 s", Fix::FeedHostSilent);
                return Some(profile);
            }
        };

    let started = Instant::now();
    let mut info = None;
    let mut first_tick = None;
    let sub = serde_json::json!({"guid": "stoxide-doctor", "method": "sub", "data": {"mode": "ltpc", "instrumentKeys": [PROBE_KEY]}});
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        ws.send(Message::Binary(sub.to_string().into_bytes().into())),
    )
    .await;
    let _ = tokio::time::timeout(wait, async {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Binary(b) = msg {
                match upstox_feed::decode(&b) {
                    Ok(upstox_feed::Frame::MarketInfo(_)) => info = Some(started.elapsed()),
                    Ok(upstox_feed::Frame::Ticks(t)) if t.iter().any(|t| t.instrument_key == PROBE_KEY) => {
                        first_tick = Some(started.elapsed());
                        break;
                    }
                    _ => {}
                }
            }
        }
    })
    .await;
    let _ = ws.close(None).await;
    match (info, first_tick) {
        (Some(i), Some(t)) => report.pass(
            Step::FirstTick,
            format!(
                "market_info after {:.2}s, first {PROBE_KEY} tick after {:.2}s",
                i.as_secs_f64(),
                t.as_secs_f64()
            ),
        ),
        (None, _) => report.fail(
            Step::FirstTick,
            format!("no market_info within {:.0}s", wait.as_secs_f64()),
            Fix::FeedSilent,
        ),
        (Some(_), None) => report.fail(
            Step::FirstTick,
            format!(
                "market_info arrived, but no tick for {PROBE_KEY} within {:.0}s",
                wait.as_secs_f64()
            ),
            Fix::TryInSession,
        ),
    }
    Some(profile)
}

/// The keys' part: each key's syntax, whether the instrument master (from `master`) knows it
/// (and if not, the key meant), and whether the account may trade its exchange (`cleared`: the
/// profile's `exchanges`, when the profile was read).
pub async fn keys<F, M, E>(report: &mut Report, keys: &[String], master: F, cleared: Option<&[String]>)
where
    F: std::future::Future<Output = Result<M, E>>,
    M: std::borrow::Borrow<InstrumentMaster>,
    E: std::fmt::Display,
{
    let mut valid = Vec::new();
    for k in keys {
        match k.parse::<InstrumentKey>() {
            Ok(key) => valid.push((k, key.segment())),
            Err(e) => report.fail(Step::Key(k.clone()), e.to_string(), Fix::WriteKeyAsSegmentId),
        }
    }
    if valid.is_empty() {
        return;
    }
    match master.await {
        Ok(master) => {
            let master: &InstrumentMaster = master.borrow();
            for (k, segment) in valid {
                let exchange = segment.order_exchange();
                match master.get(k) {
                    // Indices are not traded: any account may stream them.
                    Some(r) if !segment.is_index() && cleared.is_some_and(|c| !c.iter().any(|e| e == exchange)) => {
                        report.fail(
                            Step::Key(k.clone()),
                            format!(
                                "{} ({}): this account is not cleared for {exchange} (its profile lists {})",
                                r.trading_symbol,
                                r.instrument_type,
                                cleared.map(|c| c.join(", ")).unwrap_or_default()
                            ),
                            Fix::ActivateSegment {
                                exchange: exchange.to_owned(),
                            },
                        );
                    }
                    Some(r) => report.pass(
                        Step::Key(k.clone()),
                        format!("{} ({}), in the instrument master", r.trading_symbol, r.instrument_type),
                    ),
                    None => {
                        let found = master.suggest(k, chrono::Utc::now().timestamp_millis(), 3);
                        let detail = match found.first() {
                            None => format!("not in the instrument master ({} instruments)", master.len()),
                            Some(best) => format!(
                                "not in the instrument master: {}; use {}",
                                best.why.words(),
                                found
                                    .iter()
                                    .map(|s| format!(
                                        "\"{}\" ({})",
                                        s.instrument.instrument_key, s.instrument.trading_symbol
                                    ))
                                    .collect::<Vec<_>>()
                                    .join(" or ")
                            ),
                        };
                        report.fail(Step::Key(k.clone()), detail, Fix::FindKey);
                    }
                }
            }
        }
        Err(e) => report.fail(Step::InstrumentMaster, e.to_string(), Fix::InstrumentDownload),
    }
}
