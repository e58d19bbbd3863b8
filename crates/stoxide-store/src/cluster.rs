//! Engine nodes sharing one PostgreSQL: their heartbeats (`cluster_nodes`), who sends for each
//! account (`cluster_leases`), and the addresses each account's app has whitelisted
//! (`cluster_egress`). Lease times come from the database's clock. PostgreSQL only: a store on
//! SQLite serves one process, which needs none of this.

use sqlx::FromRow;

use crate::error::{Error, Result};
use crate::{Pool, Store};

/// The database's clock, in epoch milliseconds.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// One node, as its last heartbeat left it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct NodeRow {
    pub name: String,
    pub egress: String,
    pub heartbeat_ms: i64,
    pub started_ms: i64,
    /// JSON written by the node.
    pub info: String,
}

/// One account's lease.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct LeaseRow {
    pub account: String,
    pub node: String,
    pub epoch: i64,
    pub expires_ms: i64,
    pub acquired_ms: i64,
}

/// An account's whitelisted addresses (`*`: every account without its own row).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct EgressRow {
    pub account: String,
    pub addresses: String,
}

impl Store {
    fn cluster_pool(&self) -> Result<&sqlx::PgPool> {
        match &self.pool {
            Pool::Postgres(p) => Ok(p),
            Pool::Sqlite(_) => Err(Error::BadUrl(
                "engine nodes share work only on PostgreSQL: set STOXIDE_DATABASE_URL=postgres://…".into(),
            )),
        }
    }

    /// The database's clock, epoch ms.
    ///
    /// # Errors
    /// Database errors; a store on SQLite.
    pub async fn cluster_now_ms(&self) -> Result<i64> {
        let p = self.cluster_pool()?;
        let (now,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {NOW_MS}")))
            .fetch_one(p)
            .await?;
        Ok(now)
    }

    /// A node's heartbeat (its row made on the first); the database's time of it.
    ///
    /// # Errors
    /// Database errors; a store on SQLite.
    pub async fn node_heartbeat(&self, name: &str, egress: &str, info: &str) -> Result<i64> {
        let p = self.cluster_pool()?;
        let (now,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO cluster_nodes (name, egress, heartbeat_ms, started_ms, info)
             VALUES ($1, $2, {NOW_MS}, {NOW_MS}, $3)
             ON CONFLICT (name) DO UPDATE SET egress = excluded.egress,
               heartbeat_ms = excluded.heartbeat_ms, info = excluded.info
             RETURNING heartbeat_ms"
        )))
        .bind(name)
        .bind(egress)
        .bind(info)
        .fetch_one(p)
        .await?;
        Ok(now)
    }

    /// Every node that ever joined, newest heartbeat first.
    ///
    /// # Errors
    /// Database errors; a store on SQLite.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>> {
        let p = self.cluster_pool()?;
        Ok(
            sqlx::query_as("SELECT * FROM cluster_nodes ORDER BY heartbeat_ms DESC, name")
                .fetch_all(p)
                .await?,
        )
    }

    /// A node leaves: its row goes and its leases end now.
    ///
    /// # Errors
    /// Database errors; a store on SQLite.
    pub async fn node_leave(&self, name: &str) -> Result<()> {
        let p = self.cluster_pool()?;
        sqlx::query("UPDATE cluster_leases SET expires_ms = 0 WHERE node = $1")
            .bind(name)
            .execute(p)
            .await?;
        sqlx::query("DELETE FROM cluster_nodes WHERE name = $1")
            .bind(name)
            .execute(p)
            .await?;
        Ok(())
    }

    /// Takes or renews `node`'s leases on `accounts` for `ttl_ms`: an account is taken when its
    /// lease is free or expired, and renewed when `node` holds it. The leases `node` holds
    /// afterwards, among `accounts`.
    ///
    /// # Errors
    /// Database errors; a store on SQLite.
    pub async fn hold_leases(&self, node: &str, accounts: &[String], ttl_ms: i64) -> Result<Vec<LeaseRow>> {
        let p = self.cluster_pool()?;
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO cluster_leases (account, node, epoch, expires_ms, acquired_ms)
             SELECT a, $1, 1, t.now_ms + $2, t.now_ms
               FROM unnest($3::text[]) AS a, (SELECT {NOW_MS} AS now_ms) AS t
             ON CONFLICT (account) DO UPDATE SET
               node = excluded.node,
               epoch = CASE WHEN cluster_leases.node = excluded.node THEN cluster_leases.epoch
                            ELSE cluster_leases.epoch + 1 END,
               expires_ms = excluded.expires_ms,
               acquired_ms = CASE WHEN cluster_leases.node = excluded.node THEN cluster_leases.acquired_ms
                                  ELSE excluded.acquired_ms END
             WHERE cluster_leases.node = excluded.node OR cluster_leases.expires_ms < excluded.acquired_ms
             RETURNING account, node, epoch, expires_ms, acquired_ms"
        )))
        .bind(node)
        .bind(ttl_ms)
        .bind(accounts)
        .fetch_all(p)
        .await?)
    }

    /// Ends `node`'s leases on `accounts` now (it has stopped sending for them).
    ///
    /// # Errors
    /// Database errors; a store on SQLite.
    pub async fn release_leases(&self, node: &str, accounts: &[String]) -> Result<()> {
        let p = self.cluster_pool()?;
        sqlx::query("UPDATE cluster_leases SET expires_ms = 0 WHERE node = $1 AND account = ANY($2::text[])")
            .bind(node)
            .bind(accounts)
            .execute(p)
            .await?;
        Ok(())
    }

    /// Every lease.
    ///
    /// # Errors
    /// Database errors; a store on SQLite.
    pub async fn leases(&self) -> Result<Vec<LeaseRow>> {
        let p = self.cluster_pool()?;
        Ok(sqlx::query_as("SELECT * FROM cluster_leases ORDER BY account")
            .fetch_all(p)
            .await?)
    }

    /// Sets the addresses `account`'s app has whitelisted (`*`: the vendor app's, for every
    /// account without its own); none removes the row.
    ///
    /// # Errors
    /// Database errors; a store on SQLite.
    pub async fn put_egress(&self, account: &str, addresses: &[String]) -> Result<()> {
        let p = self.cluster_pool()?;
        if addresses.is_empty() {
            sqlx::query("DELETE FROM cluster_egress WHERE account = $1")
                .bind(account)
                .execute(p)
                .await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO cluster_egress (account, addresses) VALUES ($1, $2)
             ON CONFLICT (account) DO UPDATE SET addresses = excluded.addresses",
        )
        .bind(account)
        .bind(addresses.join(","))
        .execute(p)
        .await?;
        Ok(())
    }

    /// Every whitelist.
    ///
    /// # Errors
    /// Database errors; a store on SQLite.
    pub async fn egress(&self) -> Result<Vec<EgressRow>> {
        let p = self.cluster_pool()?;
        Ok(sqlx::query_as("SELECT * FROM cluster_egress ORDER BY account")
            .fetch_all(p)
            .await?)
    }
}
