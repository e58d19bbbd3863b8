//! `stoxide serve`: the web dashboard over the vault.

use crate::output::say;
use std::net::SocketAddr;

use anyhow::Context;
use stoxide_server::{DEFAULT_INSTRUMENTS, LinkApp, ServerConfig, Shared};
use stoxide_vault::AppMode;
use upstox_client::login::AppCredentials;

use crate::settings::{Globals, Settings};

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (loopback by default: put a TLS proxy in front to expose it).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The dashboard's admin user.
    #[arg(long, default_value = "admin")]
    admin_user: String,
    /// The linking app is a vendor app (many users).
    #[arg(long)]
    vendor: bool,
    /// On a portal with nobody in it yet, create its first operator with this email (password
    /// from `STOXIDE_OPERATOR_PASSWORD`, or generated and printed once).
    #[arg(long, value_name = "EMAIL")]
    operator: Option<String>,
}

/// Random printable password for a new admin.
pub(crate) fn new_password() -> String {
    stoxide_server::auth::random_hex()[..20].to_owned()
}

pub(crate) async fn run(globals: &Globals, args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = crate::vault::data_dir(globals)?;
    let settings = Settings::load(globals)?;
    // The process's one vault handle; opening it here also checks its key before the server
    // takes requests.
    let vault = crate::vault::open(globals).await?;
    let app = match (settings.api_key, settings.api_secret) {
        (Some(client_id), Some(secret)) => {
            let redirect_uri = settings
                .redirect_uri
                .unwrap_or_else(|| format!("http://{}/oauth/callback", args.addr));
            anyhow::ensure!(
                redirect_uri.ends_with("/oauth/callback"),
                "the redirect URI {redirect_uri} must end in /oauth/callback and reach this dashboard"
            );
            Some(LinkApp {
                creds: AppCredentials {
                    client_id,
                    client_secret: secret,
                    redirect_uri,
                },
                mode: if args.vendor {
                    AppMode::Vendor
                } else {
                    AppMode::Individual
                },
                base_url: globals
                    .base_url
                    .clone()
                    .or(settings.base_url)
                    .unwrap_or_else(|| "https://api.upstox.com".into()),
            })
        }
        _ => None,
    };
    let state = Shared::new(
        ServerConfig {
            operator_two_factor: true,
            data_dir: data_dir.clone(),
            app,
            instruments: DEFAULT_INSTRUMENTS.iter().map(|s| (*s).to_owned()).collect(),
        },
        vault,
    )?;
    // A client's "halt and exit everything" reaches `stoxide engine run` on the same data
    // directory (its address and control token are read there at each use).
    state
        .portal
        .attach_engine(std::sync::Arc::new(stoxide_portal::engine_link::EngineByFiles::new(
            data_dir,
        )));
    match std::env::var("STOXIDE_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty()) {
        Some(p) => state.admin.set(&args.admin_user, &p)?,
        None if !state.admin.exists() => {
            let p = new_password();
            state.admin.set(&args.admin_user, &p)?;
            say!(
                "created the dashboard admin {}; password (shown once): {p}",
                args.admin_user
            );
        }
        None => {}
    }
    if let Some(email) = &args.operator {
        first_operator(&state, email).await?;
    }
    let stop_notifier = tokio_util::sync::CancellationToken::new();
    spawn_notifier(&state, smtp_from_env()?, stop_notifier.clone())?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let bound = listener.local_addr()?;
    crate::output::announce(&format!("dashboard: http://{bound}/"));
    crate::output::announce(&format!(
        "portal API: http://{bound}/api/v1 (described at /api/v1/openapi.json)"
    ));
    let served = stoxide_server::serve(state, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    stop_notifier.cancel();
    served.context("the dashboard server failed")
}

/// The SMTP relay for notification emails, from `STOXIDE_SMTP_HOST` (none: emails are not
/// sent, webhooks are), `STOXIDE_SMTP_PORT` (587), `STOXIDE_SMTP_SECURITY` (starttls, tls or
/// none), `STOXIDE_SMTP_FROM`, `STOXIDE_SMTP_USER`, `STOXIDE_SMTP_PASSWORD`.
pub(crate) fn smtp_from_env() -> anyhow::Result<Option<stoxide_portal::notify::SmtpConfig>> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let Some(host) = var("STOXIDE_SMTP_HOST") else {
        return Ok(None);
    };
    let port = match var("STOXIDE_SMTP_PORT") {
        Some(p) => p
            .parse()
            .map_err(|_| anyhow::anyhow!("STOXIDE_SMTP_PORT={p:?} is not a port number"))?,
        None => 587,
    };
    let security = match var("STOXIDE_SMTP_SECURITY") {
        Some(s) => s
            .parse()
            .map_err(|e: String| anyhow::anyhow!("STOXIDE_SMTP_SECURITY: {e}"))?,
        None => stoxide_portal::notify::SmtpSecurity::StartTls,
    };
    let from = var("STOXIDE_SMTP_FROM")
        .context("STOXIDE_SMTP_FROM is needed with STOXIDE_SMTP_HOST (the notifications' From address)")?;
    Ok(Some(stoxide_portal::notify::SmtpConfig {
        host,
        port,
        security,
        from,
        username: var("STOXIDE_SMTP_USER"),
        password: var("STOXIDE_SMTP_PASSWORD").map(secrecy::SecretString::from),
    }))
}

/// Sends the portal's notifications (scanned every 5 s) until `stop`.
pub(crate) fn spawn_notifier(
    state: &stoxide_server::AppState,
    smtp: Option<stoxide_portal::notify::SmtpConfig>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let delivery = stoxide_portal::notify::Delivery::new(smtp.as_ref())?;
    let notifier = stoxide_portal::notify::Notifier::new(
        &state.portal,
        std::sync::Arc::new(delivery),
        chrono::Utc::now().timestamp_millis(),
    );
    tokio::spawn(notifier.run(std::time::Duration::from_secs(5), async move { stop.cancelled().await }));
    Ok(())
}

/// The portal's first operator, unless the portal has people already.
async fn first_operator(state: &stoxide_server::AppState, email: &str) -> anyhow::Result<()> {
    if !state.people.list(None).await?.is_empty() {
        return Ok(());
    }
    let (password, shown) = match std::env::var("STOXIDE_OPERATOR_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
    {
        Some(p) => (p, false),
        None => (new_password(), true),
    };
    let now = chrono::Utc::now().timestamp_millis();
    let secret = secrecy::SecretString::from(password);
    let person = state
        .people
        .first_operator(email, "Operator", &secret, now)
        .await
        .with_context(|| format!("cannot create the portal's first operator {email}"))?;
    if shown {
        use secrecy::ExposeSecret;
        say!(
            "created the portal operator {}; password (shown once): {}",
            person.email,
            secret.expose_secret()
        );
    } else {
        say!("created the portal operator {}", person.email);
    }
    Ok(())
}
