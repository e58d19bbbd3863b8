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
use secrecy::{ExposeSecret, SecretString};
use stoxide_app::clients::Clients;
use stoxide_app::linking::{DeliveryError, LinkApp, Linked, LoginError, Logins, accept_delivery};
use stoxide_vault::{AppMode, Vault};
use tokio::sync::mpsc;
use upstox_client::login::AppCredentials;
use upstox_client::user::Profile;
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
    #[arg(long, value_name = "SECRET", value_parser = secret_arg)]
    api_secret: Option<SecretString>,
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

/// A secret flag, kept secret from the moment it is parsed.
fn secret_arg(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s))
}

/// Who waits for this command's login callbacks.
const CLI_OWNER: &str = "stoxide login";

/// The app to log in with, from flags, env/config and the vault, in that order; and whether
/// its secret came from flags/env and should be (re)stored.
async fn resolve_app(args: &LoginArgs, globals: &Globals, vault: &Vault) -> anyhow::Result<(LinkApp, bool)> {
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
        .filter(|s| !s.expose_secret().is_empty());
    let new_secret = flag_secret.is_some();
    let secret = match flag_secret {
        Some(s) => s,
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
    Ok((
        LinkApp {
            creds: AppCredentials {
                client_id,
                client_secret: secret,
                redirect_uri,
            },
            mode,
            base_url,
        },
        new_secret,
    ))
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
    logins: Logins,
    clients: Clients,
    app: LinkApp,
    vault: Vault,
    done: mpsc::Sender<anyhow::Result<Linked>>,
}

async fn oauth_callback(
    State(ctx): State<Arc<OauthCtx>>,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, Html<String>) {
    let result = ctx
        .logins
        .finish(&ctx.vault, &ctx.clients, &ctx.app, &q, CLI_OWNER)
        .await;
    match result {
        Ok(linked) => {
            let reply = page(
                "Logged in",
                &format!(
                    "Logged in as {}; the token is in the vault. You can close this tab.",
                    linked.profile.user_id
                ),
            );
            let _ = ctx.done.send(Ok(linked)).await;
            (StatusCode::OK, reply)
        }
        // A callback that is not ours (unknown, replayed, expired state) is refused; the
        // command keeps waiting for the right one.
        Err(stoxide_app::Error::Login(e @ (LoginError::State(_) | LoginError::OtherSession))) => {
            tracing::warn!(%e, "refused a login callback");
            (StatusCode::BAD_REQUEST, page("Login refused", &e.to_string()))
        }
        Err(e) => {
            let msg = match &e {
                stoxide_app::Error::Login(LoginError::NoCode) => {
                    "the callback came without an authorization code; start `stoxide login` again and complete the dialog"
                        .to_owned()
                }
                other => other.to_string(),
            };
            let status = match &e {
                stoxide_app::Error::Login(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::BAD_GATEWAY,
            };
            let reply = page("Login failed", &msg);
            let _ = ctx.done.send(Err(anyhow::anyhow!("{msg}"))).await;
            (status, reply)
        }
    }
}

struct WebhookCtx {
    clients: Clients,
    app: LinkApp,
    vault: Vault,
    done: mpsc::Sender<anyhow::Result<Linked>>,
}

async fn webhook(
    State(ctx): State<Arc<WebhookCtx>>,
    method: Method,
    body: axum::body::Bytes,
) -> (StatusCode, &'static str) {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "POST the token here");
    }
    match accept_delivery(&ctx.vault, &ctx.clients, &ctx.app, &body).await {
        Ok(linked) => {
            let _ = ctx.done.send(Ok(linked)).await;
            (StatusCode::OK, "stored")
        }
        Err(stoxide_app::Error::Delivery(e)) => {
            tracing::warn!(%e, "refused a webhook delivery");
            match e {
                DeliveryError::NotJson => (StatusCode::BAD_REQUEST, "not JSON"),
                DeliveryError::OtherApp => (StatusCode::BAD_REQUEST, "not an access token for this app"),
                DeliveryError::NotAccepted => (StatusCode::BAD_REQUEST, "token not accepted"),
                _ => (StatusCode::BAD_GATEWAY, "cannot check the token"),
            }
        }
        Err(e) => {
            let _ = ctx.done.send(Err(e.into())).await;
            (StatusCode::INTERNAL_SERVER_ERROR, "could not store the token")
        }
    }
}

async fn wait_for(
    rx: &mut mpsc::Receiver<anyhow::Result<Linked>>,
    timeout: Duration,
    what: &str,
) -> anyhow::Result<Linked> {
    tokio::select! {
        r = rx.recv() => r.context("the local server stopped")?,
        () = tokio::time::sleep(timeout) => anyhow::bail!("no {what} within {} s; run the command again (--timeout sets the wait)", timeout.as_secs()),
        _ = tokio::signal::ctrl_c() => anyhow::bail!("cancelled; nothing was stored"),
    }
}

fn print_login(out: &Output, profile: &Profile, account: &stoxide_vault::Account, vault: &str) -> anyhow::Result<()> {
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
        say!("token stored encrypted in {vault}");
    }
    Ok(())
}

pub(crate) async fn login(globals: &Globals, out: &Output, args: LoginArgs) -> anyhow::Result<()> {
    let vault = crate::vault::open(globals).await?;
    let (app, new_secret) = resolve_app(&args, globals, &vault).await?;
    let vault_location = vault.location().to_string();
    stoxide_app::linking::remember(&vault, &app, new_secret).await?;
    let clients = Clients::default();
    let client = clients.client(&app.base_url)?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let (tx, mut rx) = mpsc::channel(4);
    let cancel = tokio_util::sync::CancellationToken::new();

    let linked = if args.request {
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
        let ctx = Arc::new(WebhookCtx {
            clients,
            app,
            vault,
            done: tx,
        });
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
        let logins = Logins::new();
        let url = logins.start(&clients, &app, CLI_OWNER)?;
        say!("Open this URL in a browser to log in:\n{url}");
        if !args.no_browser {
            open_browser(&url);
        }
        let ctx = Arc::new(OauthCtx {
            logins,
            clients,
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
    print_login(out, &linked.profile, &linked.account, &vault_location)?;
    // Upstox delivers the token of whoever approved; asked for another account, that is said
    // (the token is stored under the user it belongs to, the one asked for is unchanged).
    if let Some(wanted) = globals.account.as_deref()
        && !linked.account.id.eq_ignore_ascii_case(wanted)
    {
        anyhow::bail!(
            "the token Upstox delivered belongs to {got}, not {wanted}: it is stored under {got}, and {wanted}'s token is unchanged; to link {wanted}, approve the login as {wanted} (sign in to Upstox as that user) and run the command again",
            got = linked.account.id
        );
    }
    Ok(())
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
            let client = Clients::default().for_user(&account.base_url, &account.id, t.clone())?;
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
