//! `stoxide doctor`: the 401/403 checklist, step by step, each with ✓/✗ and the concrete fix.

use crate::output::say;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio_tungstenite::tungstenite::{self, Message};
use upstox_types::{IST, InstrumentKey, token_expiry};

use crate::output::Output;
use crate::settings::{Globals, Session};

#[derive(Debug, clap::Args)]
pub(crate) struct DoctorArgs {
    /// Instrument keys to check (syntax, and existence in the instrument master).
    #[arg(value_name = "KEY")]
    keys: Vec<String>,
    /// Seconds to wait for market_info and a first tick.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
}

/// One line of the checklist.
#[derive(Debug, Serialize)]
struct Check {
    step: String,
    ok: bool,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

#[derive(Debug, Default)]
struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn pass(&mut self, step: &str, detail: impl Into<String>) {
        self.checks.push(Check {
            step: step.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        });
    }

    fn fail(&mut self, step: &str, detail: impl Into<String>, fix: impl Into<String>) {
        self.checks.push(Check {
            step: step.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        });
    }

    fn failed(&self) -> usize {
        self.checks.iter().filter(|c| !c.ok).count()
    }
}

const PROBE_KEY: &str = "NSE_INDEX|Nifty 50";

fn control_sub(key: &str) -> Message {
    let body = serde_json::json!({"guid": "stoxide-doctor", "method": "sub", "data": {"mode": "ltpc", "instrumentKeys": [key]}});
    Message::Binary(body.to_string().into_bytes().into())
}

fn handshake_fix(status: u16) -> String {
    match status {
        401 => "401 at the handshake: the token is invalid or expired (03:30 IST), or the authorized URI was already used — authorize again for every connect and log in again if the token is old".into(),
        403 => "403 at the handshake: the app does not have market-data feed access, or this user already has the maximum of feed connections open (2 standard, 5 Upstox Plus; this doctor had none open) — close other programs' feed connections or check the app's permissions".into(),
        s => format!("the handshake answered HTTP {s}; retry later, and check a proxy or firewall between you and Upstox"),
    }
}

async fn checks(s: &Session, args: &DoctorArgs, report: &mut Report) {
    // 1. Token present.
    let Some(token) = s.token.clone() else {
        report.fail(
            "access token present",
            "no token found",
            "set UPSTOX_ACCESS_TOKEN, add access_token to the config file, or log in",
        );
        return;
    };
    let source = match (&s.account, s.sim.is_some()) {
        (Some(va), _) => format!("from the vault (account {})", va.account.id),
        (None, true) => "the embedded simulator's seeded user".into(),
        (None, false) => "from flags, environment or config".into(),
    };
    report.pass("access token present", source);

    // 2. The 03:30 IST rule (the vault checks already judged a vault token's own expiry).
    let now = chrono::Utc::now();
    if s.account.is_none() {
        let cutoff = token_expiry(now);
        let left = cutoff - now;
        report.pass(
        "03:30 IST expiry",
        format!(
            "every Upstox token dies at 03:30 IST; the next cutoff is {} ({}h {:02}m from now) — a token issued before the last cutoff is already dead",
            cutoff.with_timezone(&IST).format("%Y-%m-%d %H:%M IST"),
            left.num_hours(),
            left.num_minutes() % 60
        ),
    );
    }

    // 3. REST accepts it.
    match s.client.profile().await {
        Ok(p) => report.pass(
            "REST profile accepts the token",
            format!("GET /v2/user/profile → user {}", p.user_id),
        ),
        Err(e) if e.is_unauthorized() => {
            report.fail(
                "REST profile accepts the token",
                e.to_string(),
                "the token is invalid, expired (03:30 IST) or revoked by a newer login of the same app — log in again and use the new token",
            );
            return;
        }
        Err(e) => {
            report.fail(
                "REST profile accepts the token",
                e.to_string(),
                "check the base URL and the network; then run doctor again",
            );
            return;
        }
    }

    // 4. Feed authorize.
    let uri = match s.client.market_feed_authorize().await {
        Ok(u) => {
            report.pass(
                "feed authorize",
                "GET /v3/feed/market-data-feed/authorize answered a single-use URI",
            );
            u
        }
        Err(e) => {
            let fix = if e.status() == Some(403) {
                handshake_fix(403)
            } else {
                "the token works for REST but not for the feed authorize call; check the app's permissions".into()
            };
            report.fail("feed authorize", e.to_string(), fix);
            return;
        }
    };
    let _ = token;

    // 5. The handshake.
    let ws = match tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(uri.as_str())).await {
        Ok(Ok((ws, resp))) => {
            report.pass(
                "feed handshake",
                format!("HTTP {} (switched to WebSocket)", resp.status().as_u16()),
            );
            ws
        }
        Ok(Err(tungstenite::Error::Http(resp))) => {
            let status = resp.status().as_u16();
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                .unwrap_or_default();
            let detail = if body.starts_with(&status.to_string()) {
                format!("HTTP {body}")
            } else {
                format!("HTTP {status} {body}").trim().to_owned()
            };
            report.fail("feed handshake", detail, handshake_fix(status));
            return;
        }
        Ok(Err(e)) => {
            report.fail(
                "feed handshake",
                e.to_string(),
                "the WebSocket could not be opened: check the network, proxies and TLS",
            );
            return;
        }
        Err(_) => {
            report.fail(
                "feed handshake",
                "no answer within 10 s",
                "the feed host does not answer: check the network",
            );
            return;
        }
    };

    // 6. market_info and a first tick.
    let mut ws = ws;
    let started = Instant::now();
    let wait = Duration::from_secs_f64(args.timeout.max(0.1));
    let mut info = None;
    let mut first_tick = None;
    let _ = ws.send(control_sub(PROBE_KEY)).await;
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
            "market_info and first tick",
            format!("market_info after {:.2}s, first {PROBE_KEY} tick after {:.2}s", i.as_secs_f64(), t.as_secs_f64()),
        ),
        (None, _) => report.fail(
            "market_info and first tick",
            format!("no market_info within {:.0}s", wait.as_secs_f64()),
            "the connection opened but stays silent: a proxy may be buffering WebSocket frames, or the server stalled; reconnect",
        ),
        (Some(_), None) => report.fail(
            "market_info and first tick",
            format!("market_info arrived, but no tick for {PROBE_KEY} within {:.0}s", wait.as_secs_f64()),
            "subscriptions are sent as binary JSON frames; outside market hours there may be no ticks — try again during the session",
        ),
    }
}

async fn key_checks(s: &Session, keys: &[String], report: &mut Report) {
    let mut valid = Vec::new();
    for k in keys {
        match k.parse::<InstrumentKey>() {
            Ok(_) => valid.push(k),
            Err(e) => report.fail(
                &format!("key {k}"),
                e.to_string(),
                "write keys as SEGMENT|ID; find them with `stoxide instruments search TEXT`",
            ),
        }
    }
    if valid.is_empty() {
        return;
    }
    match crate::cmd::instruments::load_master(&s.client).await {
        Ok(master) => {
            for k in valid {
                match master.get(k) {
                    Some(r) => report.pass(&format!("key {k}"), format!("{} ({}), in the instrument master", r.trading_symbol, r.instrument_type)),
                    None => report.fail(
                        &format!("key {k}"),
                        format!("not in the instrument master ({} instruments)", master.len()),
                        "the key is well formed but unknown (expired contract? wrong ISIN?); find it with `stoxide instruments search TEXT`",
                    ),
                }
            }
        }
        Err(e) => report.fail(
            "instrument master",
            e.to_string(),
            "the instrument file could not be downloaded; check the network",
        ),
    }
}

/// The vault's part: it opens with its key, the account is there, its token decrypts and is not
/// past 03:30 IST. Answers false when the remaining checks cannot run.
async fn vault_checks(globals: &Globals, report: &mut Report) -> bool {
    let settings_token = crate::settings::Settings::load(globals)
        .ok()
        .and_then(|s| s.access_token)
        .is_some_and(|t| !t.trim().is_empty());
    if settings_token {
        return true;
    }
    let config = match crate::vault::config(globals) {
        Ok(c) => c,
        Err(e) => {
            report.fail("vault", e.to_string(), "set --data-dir or STOXIDE_DATA_DIR");
            return false;
        }
    };
    let dir = config.data_dir.clone();
    let vault = match stoxide_vault::Vault::open_existing(&config).await {
        Ok(Some(v)) => v,
        Ok(None) if globals.account.is_some() => {
            report.fail(
                "vault present",
                format!("no vault at {}", dir.display()),
                "run `stoxide login` (or pass the right --data-dir)",
            );
            return false;
        }
        Ok(None) => return true,
        Err(e) => {
            report.fail(
                "vault key present and right",
                e.to_string(),
                "the message says which key or file is wrong; `stoxide vault info` shows where the vault looks",
            );
            return false;
        }
    };
    report.pass(
        "vault key present and right",
        format!("{} opens with the key from {}", vault.location(), vault.key_source()),
    );
    let account = match crate::vault::select(&vault, globals).await {
        Ok(Some(a)) => a,
        Ok(None) => return true,
        Err(e) => {
            report.fail(
                "vault account",
                format!("{e:#}"),
                "pass --account ID (`stoxide token status --all` lists them)",
            );
            return false;
        }
    };
    match vault.access_token(&account.id).await {
        Ok(Some(_)) => report.pass("token decryptable", format!("account {}", account.id)),
        Ok(None) => {
            report.fail(
                "token decryptable",
                format!("account {} has no token (logged out)", account.id),
                format!("run `stoxide login --account {}`", account.id),
            );
            return false;
        }
        Err(e) => {
            report.fail(
                "token decryptable",
                e.to_string(),
                format!("run `stoxide login --account {}`", account.id),
            );
            return false;
        }
    }
    let now = chrono::Utc::now();
    match account.expires_at {
        Some(exp) if now >= exp => {
            report.fail(
                "not past its 03:30 IST expiry",
                format!(
                    "the token of {} expired at {} ({} ago)",
                    account.id,
                    exp.with_timezone(&IST).format("%Y-%m-%d %H:%M IST"),
                    stoxide_vault::status::human(now - exp)
                ),
                format!(
                    "tokens die at 03:30 IST every day; run `stoxide login --account {}`",
                    account.id
                ),
            );
            vault.close().await;
            return false;
        }
        Some(exp) => report.pass(
            "not past its 03:30 IST expiry",
            format!(
                "expires {} (in {})",
                exp.with_timezone(&IST).format("%Y-%m-%d %H:%M IST"),
                stoxide_vault::status::human(exp - now)
            ),
        ),
        None => report.pass("not past its 03:30 IST expiry", "issue time unknown (imported token)"),
    }
    vault.close().await;
    true
}

fn print_report(out: &Output, report: &Report) -> anyhow::Result<()> {
    if out.json {
        out.print_json(&report.checks)?;
    } else {
        for c in &report.checks {
            say!("{} {}: {}", if c.ok { "✓" } else { "✗" }, c.step, c.detail);
            if let Some(fix) = &c.fix {
                say!("    fix: {fix}");
            }
        }
    }
    Ok(())
}

pub(crate) async fn run(globals: &Globals, out: &Output, args: DoctorArgs) -> anyhow::Result<()> {
    let mut report = Report::default();
    if !vault_checks(globals, &mut report).await {
        print_report(out, &report)?;
        anyhow::bail!("{} check(s) failed; see the fixes above", report.failed());
    }
    let session = Session::open(globals).await?;
    checks(&session, &args, &mut report).await;
    key_checks(&session, &args.keys, &mut report).await;
    session.close().await;
    print_report(out, &report)?;
    let failed = report.failed();
    anyhow::ensure!(failed == 0, "{failed} check(s) failed; see the fixes above");
    Ok(())
}
