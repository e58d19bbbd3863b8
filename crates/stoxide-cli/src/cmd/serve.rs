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
            data_dir,
            app,
            instruments: DEFAULT_INSTRUMENTS.iter().map(|s| (*s).to_owned()).collect(),
        },
        vault,
    )?;
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
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    crate::output::announce(&format!("dashboard: http://{}/", listener.local_addr()?));
    stoxide_server::serve(state, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("the dashboard server failed")
}
