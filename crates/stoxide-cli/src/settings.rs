//! Where the CLI gets its connection: flags, then `UPSTOX_*` env vars, then the config file;
//! with no base URL at all it starts an embedded simulator and uses its seeded user.

use std::path::PathBuf;

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use stoxide_app::clients::Clients;
use upstox_client::{ClientConfig, Hosts, UpstoxClient};
use upstox_sim::{SimConfig, Simulator};

/// Global flags.
#[derive(Debug, Default)]
pub(crate) struct Globals {
    pub config: Option<PathBuf>,
    pub base_url: Option<String>,
    /// The vault's directory (`--data-dir` / `STOXIDE_DATA_DIR`).
    pub data_dir: Option<PathBuf>,
    /// The vault account to act for (`--account` / `STOXIDE_ACCOUNT`).
    pub account: Option<String>,
}

/// The connection settings.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Settings {
    pub base_url: Option<String>,
    /// Secrets from the config file or the environment stay secret from the moment they are read.
    pub access_token: Option<SecretString>,
    pub api_key: Option<String>,
    pub api_secret: Option<SecretString>,
    pub redirect_uri: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("base_url", &self.base_url)
            .field("access_token", &self.access_token.as_ref().map(|_| "<redacted>"))
            .field("api_key", &self.api_key)
            .field("api_secret", &self.api_secret.as_ref().map(|_| "<redacted>"))
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// Folds a multi-line parser message (with its source excerpt) into one line.
pub(crate) fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('|') && !l.starts_with('^') && !l.starts_with(|c: char| c.is_ascii_digit())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("stoxide").join("config.toml"))
}

impl Settings {
    /// Config file, then env (`UPSTOX_BASE_URL`, `UPSTOX_ACCESS_TOKEN`, ...), then flags.
    pub(crate) fn load(globals: &Globals) -> anyhow::Result<Self> {
        let mut fig = Figment::new();
        match &globals.config {
            Some(path) => {
                anyhow::ensure!(
                    path.exists(),
                    "config file {} does not exist; fix the --config path",
                    path.display()
                );
                fig = fig.merge(Toml::file_exact(path));
            }
            None => {
                if let Some(path) = default_config_path().filter(|p| p.exists()) {
                    fig = fig.merge(Toml::file_exact(path));
                }
            }
        }
        fig = fig.merge(Env::prefixed("UPSTOX_").only(&[
            "base_url",
            "access_token",
            "api_key",
            "api_secret",
            "redirect_uri",
        ]));
        let mut s: Settings = fig
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {}", one_line(&e.to_string())))?;
        if let Some(b) = &globals.base_url {
            s.base_url = Some(b.clone());
        }
        Ok(s)
    }
}

/// A client ready to call, and the embedded simulator behind it when there is one.
pub(crate) struct Session {
    /// The process's clients (one rate limiter for all).
    pub clients: Clients,
    pub client: UpstoxClient,
    pub sim: Option<Simulator>,
    /// The access token, for the feeds (never printed).
    pub token: Option<SecretString>,
    /// The vault account the token came from, when it came from the vault.
    pub account: Option<crate::vault::VaultAccount>,
}

/// `production`, `sandbox` or an http(s) URL.
pub(crate) fn hosts_for(url: &str) -> anyhow::Result<Hosts> {
    Ok(Hosts::from_base_url(url)?)
}

impl Session {
    /// The token comes from flags/env/config first, then the vault (`--account`, or its only
    /// account); with neither and no base URL, an embedded simulator serves.
    pub(crate) async fn open(globals: &Globals) -> anyhow::Result<Self> {
        let settings = Settings::load(globals)?;
        let clients = Clients::default();
        if settings
            .access_token
            .as_ref()
            .is_none_or(|t| t.expose_secret().trim().is_empty())
            && let Some(account) = crate::vault::session_account(globals).await?
        {
            let url = globals
                .base_url
                .clone()
                .unwrap_or_else(|| account.account.base_url.clone());
            let token = account.token.clone();
            let client = clients.for_user(&url, &account.account.id, token.clone())?;
            return Ok(Self {
                clients,
                client,
                sim: None,
                token: Some(token),
                account: Some(account),
            });
        }
        match settings.base_url.as_deref() {
            None => {
                let sim = Simulator::start(SimConfig::default(), "127.0.0.1:0".parse()?)
                    .await
                    .context("starting the embedded simulator")?;
                eprintln!(
                    "note: using an embedded simulator ({}); its state ends with this command. Run `stoxide sim` and set UPSTOX_BASE_URL to keep state, or configure the real Upstox.",
                    sim.base_url()
                );
                let token = SecretString::from(sim.token_of("SIM001").context("the simulator has no seeded user")?);
                let client = clients.for_user(&sim.base_url(), "SIM001", token.clone())?;
                Ok(Self {
                    clients,
                    client,
                    sim: Some(sim),
                    token: Some(token),
                    account: None,
                })
            }
            Some(url) => {
                let mut client = clients.client(url)?;
                let token = settings
                    .access_token
                    .filter(|t| !t.expose_secret().trim().is_empty())
                    .map(|t| SecretString::from(t.expose_secret().trim()));
                if let Some(t) = &token {
                    client = client.with_token(t.clone());
                }
                Ok(Self {
                    clients,
                    client,
                    sim: None,
                    token,
                    account: None,
                })
            }
        }
    }

    /// The client without its token (the streamers add the token themselves at each connect).
    pub(crate) fn anonymous_client(&self) -> anyhow::Result<UpstoxClient> {
        Ok(UpstoxClient::new(
            ClientConfig::new(self.client.hosts().clone()).with_limiter(self.clients.limiter().clone()),
        )?)
    }

    /// Stops the embedded simulator, if any, and closes the vault.
    pub(crate) async fn close(self) {
        if let Some(sim) = self.sim {
            sim.shutdown().await;
        }
        if let Some(a) = self.account {
            a.vault.close().await;
        }
    }
}
