//! The portal's use cases against a real vault (SQLite in a temporary directory): a client
//! subscribes, reads the consent, consents with their password; new inputs go back to awaiting
//! consent; another client's subscription and accounts are "not found" and stay as they were.

use std::net::IpAddr;
use std::str::FromStr;

use rust_decimal::Decimal;
use secrecy::SecretString;
use stoxide_engine::catalog::{InputBounds, SignalSource, Strategy};
use stoxide_engine::desk::{Actor, Desk};
use stoxide_engine::risk::TradingState;
use stoxide_engine::subscription::{Inputs, Sizing, SubState};
use stoxide_people::{Limits, People, Person, Role, Viewer};
use stoxide_portal::{Confirm, Error, Portal, Switch};
use upstox_types::{InstrumentKey, Product};

const T0: i64 = 1_000_000;

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn here() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

fn strategy(version: u32) -> Strategy {
    Strategy {
        id: "momo".into(),
        name: "Momentum".into(),
        description: "Buys strength in RELIANCE".into(),
        version,
        algo_name: "STOXIDE-MOMO".into(),
        registered: false,
        instruments: vec![InstrumentKey::from_str("NSE_EQ|INE002A01018").expect("key")],
        bounds: InputBounds {
            max_lots: 10,
            max_multiplier: 5,
            max_margin_percent: Decimal::from(50),
            max_exposure: Decimal::from(10_000_000),
            max_orders_per_day: 100,
            max_open_positions: 10,
        },
        source: SignalSource::External,
    }
}

fn inputs(lots: u32) -> Inputs {
    Inputs {
        sizing: Sizing::FixedLots { lots, multiplier: 2 },
        max_exposure: Decimal::from(500_000),
        max_open_positions: 3,
        max_orders_per_day: 20,
        daily_max_loss: Decimal::from(10_000),
        product: Product::Intraday,
        whitelist: None,
        paper: false,
    }
}

struct World {
    portal: Portal,
    people: People,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("tmp");
    let vault = stoxide_vault::Vault::open(&stoxide_vault::VaultConfig::sqlite(dir.path()))
        .await
        .expect("vault");
    for account in ["ACCT-A", "ACCT-B"] {
        vault
            .store_token(&stoxide_vault::NewToken::imported(
                account,
                "http://127.0.0.1:9",
                pw("a-token"),
            ))
            .await
            .expect("token");
    }
    Desk::new(vault.clone())
        .register(
            &strategy(1),
            &Actor {
                by: "ops".into(),
                from: "cli".into(),
            },
        )
        .await
        .expect("register");
    let people = People::new(vault.store().clone(), Limits::default());
    World {
        portal: Portal::new(people.clone(), vault),
        people,
        _dir: dir,
    }
}

impl World {
    async fn client(&self, op: &Person, email: &str, account: &str) -> Viewer {
        let inv = self
            .people
            .invite(
                op,
                email,
                "Client",
                Role::Client,
                std::time::Duration::from_secs(60),
                T0,
            )
            .await
            .expect("invite");
        let person = self
            .people
            .accept(&inv.secret, &pw("client password 1"), T0)
            .await
            .expect("accept");
        assert!(self.people.link_account(&person, account, T0).await.expect("link"));
        self.people.viewer(person).await.expect("viewer")
    }
}

#[tokio::test]
async fn a_client_subscribes_reads_the_consent_and_consents_with_their_password() {
    let w = world().await;
    let op = w
        .people
        .first_operator("ops@vendor.in", "Ops", &pw("operator password"), T0)
        .await
        .expect("op");
    let a = w.client(&op, "a@example.in", "ACCT-A").await;
    let b = w.client(&op, "b@example.in", "ACCT-B").await;

    let catalog = w.portal.catalog().await.expect("catalog");
    assert_eq!(catalog.len(), 1);
    assert_eq!(catalog[0].instruments, vec!["NSE_EQ|INE002A01018".to_owned()]);

    let sub = w
        .portal
        .subscribe(&a, "ACCT-A", "momo", inputs(2), here())
        .await
        .expect("subscribe");
    assert_eq!(sub.state, SubState::AwaitingConsent);
    let shown = w.portal.consent_preview(&a, &sub.id).await.expect("preview");
    assert_eq!(shown.sizing, "4 lot(s) per signal (2 × 2)");
    assert_eq!(shown.product, "I");
    assert_eq!(shown.max_exposure, Decimal::from(500_000));
    assert_eq!(shown.strategy.algo_name, "STOXIDE-MOMO");

    // A wrong password records nothing.
    let wrong = w
        .portal
        .consent(
            &a,
            &sub.id,
            &shown.hash,
            &Confirm::Password(pw("not my password")),
            here(),
        )
        .await;
    assert!(
        matches!(wrong, Err(Error::People(stoxide_people::Error::WrongPassword))),
        "{wrong:?}"
    );
    // A hash of something else (the page was stale) records nothing.
    let stale = w
        .portal
        .consent(&a, &sub.id, "0000", &Confirm::Password(pw("client password 1")), here())
        .await;
    assert!(matches!(stale, Err(Error::ConsentChanged)), "{stale:?}");
    let active = w
        .portal
        .consent(
            &a,
            &sub.id,
            &shown.hash,
            &Confirm::Password(pw("client password 1")),
            here(),
        )
        .await
        .expect("consent");
    assert_eq!(active.state, SubState::Active);
    let consent = active.consent.expect("consent recorded");
    assert_eq!(consent.hash, shown.hash);
    assert!(
        consent.by.contains("a@example.in") && consent.from == "127.0.0.1",
        "{consent:?}"
    );

    // New inputs: back to awaiting consent, and the old consent's hash no longer fits.
    let changed = w
        .portal
        .change_inputs(&a, &sub.id, inputs(3), here())
        .await
        .expect("change");
    assert_eq!(changed.state, SubState::AwaitingConsent);
    let again = w.portal.consent_preview(&a, &sub.id).await.expect("preview");
    assert_ne!(again.hash, shown.hash);
    let old = w
        .portal
        .consent(
            &a,
            &sub.id,
            &shown.hash,
            &Confirm::Password(pw("client password 1")),
            here(),
        )
        .await;
    assert!(matches!(old, Err(Error::ConsentChanged)), "{old:?}");

    // B reaches none of it, and A reaches none of B's.
    assert!(matches!(
        w.portal.consent_preview(&b, &sub.id).await,
        Err(Error::NotFound("subscription"))
    ));
    assert!(matches!(
        w.portal.change_inputs(&b, &sub.id, inputs(1), here()).await,
        Err(Error::NotFound("subscription"))
    ));
    assert!(matches!(
        w.portal.pause(&b, &sub.id, here()).await,
        Err(Error::NotFound("subscription"))
    ));
    assert!(matches!(
        w.portal.subscribe(&b, "ACCT-A", "momo", inputs(1), here()).await,
        Err(Error::NotFound("account"))
    ));
    assert!(matches!(
        w.portal.kill_switch(&b, Some("ACCT-A"), Switch::Halt, here(), T0).await,
        Err(Error::NotFound("account"))
    ));
    let still = w.portal.consent_preview(&a, &sub.id).await.expect("preview");
    assert_eq!(still.hash, again.hash, "B's attempts changed A's subscription");
}

#[tokio::test]
async fn a_clients_kill_switch_halts_their_accounts_only() {
    let w = world().await;
    let op = w
        .people
        .first_operator("ops@vendor.in", "Ops", &pw("operator password"), T0)
        .await
        .expect("op");
    let a = w.client(&op, "a@example.in", "ACCT-A").await;
    let now = chrono_now();
    let report = w
        .portal
        .kill_switch(&a, None, Switch::HaltAndExit, here(), now)
        .await
        .expect("kill");
    assert_eq!(report.accounts, vec!["ACCT-A".to_owned()]);
    assert_eq!(report.state, TradingState::Halted);
    assert_eq!(report.exits, 0);
    assert!(
        report.exit_problem.as_deref().is_some_and(|p| p.contains("no engine")),
        "without an engine the exit is said to be impossible: {report:?}"
    );
    let desk_states = stoxide_engine::desk::Desk::new(
        stoxide_vault::Vault::open(&stoxide_vault::VaultConfig::sqlite(w._dir.path()))
            .await
            .expect("vault"),
    )
    .states()
    .await
    .expect("states");
    let halted: Vec<_> = desk_states
        .iter()
        .filter(|s| s.state == TradingState::Halted)
        .map(|s| s.target.clone())
        .collect();
    assert_eq!(halted, vec!["ACCT-A".to_owned()]);
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}
