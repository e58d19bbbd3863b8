//! Key rotation racing readers, writers and other rotations: the vault must always end up
//! opening with every secret, and no reader or long-lived handle may see an error meanwhile.

use secrecy::ExposeSecret;
use stoxide_vault::{Vault, VaultConfig};

use crate::{SECRETS, token};

/// Rounds of the race; `STOXIDE_VAULT_RACE_ROUNDS` raises it for a soak run.
fn rounds() -> usize {
    std::env::var("STOXIDE_VAULT_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

async fn read_all(vault: &Vault) -> Result<(), String> {
    let expect = [
        ("SIM001", "access", SECRETS[0]),
        ("SIM002", "access", SECRETS[1]),
        ("SIM002", "extended", SECRETS[2]),
    ];
    for (id, which, want) in expect {
        let got = if which == "access" {
            vault.access_token(id).await
        } else {
            vault.extended_token(id).await
        }
        .map_err(|e| format!("{which} token of {id}: {e}"))?
        .ok_or_else(|| format!("{which} token of {id} is gone"))?;
        if got.expose_secret() != want {
            return Err(format!("{which} token of {id} reads back wrong"));
        }
    }
    for (app, want) in [("own-app", SECRETS[3]), ("vendor-app", SECRETS[4])] {
        let got = vault
            .app_secret(app)
            .await
            .map_err(|e| format!("secret of {app}: {e}"))?
            .ok_or_else(|| format!("secret of {app} is gone"))?;
        if got.expose_secret() != want {
            return Err(format!("secret of {app} reads back wrong"));
        }
    }
    Ok(())
}

async fn rotate_once(config: VaultConfig) -> Result<(), String> {
    let vault = Vault::open(&config).await.map_err(|e| format!("open to rotate: {e}"))?;
    let result = vault
        .rotate_key(None)
        .await
        .map(drop)
        .map_err(|e| format!("rotate: {e}"));
    vault.close().await;
    result
}

async fn read_once(config: VaultConfig) -> Result<(), String> {
    let vault = Vault::open(&config).await.map_err(|e| format!("open to read: {e}"))?;
    let result = read_all(&vault).await;
    vault.close().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotations_racing_readers_writers_and_each_other_never_lose_a_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    race(VaultConfig::sqlite(dir.path()), rounds()).await;
}

/// The race on one vault: each round, three rotations, eight readers and a long-lived handle
/// that reads and writes, all at once.
pub(crate) async fn race(config: VaultConfig, rounds: usize) {
    crate::filled_with(&config).await.close().await;
    // A long-lived handle, as `stoxide serve` holds one: it reads and writes all along.
    let server = Vault::open(&config).await.expect("open");
    let mut last_written = String::new();
    for round in 0..rounds {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..3 {
            tasks.spawn(rotate_once(config.clone()));
        }
        for _ in 0..8 {
            tasks.spawn(read_once(config.clone()));
        }
        let written = format!("sim_at_round_{round:04}_{}", "f".repeat(24));
        last_written.clone_from(&written);
        let long_lived = server.clone();
        tasks.spawn(async move {
            for _ in 0..5 {
                read_all(&long_lived)
                    .await
                    .map_err(|e| format!("long-lived handle: {e}"))?;
            }
            long_lived
                .store_token(&token("SIM003", &written, None, "own-app"))
                .await
                .map_err(|e| format!("long-lived handle stores: {e}"))?;
            read_all(&long_lived)
                .await
                .map_err(|e| format!("long-lived handle: {e}"))
        });
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done.expect("task") {
                panic!("round {round}: {e}");
            }
        }
        assert!(
            !config.data_dir.join("vault.key.next").exists(),
            "round {round}: a rotation left its next key behind"
        );
    }
    let vault = Vault::open(&config).await.expect("the vault still opens");
    read_all(&vault).await.expect("with every secret");
    let sim3 = vault.access_token("SIM003").await.expect("read").expect("some");
    assert_eq!(sim3.expose_secret(), last_written);
    read_all(&server)
        .await
        .expect("the long-lived handle follows the rotations");
}
