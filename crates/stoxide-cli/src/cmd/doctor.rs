//! `stoxide doctor`: the 401/403 checklist (`stoxide-app`'s), step by step, each with ✓/✗ and
//! the concrete fix in the command line's words.

use std::time::Duration;

use stoxide_app::doctor::{self, Next, Report, Step, TokenSourceKind};

use crate::output::{Output, say};
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

fn print_report(out: &Output, report: &Report) -> anyhow::Result<()> {
    if out.json {
        let checks: Vec<serde_json::Value> = report
            .checks
            .iter()
            .map(|c| {
                let mut v = serde_json::json!({"step": c.step.label(), "ok": c.ok, "detail": c.detail});
                if let Some(f) = &c.fix {
                    v["fix"] = crate::words::fix(f).into();
                    v["fix_kind"] = serde_json::to_value(f).unwrap_or_default();
                }
                v
            })
            .collect();
        out.print_json(&checks)?;
    } else {
        for c in &report.checks {
            say!("{} {}: {}", if c.ok { "✓" } else { "✗" }, c.step.label(), c.detail);
            if let Some(fix) = &c.fix {
                say!("    fix: {}", crate::words::fix(fix));
            }
        }
    }
    Ok(())
}

/// The vault's checks, unless a token is configured outside it.
async fn vault_checks(globals: &Globals, report: &mut Report) -> Next {
    let configured = crate::settings::Settings::load(globals)
        .ok()
        .and_then(|s| s.access_token)
        .is_some_and(|t| !secrecy::ExposeSecret::expose_secret(&t).trim().is_empty());
    if configured {
        return Next::Continue;
    }
    let opened = match crate::vault::config(globals) {
        Ok(config) => stoxide_vault::Vault::open_existing(&config).await,
        Err(e) => {
            report.fail(Step::VaultPresent, e.to_string(), doctor::Fix::CreateVault);
            return Next::Stop;
        }
    };
    doctor::vault(report, opened, globals.account.as_deref()).await
}

pub(crate) async fn run(globals: &Globals, out: &Output, args: DoctorArgs) -> anyhow::Result<()> {
    let mut report = Report::default();
    if vault_checks(globals, &mut report).await == Next::Stop {
        print_report(out, &report)?;
        anyhow::bail!("{} check(s) failed; see the fixes above", report.failed());
    }
    let session = Session::open(globals).await?;
    let source = match (&session.token, &session.account, session.sim.is_some()) {
        (None, _, _) => TokenSourceKind::Missing,
        (Some(_), Some(va), _) => TokenSourceKind::Vault {
            account: va.account.id.clone(),
        },
        (Some(_), None, true) => TokenSourceKind::Simulator,
        (Some(_), None, false) => TokenSourceKind::Configured,
    };
    let wait = Duration::from_secs_f64(args.timeout.clamp(0.1, 600.0));
    let profile = doctor::connection(&mut report, &session.client, &source, wait).await;
    doctor::keys(
        &mut report,
        &args.keys,
        async {
            crate::cmd::instruments::load_master(&session.client)
                .await
                .map_err(|e| format!("{e:#}"))
        },
        profile.as_ref().map(|p| p.exchanges.as_slice()),
    )
    .await;
    session.close().await;
    print_report(out, &report)?;
    let failed = report.failed();
    anyhow::ensure!(failed == 0, "{failed} check(s) failed; see the fixes above");
    Ok(())
}
