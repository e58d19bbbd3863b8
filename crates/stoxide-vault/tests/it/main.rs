//! The vault against real files: several accounts, both app modes, key checks, corruption,
//! crash-safe rotation, and a search for plaintext in every file and in the logs.

mod pg;
mod race;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use stoxide_vault::{
    AppMode, Check, CheckOutcome, Error, NewApp, NewToken, TokenOrigin, TokenState, Vault, VaultConfig, assess,
};

const SECRETS: [&str; 6] = [
    "sim_at_7f3c9e2a41b8d06e5a9f1c3b7d2e8a40",
    "sim_at_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
    "sim_xt_extended_99aa88bb77cc66dd55ee",
    "app-secret-individual-5c1d9a",
    "app-secret-vendor-8e2f4b",
    "signing-secret-of-strategy-3d9f71",
];

fn token(account: &str, access: &str, extended: Option<&str>, client: &str) -> NewToken {
    NewToken {
        account_id: account.into(),
        client_id: Some(client.into()),
        user_name: Some(format!("User {account}")),
        base_url: "http://127.0.0.1:9".into(),
        access_token: SecretString::from(access.to_owned()),
        extended_token: extended.map(|e| SecretString::from(e.to_owned())),
        issued_at: Utc::now(),
        expires_at: None,
        origin: TokenOrigin::Oauth,
    }
}

async fn filled(dir: &Path) -> Vault {
    filled_with(&VaultConfig::sqlite(dir)).await
}

async fn filled_with(config: &VaultConfig) -> Vault {
    global_logs();
    let vault = Vault::open(config).await.expect("open");
    vault
        .put_app(&NewApp {
            client_id: "own-app".into(),
            secret: Some(SecretString::from(SECRETS[3].to_owned())),
            redirect_uri: "http://127.0.0.1:5055/callback".into(),
            mode: AppMode::Individual,
            base_url: "http://127.0.0.1:9".into(),
        })
        .await
        .expect("app");
    vault
        .put_app(&NewApp {
            client_id: "vendor-app".into(),
            secret: Some(SecretString::from(SECRETS[4].to_owned())),
            redirect_uri: "http://127.0.0.1:5056/callback".into(),
            mode: AppMode::Vendor,
            base_url: "http://127.0.0.1:9".into(),
        })
        .await
        .expect("app");
    vault
        .store_token(&token("SIM001", SECRETS[0], None, "own-app"))
        .await
        .expect("store");
    vault
        .store_token(&token("SIM002", SECRETS[1], Some(SECRETS[2]), "vendor-app"))
        .await
        .expect("store");
    vault
        .put_signing_secret("vendor-signals", &SecretString::from(SECRETS[5].to_owned()))
        .await
        .expect("signing secret");
    vault
}

async fn assert_reads_back(vault: &Vault) {
    let t = vault.access_token("SIM001").await.expect("read").expect("some");
    assert_eq!(t.expose_secret(), SECRETS[0]);
    let t = vault.access_token("SIM002").await.expect("read").expect("some");
    assert_eq!(t.expose_secret(), SECRETS[1]);
    let t = vault.extended_token("SIM002").await.expect("read").expect("some");
    assert_eq!(t.expose_secret(), SECRETS[2]);
    let s = vault.app_secret("vendor-app").await.expect("read").expect("some");
    assert_eq!(s.expose_secret(), SECRETS[4]);
    let s = vault
        .signing_secret("vendor-signals")
        .await
        .expect("read")
        .expect("some");
    assert_eq!(s.expose_secret(), SECRETS[5]);
    assert!(vault.signing_secret("no-such-strategy").await.expect("read").is_none());
}

/// Every byte of every file in the data directory.
fn all_file_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of every test in this binary (a scoped subscriber would miss callsites that
/// other test threads registered first).
fn global_logs() -> Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
    .clone()
}

#[tokio::test]
async fn no_plaintext_secret_in_any_file_or_log_line() {
    let logs = global_logs();

    let dir = tempfile::tempdir().expect("tempdir");
    let vault = filled(dir.path()).await;
    assert_reads_back(&vault).await;
    let mut shown = format!(
        "{vault:?} {:?} {:?}",
        vault.accounts().await.expect("list"),
        vault.apps().await.expect("apps")
    );
    shown.push_str(&format!("{:?}", token("X", SECRETS[0], Some(SECRETS[2]), "own-app")));
    vault.rotate_key(None).await.expect("rotate");
    assert_reads_back(&vault).await;
    vault.wipe_token("SIM001").await.expect("wipe");
    let e = vault.access_token("NOPE").await.expect_err("no such account");
    shown.push_str(&e.to_string());
    vault.close().await;

    let files = all_file_bytes(dir.path());
    assert!(
        files.iter().any(|(n, b)| n == "vault.db" && !b.is_empty()),
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    let log_text = logs.0.lock().expect("lock").clone();
    assert!(contains(&log_text, b"stored a token"), "the logs were captured");
    for secret in SECRETS {
        for (name, bytes) in &files {
            assert!(!contains(bytes, secret.as_bytes()), "{secret} in clear in {name}");
        }
        assert!(!contains(&log_text, secret.as_bytes()), "{secret} in the logs");
        assert!(!shown.contains(secret), "{secret} in Debug or error output");
    }
}

#[tokio::test]
async fn accounts_persist_across_opens_with_their_modes() {
    let dir = tempfile::tempdir().expect("tempdir");
    filled(dir.path()).await.close().await;
    let vault = Vault::open_existing(&VaultConfig::sqlite(dir.path()))
        .await
        .expect("open")
        .expect("exists");
    assert_reads_back(&vault).await;
    let accounts = vault.accounts().await.expect("list");
    assert_eq!(
        accounts.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["SIM001", "SIM002"]
    );
    let a = &accounts[1];
    assert!(a.has_token && a.has_extended_token);
    assert_eq!(a.client_id.as_deref(), Some("vendor-app"));
    // The 03:30 IST rule: expiry is the first 03:30 IST after issue.
    let issued = a.issued_at.expect("issued");
    assert_eq!(a.expires_at, Some(upstox_types::token_expiry(issued)));
    let apps = vault.apps().await.expect("apps");
    assert_eq!(
        apps.iter().map(|a| a.mode).collect::<Vec<_>>(),
        [AppMode::Individual, AppMode::Vendor]
    );

    vault
        .record_check(
            "SIM002",
            &Check {
                at: Utc::now(),
                outcome: CheckOutcome::Valid,
            },
        )
        .await
        .expect("check");
    let a = vault.account("SIM002").await.expect("get").expect("some");
    assert!(matches!(assess(&a, Utc::now()).state, TokenState::Valid { .. }));

    // A new login replaces the token and clears the old check.
    vault
        .store_token(&token("SIM002", "sim_at_newer_token_0000000000", None, "vendor-app"))
        .await
        .expect("store");
    let a = vault.account("SIM002").await.expect("get").expect("some");
    assert!(a.last_check.is_none() && !a.has_extended_token);
    assert_eq!(
        vault
            .access_token("SIM002")
            .await
            .expect("read")
            .expect("some")
            .expose_secret(),
        "sim_at_newer_token_0000000000"
    );
    assert!(
        Vault::open_existing(&VaultConfig::sqlite(dir.path().join("absent")))
            .await
            .expect("ok")
            .is_none()
    );
    assert!(!dir.path().join("absent").exists(), "reading must not create a vault");
}

#[tokio::test]
async fn a_ciphertext_copied_to_another_account_does_not_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = filled(dir.path()).await;
    vault.close().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", dir.path().join("vault.db").display()))
        .await
        .expect("raw");
    sqlx::query("UPDATE accounts SET access_token = (SELECT access_token FROM accounts WHERE id = 'SIM002') WHERE id = 'SIM001'")
        .execute(&pool)
        .await
        .expect("copy");
    pool.close().await;
    let vault = Vault::open(&VaultConfig::sqlite(dir.path())).await.expect("open");
    let e = vault.access_token("SIM001").await.expect_err("moved ciphertext");
    assert!(matches!(e, Error::Tampered { .. }), "{e}");
    assert!(e.to_string().contains("SIM001"), "{e}");
    // The untouched account still opens.
    assert!(vault.access_token("SIM002").await.expect("read").is_some());
}

#[tokio::test]
async fn wrong_missing_and_broken_keys_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    filled(dir.path()).await.close().await;
    let key_file = dir.path().join("vault.key");
    let good = std::fs::read(&key_file).expect("key");

    stoxide_vault::key::write_key_file(&key_file, &stoxide_vault::VaultKey::generate()).expect("write");
    let e = Vault::open(&VaultConfig::sqlite(dir.path()))
        .await
        .expect_err("wrong key");
    assert!(matches!(e, Error::WrongKey { .. }), "{e}");

    std::fs::remove_file(&key_file).expect("rm");
    let e = Vault::open(&VaultConfig::sqlite(dir.path()))
        .await
        .expect_err("missing key");
    assert!(matches!(e, Error::KeyMissing { .. }), "{e}");
    assert!(!key_file.exists(), "a missing key must not be replaced by a new one");

    std::fs::write(&key_file, &good[..20]).expect("truncate");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let e = Vault::open(&VaultConfig::sqlite(dir.path()))
        .await
        .expect_err("truncated key");
    assert!(e.to_string().contains("64 hex digits"), "{e}");

    std::fs::write(&key_file, &good).expect("restore");
    let vault = Vault::open(&VaultConfig::sqlite(dir.path()))
        .await
        .expect("the good key opens it again");
    assert_reads_back(&vault).await;
}

#[tokio::test]
async fn a_corrupt_vault_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    filled(dir.path()).await.close().await;
    let db = dir.path().join("vault.db");
    let original = std::fs::read(&db).expect("read");

    std::fs::write(&db, b"this is not a database at all, just some text").expect("garbage");
    let e = Vault::open(&VaultConfig::sqlite(dir.path()))
        .await
        .expect_err("garbage");
    assert!(matches!(e, Error::Store(stoxide_store::Error::Corrupt { .. })), "{e}");
    assert_eq!(
        std::fs::read(&db).expect("read"),
        b"this is not a database at all, just some text"
    );

    // A real header over damaged pages.
    let mut damaged = original.clone();
    for b in damaged.iter_mut().skip(100) {
        *b = 0xA5;
    }
    std::fs::write(&db, &damaged).expect("damage");
    let _ = std::fs::remove_file(dir.path().join("vault.db-wal"));
    let _ = std::fs::remove_file(dir.path().join("vault.db-shm"));
    let e = Vault::open(&VaultConfig::sqlite(dir.path()))
        .await
        .expect_err("damaged");
    assert!(matches!(e, Error::Store(stoxide_store::Error::Corrupt { .. })), "{e}");
    assert_eq!(
        std::fs::read(&db).expect("read"),
        damaged,
        "nothing was written over it"
    );
}

#[tokio::test]
async fn rotation_survives_a_crash_at_either_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("vault.key");
    let next_file = dir.path().join("vault.key.next");
    let vault = filled(dir.path()).await;
    let old_key = std::fs::read(&key_file).expect("key");
    let report = vault.rotate_key(None).await.expect("rotate");
    assert_eq!(report.secrets, 6);
    vault.close().await;
    let new_key = std::fs::read(&key_file).expect("key");
    assert_ne!(old_key, new_key);
    assert!(!next_file.exists());

    // Crash after the commit, before the rename: old key in place, new key beside it.
    std::fs::rename(&key_file, &next_file).expect("mv");
    std::fs::write(&key_file, &old_key).expect("old key back");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let vault = Vault::open(&VaultConfig::sqlite(dir.path())).await.expect("recovers");
    assert_reads_back(&vault).await;
    assert_eq!(
        std::fs::read(&key_file).expect("key"),
        new_key,
        "the rotation was finished"
    );
    assert!(!next_file.exists());
    vault.close().await;

    // Crash before the commit: the data is under the current key; a stray next key is dropped.
    stoxide_vault::key::write_key_file(&next_file, &stoxide_vault::VaultKey::generate()).expect("stray");
    let vault = Vault::open(&VaultConfig::sqlite(dir.path())).await.expect("opens");
    assert_reads_back(&vault).await;
    assert!(!next_file.exists());
    assert_eq!(std::fs::read(&key_file).expect("key"), new_key);
    let _ = Duration::zero();
}

async fn raw_sqlite(path: &Path, sql: &[&'static str]) {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.expect("raw sqlite");
    for q in sql {
        sqlx::query(*q).execute(&pool).await.expect("raw sql");
    }
    pool.close().await;
}

#[tokio::test]
async fn files_that_are_not_a_vault_are_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("vault.db");

    // Another program's SQLite database at the vault's path.
    raw_sqlite(
        &db,
        &[
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
            "INSERT INTO notes (body) VALUES ('mine')",
        ],
    )
    .await;
    let before = std::fs::read(&db).expect("read");
    let e = Vault::open(&VaultConfig::sqlite(dir.path()))
        .await
        .expect_err("foreign database");
    assert!(matches!(e, Error::Store(stoxide_store::Error::NotAVault { .. })), "{e}");
    assert!(e.to_string().contains("not a stoxide vault"), "{e}");
    assert_eq!(
        std::fs::read(&db).expect("read"),
        before,
        "the foreign database was left untouched"
    );
    assert!(
        !dir.path().join("vault.key").exists(),
        "no key is made for a database that is not ours"
    );

    // The same in WAL mode, with another program's application id.
    std::fs::remove_file(&db).expect("rm");
    raw_sqlite(
        &db,
        &[
            "PRAGMA journal_mode = WAL",
            "PRAGMA application_id = 42",
            "CREATE TABLE t (x)",
        ],
    )
    .await;
    let e = Vault::open(&VaultConfig::sqlite(dir.path()))
        .await
        .expect_err("foreign database");
    assert!(e.to_string().contains("another program"), "{e}");

    // In WAL mode without an application id and without our tables.
    std::fs::remove_file(&db).expect("rm");
    raw_sqlite(&db, &["PRAGMA journal_mode = WAL", "CREATE TABLE t (x)"]).await;
    let before = std::fs::read(&db).expect("read");
    let e = Vault::open(&VaultConfig::sqlite(dir.path()))
        .await
        .expect_err("foreign database");
    assert!(matches!(e, Error::Store(stoxide_store::Error::NotAVault { .. })), "{e}");
    assert!(e.to_string().contains("tables: t"), "{e}");
    assert_eq!(std::fs::read(&db).expect("read"), before);

    // An empty file.
    std::fs::remove_file(&db).expect("rm");
    std::fs::write(&db, b"").expect("empty");
    let e = Vault::open(&VaultConfig::sqlite(dir.path()))
        .await
        .expect_err("empty file");
    assert!(e.to_string().contains("empty file"), "{e}");
    assert_eq!(std::fs::metadata(&db).expect("meta").len(), 0);
}

#[cfg(unix)]
#[tokio::test]
async fn an_older_vault_is_adopted_and_every_vault_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    filled(dir.path()).await.close().await;
    let db = dir.path().join("vault.db");
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&db), 0o600, "a new vault is private");
    // A vault made before the application id, left world-readable.
    raw_sqlite(&db, &["PRAGMA application_id = 0"]).await;
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let vault = Vault::open(&VaultConfig::sqlite(dir.path()))
        .await
        .expect("an older vault still opens");
    assert_reads_back(&vault).await;
    vault.close().await;
    assert_eq!(mode(&db), 0o600, "adopted and made private");
    let head = std::fs::read(&db).expect("read");
    assert_eq!(&head[68..72], b"STXV", "marked as a stoxide vault");
    for entry in std::fs::read_dir(dir.path()).expect("dir").flatten() {
        assert_eq!(
            mode(&entry.path()) & 0o077,
            0,
            "{} is readable by others",
            entry.path().display()
        );
    }
}

#[tokio::test]
async fn a_value_that_cannot_be_a_token_is_never_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = filled(dir.path()).await;
    for bad in [
        "x".repeat(5000),
        String::new(),
        "has space in it".into(),
        "ctl\u{1b}chars_here_long".into(),
    ] {
        let e = vault
            .store_token(&token("SIM001", &bad, None, "own-app"))
            .await
            .expect_err("refused");
        assert!(matches!(e, Error::BadToken { .. }), "{e}");
        assert!(
            !e.to_string().contains(&bad) || bad.is_empty(),
            "the value is not echoed"
        );
    }
    assert_reads_back(&vault).await;
}
