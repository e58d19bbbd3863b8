//! The use cases against an in-process simulator and a vault in a temporary directory: linking
//! through the dialog (and refusing callbacks that are not ours), token deliveries, account
//! choice, the doctor, and a stream that follows a new login.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use stoxide_app::clients::Clients;
use stoxide_app::linking::{LinkApp, LoginError, Logins, accept_delivery};
use stoxide_app::{Error, accounts, doctor, stream};
use stoxide_vault::{AppMode, Vault, VaultConfig};
use upstox_client::login::AppCredentials;
use upstox_feed::StreamerConfig;
use upstox_sim::{SimConfig, Simulator};
use upstox_types::FeedMode;

async fn setup() -> (Simulator, Vault, tempfile::TempDir, LinkApp) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = Simulator::start(SimConfig::default(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Vault::open(&VaultConfig::sqlite(dir.path())).await.expect("vault");
    let cfg = SimConfig::default().apps[0].clone();
    let app = LinkApp {
        creds: AppCredentials {
            client_id: cfg.client_id.clone(),
            client_secret: cfg.client_secret.clone().into(),
            redirect_uri: cfg.redirect_uri.clone(),
        },
        mode: AppMode::Individual,
        base_url: sim.base_url(),
    };
    (sim, vault, dir, app)
}

/// Stores `token` for `user` as an imported token against the simulator.
async fn store(vault: &Vault, sim: &Simulator, user: &str, token: SecretString) {
    vault
        .store_token(&stoxide_vault::NewToken {
            account_id: user.into(),
            client_id: None,
            user_name: None,
            base_url: sim.base_url(),
            access_token: token,
            extended_token: None,
            issued_at: chrono::Utc::now(),
            expires_at: None,
            origin: stoxide_vault::TokenOrigin::Imported,
        })
        .await
        .expect("store");
}

/// Submits the simulator's dialog for the login at `url`; answers the callback's query.
async fn dialog(sim: &Simulator, url: &str, user: &str, pin: &str) -> HashMap<String, String> {
    let q: HashMap<String, String> = url::Url::parse(url).expect("url").query_pairs().into_owned().collect();
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http")
        .post(format!("{}/v2/login/authorization/dialog", sim.base_url()))
        .form(&[
            ("client_id", q["client_id"].as_str()),
            ("redirect_uri", q["redirect_uri"].as_str()),
            ("state", q["state"].as_str()),
            ("user_id", user),
            ("pin", pin),
        ])
        .send()
        .await
        .expect("dialog");
    let location = resp.headers()["location"].to_str().expect("location").to_owned();
    url::Url::parse(&location)
        .expect("callback")
        .query_pairs()
        .into_owned()
        .collect()
}

#[tokio::test]
async fn a_login_is_finished_only_by_its_owner_and_only_once() {
    let (sim, vault, _dir, app) = setup().await;
    let clients = Clients::default();
    let logins = Logins::new();
    let url = logins.start(&clients, &app, "browser-A").expect("start");
    let callback = dialog(&sim, &url, "SIM001", "123456").await;

    let other = logins.finish(&vault, &clients, &app, &callback, "browser-B").await;
    assert!(
        matches!(other, Err(Error::Login(LoginError::OtherSession))),
        "{other:?}"
    );
    // The state was spent by that attempt: nobody can use it now.
    let replay = logins.finish(&vault, &clients, &app, &callback, "browser-A").await;
    assert!(matches!(replay, Err(Error::Login(LoginError::State(_)))), "{replay:?}");
    assert!(
        vault.accounts().await.expect("accounts").is_empty(),
        "nothing was stored"
    );

    let url = logins.start(&clients, &app, "browser-A").expect("start");
    let callback = dialog(&sim, &url, "SIM001", "123456").await;
    let linked = logins
        .finish(&vault, &clients, &app, &callback, "browser-A")
        .await
        .expect("linked");
    assert_eq!(linked.account.id, "SIM001");
    assert!(
        linked.account.last_check.is_some(),
        "a fresh token is stored as checked"
    );
    let token = accounts::token_of(&vault, &linked.account).await.expect("token");
    assert_eq!(
        clients
            .for_user(&sim.base_url(), "SIM001", token)
            .expect("client")
            .profile()
            .await
            .expect("profile")
            .user_id,
        "SIM001"
    );
    let mut refused = HashMap::new();
    refused.insert("state".to_owned(), "nope".to_owned());
    assert!(matches!(
        logins.finish(&vault, &clients, &app, &refused, "browser-A").await,
        Err(Error::Login(LoginError::State(_)))
    ));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_delivery_is_stored_only_when_upstox_accepts_its_token_for_its_user() {
    let (sim, vault, _dir, app) = setup().await;
    let clients = Clients::default();
    let good = sim.token_of("SIM001").expect("token").to_owned();
    let body = |client: &str, user: &str, token: &str| {
        serde_json::json!({"message_type": "access_token", "client_id": client, "user_id": user, "access_token": token})
            .to_string()
            .into_bytes()
    };
    for (bytes, expected) in [
        (b"not json".to_vec(), "NotJson"),
        (body("another-app", "SIM001", &good), "OtherApp"),
        (body(&app.creds.client_id, "SIM002", &good), "NotAccepted"),
        (
            body(&app.creds.client_id, "SIM001", "sim_at_forged_0000000000000000"),
            "NotAccepted",
        ),
    ] {
        match accept_delivery(&vault, &clients, &app, &bytes).await {
            Err(Error::Delivery(e)) => assert_eq!(format!("{e:?}"), expected, "{}", String::from_utf8_lossy(&bytes)),
            other => panic!("expected {expected}, got {other:?}"),
        }
    }
    assert!(vault.accounts().await.expect("accounts").is_empty());
    let linked = accept_delivery(&vault, &clients, &app, &body(&app.creds.client_id, "SIM001", &good))
        .await
        .expect("a real delivery");
    assert_eq!(linked.account.id, "SIM001");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_account_is_the_one_named_or_the_only_one() {
    let (sim, vault, _dir, _app) = setup().await;
    assert!(accounts::select(&vault, None).await.expect("empty").is_none());
    assert!(matches!(accounts::require(&vault, None).await, Err(Error::NoAccount)));
    for user in ["SIM001", "SIM002"] {
        store(
            &vault,
            &sim,
            user,
            SecretString::from(sim.token_of(user).expect("token")),
        )
        .await;
    }
    match accounts::select(&vault, None).await {
        Err(Error::AccountAmbiguous(ids)) => assert_eq!(ids, ["SIM001", "SIM002"]),
        other => panic!("expected ambiguity, got {other:?}"),
    }
    assert_eq!(
        accounts::select(&vault, Some("SIM002"))
            .await
            .expect("named")
            .map(|a| a.id),
        Some("SIM002".into())
    );
    assert!(matches!(
        accounts::select(&vault, Some("NOPE")).await,
        Err(Error::Vault(stoxide_vault::Error::NoSuchAccount(_)))
    ));
    sim.shutdown().await;
}

#[tokio::test]
async fn the_doctor_passes_a_good_token_and_names_the_fix_for_a_bad_one() {
    let (sim, _vault, _dir, _app) = setup().await;
    let clients = Clients::default();
    let good = clients
        .for_user(
            &sim.base_url(),
            "SIM001",
            SecretString::from(sim.token_of("SIM001").expect("t")),
        )
        .expect("client");
    let mut report = doctor::Report::default();
    doctor::connection(
        &mut report,
        &good,
        &doctor::TokenSourceKind::Simulator,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(report.failed(), 0, "{:?}", report.checks);
    assert!(report.checks.iter().any(|c| c.step == doctor::Step::FirstTick && c.ok));

    let bad = clients
        .client(&sim.base_url())
        .expect("client")
        .with_token(SecretString::from("sim_at_not_a_real_token_000000"));
    let mut report = doctor::Report::default();
    doctor::connection(
        &mut report,
        &bad,
        &doctor::TokenSourceKind::Configured,
        Duration::from_secs(1),
    )
    .await;
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.ok).collect();
    assert_eq!(failed.len(), 1, "{:?}", report.checks);
    assert_eq!(failed[0].step, doctor::Step::RestProfile);
    assert!(matches!(failed[0].fix, Some(doctor::Fix::LogIn { .. })));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_vault_stream_uses_a_new_login_without_a_restart() {
    let (sim, vault, _dir, _app) = setup().await;
    let clients = Clients::default();
    let first = SecretString::from(sim.token_of("SIM001").expect("token"));
    store(&vault, &sim, "SIM001", first.clone()).await;
    let from = stream::TokenFrom::Vault {
        vault: vault.clone(),
        account: "SIM001".into(),
        token: first,
    };
    let mut s = stream::start(
        clients.client(&sim.base_url()).expect("client"),
        from,
        StreamerConfig::default(),
    );
    s.streamer
        .subscribe(&["NSE_INDEX|Nifty 50"], FeedMode::Ltpc)
        .expect("subscribe");
    let mut health = stream::StreamHealth::starting(Some("SIM001".into()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !health.state.is_connected() {
        let e = tokio::time::timeout_at(deadline, s.events.next())
            .await
            .expect("connected in time")
            .expect("event");
        health.apply(&e, 0);
    }
    // A new token in the vault is announced by the watcher.
    store(
        &vault,
        &sim,
        "SIM001",
        SecretString::from("sim_at_replacement_token_00000000"),
    )
    .await;
    let mut token_events = s.token_events.take().expect("a vault stream has token events");
    // Near 03:30 IST the watcher also says the token expires soon; the replacement still comes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let event = loop {
        let event = tokio::time::timeout_at(deadline, token_events.recv())
            .await
            .expect("announced in time")
            .expect("event");
        if !matches!(event, stoxide_vault::TokenEvent::ExpiresSoon { .. }) {
            break event;
        }
    };
    assert_eq!(
        event,
        stoxide_vault::TokenEvent::Replaced {
            account: "SIM001".into()
        }
    );
    assert!(!format!("{event:?}").contains("replacement"), "no token in an event");
    s.shutdown().await;
    assert!(
        vault
            .access_token("SIM001")
            .await
            .expect("read")
            .expect("some")
            .expose_secret()
            .starts_with("sim_at_replacement")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_doctor_says_when_the_account_is_not_cleared_for_a_keys_segment() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = SimConfig::default();
    config.users[0].exchanges = Some(vec!["NSE".into(), "BSE".into()]);
    let user = config.users[0].user_id.clone();
    let sim = Simulator::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim");
    let client = Clients::default()
        .for_user(
            &sim.base_url(),
            &user,
            SecretString::from(sim.token_of(&user).expect("t")),
        )
        .expect("client");
    let mut report = doctor::Report::default();
    let profile = doctor::connection(
        &mut report,
        &client,
        &doctor::TokenSourceKind::Simulator,
        Duration::from_secs(10),
    )
    .await
    .expect("the profile was read");
    assert_eq!(profile.exchanges, vec!["NSE", "BSE"]);
    let gz = client
        .download_instruments("complete", |_, _| {})
        .await
        .expect("download");
    let master = upstox_client::instruments::InstrumentMaster::from_gzip(&gz).expect("master");
    let option = master
        .iter()
        .find(|r| r.segment == "NSE_FO" && r.instrument_type == "CE")
        .map(|r| r.instrument_key.to_owned())
        .expect("an option");
    let keys = vec![
        "NSE_EQ|INE002A01018".to_owned(),
        option.clone(),
        "NSE_INDEX|Nifty 50".to_owned(),
    ];
    let mut report = doctor::Report::default();
    doctor::keys(
        &mut report,
        &keys,
        async { Ok::<_, String>(master) },
        Some(profile.exchanges.as_slice()),
    )
    .await;
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.ok).collect();
    assert_eq!(failed.len(), 1, "{:?}", report.checks);
    assert_eq!(failed[0].step, doctor::Step::Key(option));
    assert!(failed[0].detail.contains("not cleared for NFO"), "{}", failed[0].detail);
    assert_eq!(
        failed[0].fix,
        Some(doctor::Fix::ActivateSegment { exchange: "NFO".into() })
    );
    sim.shutdown().await;
}
