//! `stoxide token status|import|export` and `stoxide vault info|rotate-key`.

use crate::output::say;
use std::path::PathBuf;

use anyhow::Context;
use chrono::Utc;
use secrecy::ExposeSecret;
use stoxide_vault::token_file::{read_token_file, write_token_file};
use stoxide_vault::{Check, NewToken, TokenOrigin, TokenState};
use upstox_types::IST;

use crate::output::{Output, table};
use crate::settings::{Globals, Settings};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Whether each token works: valid (expires in …), expired, revoked, rejected — and what to do.
    Status {
        /// Every account in the vault (default: the chosen or only one).
        #[arg(long)]
        all: bool,
        /// Ask Upstox even if a check younger than a minute exists.
        #[arg(long)]
        refresh: bool,
    },
    /// Import a plain token file (the `.upstox_token` habit) into the vault.
    Import {
        /// A file with the bare token on its first line, or JSON with "access_token".
        file: PathBuf,
        /// Do not check the token with Upstox (then --account is required unless the file names the user).
        #[arg(long)]
        offline: bool,
    },
    /// Write the account's token in clear, for tools that need a plain file.
    Export {
        /// Write to this new file (mode 0600) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum VaultCommand {
    /// Where the vault is, where its key comes from, what it holds.
    Info,
    /// Re-encrypt every secret under a new key (crash-safe). With STOXIDE_VAULT_KEY, give the new
    /// key in STOXIDE_VAULT_NEW_KEY and switch the variable afterwards.
    RotateKey,
}

pub(crate) async fn run(globals: &Globals, out: &Output, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Status { all, refresh } => status(globals, out, all, refresh).await,
        TokenCommand::Import { file, offline } => import(globals, out, &file, offline).await,
        TokenCommand::Export { out: file } => export(globals, file).await,
    }
}

async fn status(globals: &Globals, out: &Output, all: bool, refresh: bool) -> anyhow::Result<()> {
    let dir = crate::vault::data_dir(globals)?;
    let vault = crate::vault::open_existing(globals).await?.with_context(|| {
        format!(
            "there is no vault at {}; run `stoxide login` to add an account",
            dir.display()
        )
    })?;
    let accounts = if all {
        vault.accounts().await?
    } else {
        vec![crate::vault::require(&vault, globals).await?]
    };
    anyhow::ensure!(!accounts.is_empty(), "the vault holds no account; run `stoxide login`");
    let clients = stoxide_app::clients::Clients::default();
    let mut statuses = Vec::new();
    for a in &accounts {
        statuses.push((a, crate::vault::status(&vault, &clients, a, refresh).await?));
    }
    vault.close().await;
    if out.json {
        let json: Vec<_> = statuses
            .iter()
            .map(|(a, s)| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("summary".into(), s.summary().into());
                    if let Some(step) = &s.next_step {
                        o.insert("next_action".into(), serde_json::to_value(step).unwrap_or_default());
                        o.insert("next_step".into(), crate::words::next_step(step).into());
                    }
                    o.insert("user_name".into(), a.user_name.clone().into());
                    o.insert("client_id".into(), a.client_id.clone().into());
                    o.insert("origin".into(), serde_json::to_value(a.origin).unwrap_or_default());
                }
                v
            })
            .collect();
        out.print_json(&json)?;
    } else {
        let mut t = table(&["account", "name", "app", "status", "expires", "next step"]);
        for (a, s) in &statuses {
            t.add_row(vec![
                a.id.clone(),
                a.user_name.clone().unwrap_or_default(),
                a.client_id.clone().unwrap_or_default(),
                s.summary(),
                a.expires_at
                    .map(|e| e.with_timezone(&IST).format("%d %b %H:%M IST").to_string())
                    .unwrap_or_default(),
                s.next_step.as_ref().map(crate::words::next_step).unwrap_or_default(),
            ]);
        }
        say!("{t}");
    }
    // Scripts ask "can I trade?": anything but a confirmed valid token is a non-zero exit.
    let unchecked = statuses
        .iter()
        .filter(|(_, s)| matches!(s.state, TokenState::Unchecked { .. }))
        .count();
    let bad = statuses.iter().filter(|(_, s)| !s.is_valid()).count() - unchecked;
    anyhow::ensure!(bad == 0, "{bad} account(s) need a new login; see the next step above");
    anyhow::ensure!(
        unchecked == 0,
        "{unchecked} account(s) could not be checked with Upstox; see the status above"
    );
    Ok(())
}

async fn import(globals: &Globals, out: &Output, file: &std::path::Path, offline: bool) -> anyhow::Result<()> {
    let parsed = read_token_file(file)?;
    let settings = Settings::load(globals)?;
    let base_url = globals
        .base_url
        .clone()
        .or(settings.base_url)
        .unwrap_or_else(|| "https://api.upstox.com".into());
    crate::settings::hosts_for(&base_url)?;
    let modified = std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .map(chrono::DateTime::<Utc>::from);
    let (account_id, user_name, check) = if offline {
        let id = globals
            .account
            .clone()
            .or_else(|| parsed.user_id.clone())
            .context("--offline needs --account ID (the Upstox user id the token belongs to)")?;
        (id, None, None)
    } else {
        let (outcome, profile) = crate::vault::probe(
            &stoxide_app::clients::Clients::default(),
            &base_url,
            &parsed.access_token,
        )
        .await?;
        let profile = match (outcome, profile) {
            (_, Some(p)) => p,
            (stoxide_vault::CheckOutcome::Rejected { message, .. }, None) => anyhow::bail!(
                "Upstox rejects the token in {} ({message}); it is expired or revoked — nothing was imported; log in with `stoxide login`",
                file.display()
            ),
            (stoxide_vault::CheckOutcome::Unreachable { reason }, None) => anyhow::bail!(
                "cannot check the token with Upstox ({reason}); nothing was imported (use --offline --account ID to import unchecked)"
            ),
            (stoxide_vault::CheckOutcome::Valid, None) => {
                anyhow::bail!("Upstox accepted the token but sent no profile")
            }
        };
        if let Some(want) = globals.account.as_ref().or(parsed.user_id.as_ref())
            && want != &profile.user_id
        {
            anyhow::bail!(
                "the token belongs to {}, not {want}; nothing was imported",
                profile.user_id
            );
        }
        let check = Check {
            at: Utc::now(),
            outcome: stoxide_vault::CheckOutcome::Valid,
        };
        (profile.user_id, profile.user_name, Some(check))
    };
    let vault = crate::vault::open(globals).await?;
    let issued_at = parsed.issued_at.or(modified).unwrap_or_else(Utc::now);
    let account = vault
        .store_token(&NewToken {
            account_id,
            client_id: None,
            user_name,
            base_url,
            access_token: parsed.access_token,
            extended_token: None,
            issued_at,
            expires_at: parsed.expires_at,
            origin: TokenOrigin::Imported,
        })
        .await?;
    if let Some(c) = &check {
        vault.record_check(&account.id, c).await?;
    }
    vault.close().await;
    eprintln!(
        "warning: {} still holds the token in clear; delete it now that the vault holds it (e.g. `shred -u {}`)",
        file.display(),
        file.display()
    );
    let json = serde_json::json!({"account": account.id, "imported": true, "checked": check.is_some(), "expires_at": account.expires_at});
    if out.json {
        out.print_json(&json)
    } else {
        say!(
            "imported the token of {} ({}); it expires {}",
            account.id,
            if check.is_some() {
                "Upstox accepts it"
            } else {
                "not checked"
            },
            account
                .expires_at
                .map(|e| e.with_timezone(&IST).format("%Y-%m-%d %H:%M IST").to_string())
                .unwrap_or_default()
        );
        Ok(())
    }
}

async fn export(globals: &Globals, file: Option<PathBuf>) -> anyhow::Result<()> {
    let vault = crate::vault::open_existing(globals)
        .await?
        .context("there is no vault to export from")?;
    let account = crate::vault::require(&vault, globals).await?;
    let token = vault.access_token(&account.id).await?.with_context(|| {
        format!(
            "account {} has no token (logged out); `stoxide login --account {}`",
            account.id, account.id
        )
    })?;
    vault.close().await;
    eprintln!(
        "warning: this writes the access token of {} in clear; whoever reads it can trade on the account until 03:30 IST",
        account.id
    );
    match file {
        Some(path) => {
            write_token_file(&path, &token)?;
            eprintln!("wrote {} (mode 0600)", path.display());
        }
        None => say!("{}", token.expose_secret()),
    }
    Ok(())
}

pub(crate) async fn vault_cmd(globals: &Globals, out: &Output, cmd: VaultCommand) -> anyhow::Result<()> {
    match cmd {
        VaultCommand::Info => {
            let dir = crate::vault::data_dir(globals)?;
            let Some(vault) = crate::vault::open_existing(globals).await? else {
                say!("no vault yet at {} (`stoxide login` creates it)", dir.display());
                return Ok(());
            };
            let accounts = vault.accounts().await?;
            let apps = vault.apps().await?;
            let keys = vault.key_report().await?;
            let sealed: Vec<String> = keys
                .sealed
                .iter()
                .map(|(k, n)| match k {
                    Some(k) => format!("{n} under key {k}"),
                    None => format!("{n} from before key ids"),
                })
                .collect();
            let json = serde_json::json!({
                "data_dir": dir,
                "database": vault.location().describe(),
                "key_source": vault.key_source().to_string(),
                "key_id": keys.current.to_string(),
                "keys": keys,
                "accounts": accounts.iter().map(|a| &a.id).collect::<Vec<_>>(),
                "apps": apps,
            });
            vault.close().await;
            if out.json {
                return out.print_json(&json);
            }
            say!("data directory: {}", dir.display());
            say!("database:       {}", json["database"].as_str().unwrap_or(""));
            say!(
                "key:            {} (key id {})",
                json["key_source"].as_str().unwrap_or(""),
                keys.current
            );
            say!(
                "sealed values:  {}",
                if sealed.is_empty() {
                    "none".to_owned()
                } else {
                    sealed.join(", ")
                }
            );
            say!(
                "accounts:       {}",
                accounts.iter().map(|a| a.id.as_str()).collect::<Vec<_>>().join(", ")
            );
            for a in apps {
                say!("app:            {} ({:?}, {})", a.client_id, a.mode, a.base_url);
            }
            Ok(())
        }
        VaultCommand::RotateKey => {
            let vault = crate::vault::open_existing(globals)
                .await?
                .context("there is no vault to rotate")?;
            let new_key = stoxide_vault::key::key_from_env(stoxide_vault::key::NEW_KEY_ENV)?;
            let env_key = matches!(vault.key_source(), stoxide_vault::KeySource::Env);
            if env_key && new_key.is_none() {
                anyhow::bail!(
                    "the vault key comes from {}: put the new key (64 hex digits, `openssl rand -hex 32`) in {} and run this again",
                    stoxide_vault::key::KEY_ENV,
                    stoxide_vault::key::NEW_KEY_ENV
                );
            }
            let report = vault.rotate_key(new_key).await?;
            vault.close().await;
            say!(
                "re-encrypted {} secret(s) under a new key ({})",
                report.secrets,
                report.key_source
            );
            if env_key {
                say!(
                    "now set {} to the value of {} everywhere the vault is used",
                    stoxide_vault::key::KEY_ENV,
                    stoxide_vault::key::NEW_KEY_ENV
                );
            }
            Ok(())
        }
    }
}
