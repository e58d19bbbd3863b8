//! The vault on a real PostgreSQL (127.0.0.1; a database of each test's own, dropped after):
//! the rotation race, and a rotation across two machines that share the database.

use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use stoxide_vault::{Error, Vault, VaultConfig, VaultKey};

use crate::{SECRETS, assert_reads_back, filled_with, token};

/// A fresh PostgreSQL database; dropped by [`PgDb::drop_db`].
pub(crate) struct PgDb {
    admin: String,
    name: String,
    pub(crate) url: SecretString,
}

fn admin_url() -> String {
    std::env::var("STOXIDE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn admin_exec(admin: &str, sql: String) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} must run for these tests (scripts/test.sh starts it): {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut c)
        .await
        .expect("admin statement");
}

impl PgDb {
    pub(crate) async fn new() -> Self {
        let admin = admin_url();
        let name = format!("stoxide_v_{:016x}", rand::rng().random::<u64>());
        admin_exec(&admin, format!("CREATE DATABASE {name}")).await;
        let mut u = url::Url::parse(&admin).expect("url");
        u.set_path(&format!("/{name}"));
        Self {
            admin,
            name,
            url: SecretString::from(u.to_string()),
        }
    }

    pub(crate) async fn drop_db(self) {
        admin_exec(
            &self.admin,
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotations_race_readers_and_writers_on_postgres_too() {
    let db = PgDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    crate::race::race(VaultConfig::sqlite(dir.path()).with_database(db.url.clone()), 8).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_machines_sharing_one_database_rotate_without_losing_a_secret() {
    let db = PgDb::new().await;
    let (dir_a, dir_b) = (tempfile::tempdir().expect("a"), tempfile::tempdir().expect("b"));
    let (old, new) = (VaultKey::generate(), VaultKey::generate());
    let machine = |dir: &std::path::Path, primary: &VaultKey, next: Option<&VaultKey>| {
        VaultConfig::sqlite(dir)
            .with_database(db.url.clone())
            .with_keys(primary.clone(), next.cloned())
    };
    // Machine A fills the vault with the old key.
    filled_with(&machine(dir_a.path(), &old, None)).await.close().await;
    // Step 1: both machines are given the new key beside the old one.
    let a = Vault::open(&machine(dir_a.path(), &old, Some(&new))).await.expect("a");
    let b = Vault::open(&machine(dir_b.path(), &old, Some(&new))).await.expect("b");
    assert_eq!(b.key_report().await.expect("report").current, old.id());
    // Step 2: A rotates; B follows at once, reading and writing under the new key.
    let rotated = a.rotate_key(Some(new.clone())).await.expect("rotate");
    assert_eq!((rotated.secrets, rotated.key_id), (6, new.id()));
    assert_reads_back(&b).await;
    b.store_token(&token("SIM003", SECRETS[0], None, "own-app"))
        .await
        .expect("b writes");
    let report = b.key_report().await.expect("report");
    assert_eq!(report.current, new.id());
    assert_eq!(
        report.sealed,
        vec![(Some(new.id()), 7)],
        "nothing is left under the old key"
    );
    // Step 3: the old key goes; a machine with only the new key reads everything.
    let c = Vault::open(&machine(dir_b.path(), &new, None))
        .await
        .expect("new key only");
    assert_reads_back(&c).await;
    assert_eq!(
        c.access_token("SIM003")
            .await
            .expect("read")
            .expect("some")
            .expose_secret(),
        SECRETS[0]
    );
    // A machine left with only the old key is told which key it lacks.
    let e = Vault::open(&machine(dir_a.path(), &old, None))
        .await
        .expect_err("old key only");
    assert!(matches!(e, Error::WrongKey { .. }), "{e}");
    assert!(e.to_string().contains(&new.id().to_string()), "{e}");
    for v in [a, b, c] {
        v.close().await;
    }
    db.drop_db().await;
}
