//! `stoxide login` (the OAuth dialog with a local callback server, or `--request`: the v3
//! access-token request with a local notifier webhook) and `stoxide logout`.

use crate::output::say;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Html;
use chrono::{TimeZone, Utc};
use secrecy::SecretString;
use stoxide_vault::{AppMode, CheckOutcome, LoginStates, NewApp, NewToken, TokenOrigin, Vault};
use tokio::sync::mpsc;
use upstox_client::login::AppCredentials;
use upstox_client::user::Profile;
use upstox_client::{ClientConfig, UpstoxClient};
use upstox_types::IST;

use crate::output::{Output, table};
use crate::settings::{Globals, Settings, hosts_for};

#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// Print the login URL but do not try to open a browser.
    #[arg(long)]
    no_browser: bool,
    /// The v3 access-token request: approve it in the Upstox app; the token arrives on the app's
    /// notifier webhook, which this command serves locally.
    #[arg(long)]
    request: bool,
    /// The app is a vendor app that many users log in to (default: the user's own app).
    #[arg(long)]
    vendor: bool,
    /// The app's API key (client_id). Env: UPSTOX_API_KEY.
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// The app's API secret. Env: UPSTOX_API_SECRET (prefer it: flags stay in shell history).
    #[arg(long, value_name = "SECRET")]
    api_secret: Option<String>,
    /// The app's redirect URI; the callback server listens on it. Env: UPSTOX_REDIRECT_URI.
    #[arg(long, value_name = "URL")]
    redirect_uri: Option<String>,
    /// `--request`: the local address the notifier URL reaches (default: the notifier URL's own
    /// address when it is on this machine).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LogoutArgs {}

/// The app to log in with, from flags, env/config and the vault, in that order.
struct App {
    creds: AppCredentials,
    mode: AppMode,
    base_url: String,
    /// Whether the secret came from flags/env and should be (re)stored.
    new_secret: bool,
}

async fn resolve_app(args: &LoginArgs, globals: &Globals, vault: &Vault) -> anyhow::Result<App> {
    let settings = Settings::load(globals)?;
    let account = match &globals.account {
        Some(id) => vault.account(id).await?,
        None => None,
    };
    let client_id = args
        .api_key
        .clone()
        .or(settings.api_key)
        .or_else(|| account.as_ref().and_then(|a| a.client_id.clone()))
        .filter(|k| !k.trim().is_empty())
        .context("no app: pass --api-key or set UPSTOX_API_KEY (the API key of your app at Upstox)")?;
    let stored = vault.app(&client_id).await?;
    let flag_secret = args
        .api_secret
        .clone()
        .or(settings.api_secret)
        .filter(|s| !s.is_empty());
    let new_secret = flag_secret.is_some();
    let secret = match flag_secret {
        Some(s) => SecretString::from(s),
        None => vault.app_secret(&client_id).await?.with_context(|| {
            format!("no API secret for app {client_id}: pass --api-secret or set UPSTOX_API_SECRET")
        })?,
    };
    let redirect_uri = args
        .redirect_uri
        .clone()
        .or(settings.redirect_uri)
        .or_else(|| stored.as_ref().map(|a| a.redirect_uri.clone()))
        .filter(|r| !r.is_empty());
    let redirect_uri = match (redirect_uri, args.request) {
        (Some(r), _) => r,
        (None, true) => String::new(),
        (None, false) => anyhow::bail!(
            "no redirect URI: pass --redirect-uri or set UPSTOX_REDIRECT_URI (exactly as registered for the app)"
        ),
    };
    let base_url = globals
        .base_url
        .clone()
        .or(settings.base_url)
        .or_else(|| stored.as_ref().map(|a| a.base_url.clone()))
        .unwrap_or_else(|| "https://api.upstox.com".into());
    hosts_for(&base_url)?;
    let mode = if args.vendor {
        AppMode::Vendor
    } else {
        stored.as_ref().map_or(AppMode::Individual, |a| a.mode)
    };
    Ok(App {
        creds: AppCredentials {
            client_id,
            client_secret: secret,
            redirect_uri,
        },
        mode,
        base_url,
        new_secret,
    })
}

fn client_for(base_url: &str) -> anyhow::Result<UpstoxClient> {
    Ok(UpstoxClient::new(ClientConfig::new(hosts_for(base_url)?))?)
}

/// A loopback http redirect URI → the address to listen on and the path.
fn loopback_target(uri: &str, what: &str) -> anyhow::Result<(SocketAddr, String)> {
    let url = url::Url::parse(uri).with_context(|| format!("the {what} {uri:?} is not a URL"))?;
    let host = url.host_str().unwrap_or("");
    let ip = match host {
        "localhost" => Some(std::net::IpAddr::from([127, 0, 0, 1])),
        h => h.trim_matches(['[', ']']).parse::<std::net::IpAddr>().ok(),
    };
    match (url.scheme(), ip, url.port_or_known_default()) {
        ("http", Some(ip), Some(port)) if ip.is_loopback() => Ok((SocketAddr::new(ip, port), url.path().to_owned())),
        _ => anyhow::bail!(
            "the {what} {uri} is not on this machine (http://127.0.0.1:PORT/...), so this command cannot receive it; register a loopback {what} for the app{}",
            if what == "notifier URL" {
                ", or pass --listen ADDR where a tunnel forwards it"
            } else {
                ""
            }
        ),
    }
}

fn open_browser(url: &str) {
    let candidates: Vec<String> = std::env::var("BROWSER")
        .ok()
        .into_iter()
        .chain(["xdg-open".to_owned(), "open".to_owned()])
        .collect();
    for program in candidates {
        let spawned = std::process::Command::new(&program)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if spawned.is_ok() {
            return;
        }
    }
    eprintln!("note: no browser could be opened; open the URL above yourself");
}

fn page(title: &str, body: &str) -> Html<String> {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>stoxide — {}</title></head><body><h1>{}</h1><p id=\"message\">{}</p></body></html>",
        esc(title),
        esc(title),
        esc(body)
    ))
}

fn spinner(message: String) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

struct OauthCtx {
    states: LoginStates,
    client: UpstoxClient,
    app: App,
    vault: Vault,
    done: mpsc::Sender<anyhow::Result<(Profile, stoxide_vault::Account)>>,
}

async fn oauth_callback(
    State(ctx): State<Arc<OauthCtx>>,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, Html<String>) {
    let pending = match ctx.states.take(q.get("state").map(String::as_str), Utc::now()) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(%e, "refused a login callback");
            return (StatusCode::BAD_REQUEST, page("Login refused", &e.to_string()));
        }
    };
    if let Some(err) = q.get("error") {
        let msg = format!("Upstox refused the login: {err}");
        let _ = ctx.done.send(Err(anyhow::anyhow!("{msg}"))).await;
        return (StatusCode::BAD_REQUEST, page("Login failed", &msg));
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
        let msg =
            "the callback came without an authorization code; start `stoxide login` again and complete the dialog";
        let _ = ctx.done.send(Err(anyhow::anyhow!("{msg}"))).await;
        return (StatusCode::BAD_REQUEST, page("Login failed", msg));
    };
    debug_assert_eq!(pending.client_id, ctx.app.creds.client_id);
    let result = async {
        let tokens = ctx
            .client
            .exchange_code(&ctx.app.creds, code)
            .await
            .context("exchanging the authorization code")?;
        let profile = tokens.profile.clone();
        let account = ctx
            .vault
            .store_checked(&NewToken::from_exchange(
                &tokens,
                &ctx.app.creds.client_id,
                &ctx.app.base_url,
            ))
            .await?;
        anyhow::Ok((profile, account))
    }
    .await;
    let reply = match &result {
        Ok((p, _)) => (
            StatusCode::OK,
            page(
                "Logged in",
                &format!(
                    "Logged in as {}; the token is in the vault. You can close this tab.",
                    p.user_id
                ),
            ),
        ),
        Err(e) => (StatusCode::BAD_GATEWAY, page("Login failed", &format!("{e:#}"))),
    };
    let _ = ctx.done.send(result).await;
    reply
}

struct WebhookCtx {
    app: App,
    vault: Vault,
    done: mpsc::Sender<anyhow::Result<(Profile, stoxide_vault::Account)>>,
}

fn epoch_ms(v: &serde_json::Value, key: &str) -> Option<chrono::DateTime<Utc>> {
    let ms = match v.get(key)? {
        serde_json::Value::String(s) => s.parse().ok()?,
        serde_json::Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    Utc.timestamp_millis_opt(ms).single()
}

async fn webhook(
    State(ctx): State<Arc<WebhookCtx>>,
    method: Method,
    body: axum::body::Bytes,
) -> (StatusCode, &'static str) {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "POST the token here");
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        tracing::warn!("refused a webhook delivery that is not JSON");
        return (StatusCode::BAD_REQUEST, "not JSON");
    };
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("");
    if field("message_type") != "access_token" || field("client_id") != ctx.app.creds.client_id {
        tracing::warn!("refused a webhook delivery for another app or message type");
        return (StatusCode::BAD_REQUEST, "not an access token for this app");
    }
    let token = SecretString::from(field("access_token"));
    let user_id = field("user_id").to_owned();
    // Deliveries carry no signature: the token is believed only when Upstox accepts it for the
    // user the delivery names.
    let (outcome, profile) = match crate::vault::probe(&ctx.app.base_url, &token).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot check a delivered token");
            return (StatusCode::BAD_GATEWAY, "cannot check the token");
        }
    };
    let Some(profile) = profile.filter(|p| outcome == CheckOutcome::Valid && p.user_id == user_id) else {
        tracing::warn!("refused a webhook delivery whose token Upstox does not accept for its user");
        return (StatusCode::BAD_REQUEST, "token not accepted");
    };
    let issued_at = epoch_ms(&v, "issued_at").unwrap_or_else(Utc::now);
    let result = ctx
        .vault
        .store_checked(&NewToken {
            account_id: profile.user_id.clone(),
            client_id: Some(ctx.app.creds.client_id.clone()),
            user_name: profile.user_name.clone(),
            base_url: ctx.app.base_url.clone(),
            access_token: token,
            extended_token: None,
            issued_at,
            expires_at: epoch_ms(&v, "expires_at"),
            origin: TokenOrigin::TokenRequest,
        })
        .await
        .map_err(anyhow::Error::from)
        .map(|a| (profile, a));
    let ok = result.is_ok();
    let _ = ctx.done.send(result).await;
    if ok {
        (StatusCode::OK, "stored")
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, "could not store the token")
    }
}

async fn wait_for(
    rx: &mut mpsc::Receiver<anyhow::Result<(Profile, stoxide_vault::Account)>>,
    timeout: Duration,
    what: &str,
) -> anyhow::Result<(Profile, stoxide_vault::Account)> {
    tokio::select! {
        r = rx.recv() => r.context("the local server stopped")?,
        () = tokio::time::sleep(timeout) => anyhow::bail!("no {what} within {} s; run the command again (--timeout sets the wait)", timeout.as_secs()),
        _ = tokio::signal::ctrl_c() => anyhow::bail!("cancelled; nothing was stored"),
    }
}

fn print_login(
    out: &Output,
    profile: &Profile,
    account: &stoxide_vault::Account,
    vault_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let expires = account
        .expires_at
        .map(|e| e.with_timezone(&IST).format("%Y-%m-%d %H:%M IST").to_string())
        .unwrap_or_default();
    let json = serde_json::json!({
        "account": account.id,
        "user_name": profile.user_name,
        "email": profile.email,
        "broker": profile.broker,
        "client_id": account.client_id,
        "origin": account.origin,
        "expires_at": account.expires_at,
    });
    out.show(&json, || {
        let mut t = table(&["account", "name", "email", "app", "token expires"]);
        t.add_row(vec![
            account.id.clone(),
            profile.user_name.clone().unwrap_or_default(),
            profile.email.clone().unwrap_or_default(),
            account.client_id.clone().unwrap_or_default(),
            expires,
        ]);
        t
    })?;
    if !out.json {
        say!("token stored encrypted in {}", vault_dir.display());
    }
    Ok(())
}

pub(crate) async fn login(globals: &Globals, out: &Output, args: LoginArgs) -> anyhow::Result<()> {
    let vault = crate::vault::open(globals).await?;
    let app = resolve_app(&args, globals, &vault).await?;
    let vault_dir = vault.data_dir().to_owned();
    vault
        .put_app(&NewApp {
            client_id: app.creds.client_id.clone(),
            secret: app.new_secret.then(|| app.creds.client_secret.clone()),
            redirect_uri: app.creds.redirect_uri.clone(),
            mode: app.mode,
            base_url: app.base_url.clone(),
        })
        .await?;
    let client = client_for(&app.base_url)?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let (tx, mut rx) = mpsc::channel(4);
    let cancel = tokio_util::sync::CancellationToken::new();

    let (profile, account) = if args.request {
        let bind = |addr: SocketAddr| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for the token delivery"))
        };
        // With --listen the webhook is up before the request goes out; otherwise its address is
        // only known from the answer (Upstox approves in seconds at the earliest, by a person).
        let early = match args.listen {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        let answer = client
            .request_access_token(&app.creds.client_id, &app.creds.client_secret)
            .await
            .context("the access-token request")?;
        let listener = match early {
            Some(l) => l,
            None => {
                let notifier =
                    answer.notifier_url.clone().filter(|u| !u.is_empty()).context(
                        "Upstox named no notifier URL for this app: set one for the app, or pass --listen ADDR",
                    )?;
                bind(loopback_target(&notifier, "notifier URL")?.0).await?
            }
        };
        let addr = listener.local_addr()?;
        let ctx = Arc::new(WebhookCtx { app, vault, done: tx });
        let router = axum::Router::new().fallback(webhook).with_state(ctx);
        let stop = cancel.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        });
        let expiry = answer
            .authorization_expiry
            .parse::<i64>()
            .ok()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
        eprintln!(
            "Approve the request in the Upstox app (or WhatsApp); the token will arrive on {addr}{}.",
            expiry
                .map(|e| format!(" (the request lapses at {})", e.with_timezone(&IST).format("%H:%M IST")))
                .unwrap_or_default()
        );
        let bar = spinner("waiting for approval…".into());
        let r = wait_for(&mut rx, timeout, "approval").await;
        bar.finish_and_clear();
        cancel.cancel();
        let _ = server.await;
        r?
    } else {
        let (addr, path) = loopback_target(&app.creds.redirect_uri, "redirect URI")?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for the login callback (is another login running?)"))?;
        let states = LoginStates::new();
        let state = states.issue(&app.creds.client_id, Utc::now());
        let url = client.authorize_url(&app.creds.client_id, &app.creds.redirect_uri, &state);
        say!("Open this URL in a browser to log in:\n{url}");
        if !args.no_browser {
            open_browser(&url);
        }
        let ctx = Arc::new(OauthCtx {
            states,
            client,
            app,
            vault,
            done: tx,
        });
        let path = if path.is_empty() { "/".to_owned() } else { path };
        let router = axum::Router::new()
            .route(&path, axum::routing::get(oauth_callback))
            .with_state(ctx);
        let stop = cancel.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        });
        let bar = spinner(format!("waiting for the login callback on {addr}…"));
        let r = wait_for(&mut rx, timeout, "login").await;
        bar.finish_and_clear();
        cancel.cancel();
        let _ = server.await;
        r?
    };
    print_login(out, &profile, &account, &vault_dir)
}

pub(crate) async fn logout(globals: &Globals, out: &Output, _args: LogoutArgs) -> anyhow::Result<()> {
    let vault = crate::vault::open_existing(globals)
        .await?
        .context("there is no vault, so nobody is logged in (`stoxide login` creates it)")?;
    let account = crate::vault::require(&vault, globals).await?;
    let token = vault.access_token(&account.id).await?;
    let upstox = match &token {
        None => "no token was stored".to_owned(),
        Some(t) => {
            let client = client_for(&account.base_url)?.for_user(&account.id, t.clone());
            match client.logout().await {
                Ok(_) => "Upstox revoked the token".to_owned(),
                Err(e) if e.is_unauthorized() => "the token was already invalid at Upstox".to_owned(),
                Err(e) => format!("Upstox could not be told ({e}); the token stays valid there until 03:30 IST"),
            }
        }
    };
    vault.wipe_token(&account.id).await?;
    vault.close().await;
    let json = serde_json::json!({"account": account.id, "logged_out": true, "upstox": upstox});
    if out.json {
        out.print_json(&json)
    } else {
        say!("logged out {}: {upstox}; the token is wiped from the vault", account.id);
        Ok(())
    }
}
