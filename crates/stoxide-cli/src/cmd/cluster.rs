//! `stoxide cluster status` and `stoxide cluster allow`: the engine nodes sharing one
//! PostgreSQL, and the addresses each account's Upstox app has whitelisted.

use std::net::IpAddr;

use anyhow::Context;

use crate::output::{Output, say};
use crate::settings::Globals;

/// A node silent longer than this is shown as gone (the nodes' own `node_ttl`).
const NODE_TTL_MS: i64 = 4_000;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ClusterCommand {
    /// Nodes (alive, silent for, users held, signals waiting) and the accounts no node holds.
    Status,
    /// The addresses an account's Upstox app has whitelisted: its users go only to nodes whose
    /// --egress-ip is one of them. Without --account: the vendor app's, for every account
    /// without its own. No --ip removes the list.
    Allow {
        #[arg(long = "ip", value_name = "IP", value_delimiter = ',')]
        ips: Vec<IpAddr>,
    },
}

pub(crate) async fn run(globals: &Globals, out: &Output, cmd: ClusterCommand) -> anyhow::Result<()> {
    let vault = crate::vault::open_existing(globals)
        .await?
        .context("there is no vault here: a cluster's nodes share the one in STOXIDE_DATABASE_URL")?;
    let store = vault.store().clone();
    match cmd {
        ClusterCommand::Status => {
            let accounts: Vec<String> = vault.accounts().await?.into_iter().map(|a| a.id).collect();
            let s = stoxide_cluster::status(&store, &accounts, NODE_TTL_MS).await?;
            if out.json {
                return out.print_json(&s);
            }
            if s.nodes.is_empty() {
                say!("no node has joined (start one: `stoxide engine run --node NAME`)");
            }
            say!(
                "{:<16} {:<16} {:<6} {:>10} {:>7} {:>5} {:>9}",
                "NODE",
                "EGRESS",
                "ALIVE",
                "SILENT_MS",
                "USERS",
                "LAG",
                "ACCEPTED"
            );
            for n in &s.nodes {
                say!(
                    "{:<16} {:<16} {:<6} {:>10} {:>7} {:>5} {:>9} {}",
                    n.name,
                    if n.egress.is_empty() { "-" } else { &n.egress },
                    if n.alive { "yes" } else { "no" },
                    n.silent_ms,
                    n.users,
                    n.lag.map_or_else(|| "-".into(), |l| l.to_string()),
                    n.signals_accepted.map_or_else(|| "-".into(), |l| l.to_string()),
                    if n.feed { "yes" } else { "" },
                );
            }
            say!("{} account(s), {} held by no node", s.accounts, s.unowned.len());
            for a in s.unowned.iter().take(20) {
                say!("  not held: {a}");
            }
            Ok(())
        }
        ClusterCommand::Allow { ips } => {
            let account = globals.account.clone().unwrap_or_else(|| "*".into());
            let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
            store.put_egress(&account, &list).await?;
            let whose = if account == "*" {
                "every account without its own list".to_owned()
            } else {
                account
            };
            if list.is_empty() {
                say!("{whose}: no whitelist (any node)");
            } else {
                say!("{whose}: only nodes leaving from {}", list.join(", "));
            }
            Ok(())
        }
    }
}
