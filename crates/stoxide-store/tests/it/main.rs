//! The store's contract: every test here runs against SQLite (a temporary directory) and against
//! a real PostgreSQL on 127.0.0.1 (a database of its own, dropped afterwards), and must behave
//! the same on both.

mod cluster;
mod engine;
mod people;

use std::time::Duration;

use rand::Rng;
use stoxide_store::{AppRow, Location, SealedCell, SealedField, SessionRow, Store, TokenRow, TxMode};

/// Where a test's store lives; `finish` removes it.
enum Fixture {
    Sqlite(tempfile::TempDir),
    Postgres { admin: String, name: String },
}

fn admin_url() -> String {
    std::env::var("STOXIDE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `admin` with its database replaced by `db`.
fn url_with_db(admin: &str, db: &str) -> String {
    let mut u = url::Url::parse(admin).expect("STOXIDE_TEST_POSTGRES_URL is a URL");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

async fn admin_exec(admin: &str, sql: &str) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(admin).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {admin} must run for the contract tests (scripts/test.sh starts it): {e}")
    });
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut c)
        .await
        .expect("admin statement");
}

impl Fixture {
    async fn new(backend: &str) -> Self {
        match backend {
            "sqlite" => Self::Sqlite(tempfile::tempdir().expect("tempdir")),
            _ => {
                let admin = admin_url();
                let name = format!("stoxide_t_{:016x}", rand::rng().random::<u64>());
                admin_exec(&admin, &format!("CREATE DATABASE {name}")).await;
                Self::Postgres { admin, name }
            }
        }
    }

    fn location(&self) -> Location {
        match self {
            Self::Sqlite(dir) => Location::Sqlite {
                dir: dir.path().join("data"),
            },
            Self::Postgres { admin, name } => Location::postgres(&url_with_db(admin, name)).expect("url"),
        }
    }

    async fn store(&self) -> Store {
        Store::open(&self.location(), true)
            .await
            .expect("open")
            .expect("created")
    }

    async fn finish(self, store: Store) {
        store.close().await;
        if let Self::Postgres { admin, name } = self {
            admin_exec(&admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}

/// Runs one contract test on both backends.
#[macro_export]
macro_rules! contract {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name("sqlite").await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name("postgres").await;
            }
        }
    };
}

fn app(id: &str, secret: Option<&[u8]>) -> AppRow {
    AppRow {
        client_id: id.into(),
        secret: secret.map(<[u8]>::to_vec),
        redirect_uri: format!("http://127.0.0.1:5055/{id}"),
        mode: "individual".into(),
        base_url: "http://127.0.0.1:9".into(),
        created_at: 1_000,
        updated_at: 1_000,
    }
}

fn token(id: &str, access: &[u8], client: Option<&str>, now: i64) -> TokenRow {
    TokenRow {
        id: id.into(),
        client_id: client.map(str::to_owned),
        user_name: Some(format!("User {id}")),
        base_url: "http://127.0.0.1:9".into(),
        access_token: access.to_vec(),
        extended_token: None,
        issued_at: now,
        expires_at: now + 3_600_000,
        source: "oauth".into(),
        now,
    }
}

contract!(apps_and_accounts_round_trip);
async fn apps_and_accounts_round_trip(backend: &str) {
    let f = Fixture::new(backend).await;
    let s = f.store().await;
    let mut tx = s.begin(TxMode::Write).await.expect("begin");
    tx.upsert_app(&app("b-app", Some(b"sealed-b"))).await.expect("app");
    tx.upsert_app(&app("a-app", Some(b"sealed-a"))).await.expect("app");
    tx.upsert_token(&token("SIM001", b"tok-1", Some("a-app"), 5_000))
        .await
        .expect("token");
    tx.commit().await.expect("commit");

    let apps = s.apps().await.expect("apps");
    assert_eq!(
        apps.iter().map(|a| a.client_id.as_str()).collect::<Vec<_>>(),
        ["a-app", "b-app"]
    );
    // An update without a secret keeps the stored one.
    let mut tx = s.begin(TxMode::Write).await.expect("begin");
    let mut again = app("a-app", None);
    again.base_url = "http://127.0.0.1:10".into();
    again.updated_at = 2_000;
    tx.upsert_app(&again).await.expect("app");
    // A new token without a client id keeps the stored one and clears the check.
    tx.upsert_token(&token("SIM001", b"tok-2", None, 6_000))
        .await
        .expect("token");
    tx.commit().await.expect("commit");
    let a = s.app("a-app").await.expect("get").expect("some");
    assert_eq!(
        (a.secret.as_deref(), a.base_url.as_str(), a.created_at, a.updated_at),
        (Some(&b"sealed-a"[..]), "http://127.0.0.1:10", 1_000, 2_000)
    );
    assert!(s.app("nope").await.expect("get").is_none());

    assert!(
        s.record_check("SIM001", 7_000, r#"{"result":"valid"}"#)
            .await
            .expect("check")
    );
    assert!(!s.record_check("NOPE", 7_000, "{}").await.expect("check"));
    let acc = s.account("SIM001").await.expect("get").expect("some");
    assert_eq!(acc.client_id.as_deref(), Some("a-app"));
    assert_eq!(acc.access_token.as_deref(), Some(&b"tok-2"[..]));
    assert_eq!((acc.issued_at, acc.expires_at), (Some(6_000), Some(6_000 + 3_600_000)));
    assert_eq!(
        (acc.checked_at, acc.check_result.as_deref()),
        (Some(7_000), Some(r#"{"result":"valid"}"#))
    );
    assert_eq!(
        s.sealed(SealedField::AccessToken, "SIM001").await.expect("sealed"),
        Some(Some(b"tok-2".to_vec()))
    );
    assert_eq!(
        s.sealed(SealedField::ExtendedToken, "SIM001").await.expect("sealed"),
        Some(None)
    );
    assert_eq!(s.sealed(SealedField::AccessToken, "NOPE").await.expect("sealed"), None);
    assert_eq!(
        s.sealed(SealedField::AppSecret, "b-app").await.expect("sealed"),
        Some(Some(b"sealed-b".to_vec()))
    );

    assert!(s.wipe_tokens("SIM001", 8_000).await.expect("wipe"));
    assert!(!s.wipe_tokens("NOPE", 8_000).await.expect("wipe"));
    let acc = s.account("SIM001").await.expect("get").expect("some");
    assert!(acc.access_token.is_none() && acc.checked_at.is_none() && acc.issued_at.is_none());
    assert_eq!(s.accounts().await.expect("all").len(), 1);
    f.finish(s).await;
}

contract!(meta_and_sealed_cells);
async fn meta_and_sealed_cells(backend: &str) {
    let f = Fixture::new(backend).await;
    let s = f.store().await;
    assert!(s.meta("key_check").await.expect("meta").is_none());
    let mut tx = s.begin(TxMode::Write).await.expect("begin");
    tx.put_meta("key_check", b"one").await.expect("put");
    assert_eq!(tx.meta("key_check").await.expect("meta").as_deref(), Some(&b"one"[..]));
    tx.put_meta("key_check", b"two").await.expect("put again");
    tx.upsert_app(&app("x-app", Some(b"s-x"))).await.expect("app");
    tx.upsert_app(&app("y-app", None)).await.expect("app");
    let mut t = token("U1", b"a-1", Some("x-app"), 1);
    t.extended_token = Some(b"e-1".to_vec());
    tx.upsert_token(&t).await.expect("token");
    tx.commit().await.expect("commit");
    assert_eq!(s.meta("key_check").await.expect("meta").as_deref(), Some(&b"two"[..]));

    let mut cells = s.sealed_cells().await.expect("cells");
    cells.sort_by(|a, b| (a.field.column(), &a.id).cmp(&(b.field.column(), &b.id)));
    assert_eq!(
        cells
            .iter()
            .map(|c| (c.field, c.id.as_str(), c.blob.as_slice()))
            .collect::<Vec<_>>(),
        [
            (SealedField::AccessToken, "U1", &b"a-1"[..]),
            (SealedField::ExtendedToken, "U1", &b"e-1"[..]),
            (SealedField::AppSecret, "x-app", &b"s-x"[..]),
        ]
    );
    let mut tx = s.begin(TxMode::Rekey).await.expect("begin");
    for cell in tx.sealed_cells().await.expect("cells") {
        let mut blob = cell.blob.clone();
        blob.extend_from_slice(b"+");
        tx.set_sealed(&SealedCell { blob, ..cell }).await.expect("set");
    }
    tx.commit().await.expect("commit");
    assert_eq!(
        s.sealed(SealedField::ExtendedToken, "U1").await.expect("get"),
        Some(Some(b"e-1+".to_vec()))
    );
    assert_eq!(
        s.sealed(SealedField::AppSecret, "x-app").await.expect("get"),
        Some(Some(b"s-x+".to_vec()))
    );
    assert_eq!(
        s.sealed(SealedField::AppSecret, "y-app").await.expect("get"),
        Some(None)
    );
    f.finish(s).await;
}

contract!(a_rolled_back_transaction_leaves_nothing_and_data_survives_a_reopen);
async fn a_rolled_back_transaction_leaves_nothing_and_data_survives_a_reopen(backend: &str) {
    let f = Fixture::new(backend).await;
    assert!(
        Store::open(&f.location(), false).await.expect("open").is_none(),
        "nothing there yet"
    );
    let s = f.store().await;
    let mut tx = s.begin(TxMode::Write).await.expect("begin");
    tx.upsert_app(&app("gone", Some(b"x"))).await.expect("app");
    tx.rollback().await.expect("rollback");
    {
        let mut tx = s.begin(TxMode::Write).await.expect("begin");
        tx.upsert_app(&app("dropped", Some(b"x"))).await.expect("app");
        // Dropped without commit.
    }
    let mut tx = s.begin(TxMode::Write).await.expect("begin");
    tx.upsert_app(&app("kept", Some(b"y"))).await.expect("app");
    tx.commit().await.expect("commit");
    s.close().await;
    let s = Store::open(&f.location(), false)
        .await
        .expect("reopen")
        .expect("exists");
    assert_eq!(
        s.apps()
            .await
            .expect("apps")
            .iter()
            .map(|a| a.client_id.as_str())
            .collect::<Vec<_>>(),
        ["kept"]
    );
    f.finish(s).await;
}

contract!(a_rekey_runs_alone);
async fn a_rekey_runs_alone(backend: &str) {
    let f = Fixture::new(backend).await;
    let s = f.store().await;
    let mut rekey = s.begin(TxMode::Rekey).await.expect("rekey");
    rekey.put_meta("key_check", b"new key").await.expect("put");
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut tx = s.begin(TxMode::Write).await.expect("write");
            let seen = tx.meta("key_check").await.expect("meta");
            tx.commit().await.expect("commit");
            seen
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!writer.is_finished(), "a write waits while a rekey runs");
    rekey.commit().await.expect("commit");
    let seen = writer.await.expect("join");
    assert_eq!(
        seen.as_deref(),
        Some(&b"new key"[..]),
        "the write sees what the rekey committed"
    );
    f.finish(s).await;
}

contract!(sessions_persist_expire_and_carry_one_message);
async fn sessions_persist_expire_and_carry_one_message(backend: &str) {
    let f = Fixture::new(backend).await;
    let s = f.store().await;
    let row = |id: &str, user: &str, expires_at: i64| SessionRow {
        id_hash: id.into(),
        username: user.into(),
        created_at: 100,
        expires_at,
        last_seen_at: 100,
        flash: None,
    };
    s.put_session(&row("h1", "admin", 10_000)).await.expect("put");
    s.put_session(&row("h2", "admin", 500)).await.expect("put");
    s.put_session(&row("h3", "client", 10_000)).await.expect("put");
    assert!(
        s.put_session(&row("h1", "admin", 10_000)).await.is_err(),
        "ids are unique"
    );
    assert_eq!(
        s.session("h1", 1_000).await.expect("get").map(|r| r.username),
        Some("admin".into())
    );
    assert!(s.session("h2", 1_000).await.expect("get").is_none(), "expired");
    assert_eq!(s.sessions_of("admin", 1_000).await.expect("of").len(), 1);
    s.touch_session("h1", 2_000).await.expect("touch");
    assert_eq!(
        s.session("h1", 2_000).await.expect("get").map(|r| r.last_seen_at),
        Some(2_000)
    );

    assert!(s.take_flash("h1").await.expect("flash").is_none());
    s.set_flash("h1", Some("Stream stopped.")).await.expect("flash");
    assert_eq!(
        s.take_flash("h1").await.expect("flash").as_deref(),
        Some("Stream stopped.")
    );
    assert!(s.take_flash("h1").await.expect("flash").is_none(), "shown once");

    assert_eq!(s.prune_sessions(1_000).await.expect("prune"), 1);
    assert!(s.delete_session("h3").await.expect("delete"));
    assert!(!s.delete_session("h3").await.expect("delete again"));
    s.close().await;
    let s = Store::open(&f.location(), false)
        .await
        .expect("reopen")
        .expect("exists");
    assert!(
        s.session("h1", 3_000).await.expect("get").is_some(),
        "sessions survive a reopen"
    );
    f.finish(s).await;
}
