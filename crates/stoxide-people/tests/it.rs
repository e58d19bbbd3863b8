//! The people use cases against a real store (SQLite in a temporary directory).

use std::net::IpAddr;
use std::time::Duration;

use secrecy::SecretString;
use stoxide_people::{Error, Limits, People, Role};
use stoxide_store::{Location, Store};

async fn people(limits: Limits) -> (tempfile::TempDir, People) {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(
        &Location::Sqlite {
            dir: dir.path().join("data"),
        },
        true,
    )
    .await
    .expect("open")
    .expect("created");
    (dir, People::new(store, limits))
}

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

const T0: i64 = 1_000_000;

/// The installation's first operator.
async fn operator(p: &People) -> stoxide_people::Person {
    p.first_operator("ops@vendor.in", "Ops", &pw("operator-pass-1"), T0)
        .await
        .expect("op")
}

#[tokio::test]
async fn an_operator_invites_a_client_who_signs_up_once_and_signs_in() {
    let (_dir, p) = people(Limits::default()).await;
    let op = p
        .first_operator("Ops@Vendor.in ", "Operations", &pw("operator-pass-1"), T0)
        .await
        .expect("first operator");
    assert_eq!(
        (op.email.as_str(), op.role, op.active),
        ("ops@vendor.in", Role::Operator, true)
    );
    assert!(
        p.first_operator("x@vendor.in", "X", &pw("operator-pass-2"), T0)
            .await
            .is_err(),
        "only the first"
    );

    let inv = p
        .invite(
            &op,
            "asha@client.in",
            "Asha",
            Role::Client,
            Duration::from_secs(3600),
            T0,
        )
        .await
        .expect("invite");
    assert!(!inv.person.active);
    assert!(matches!(
        p.invite(
            &op,
            "ASHA@client.in",
            "Asha again",
            Role::Client,
            Duration::from_secs(60),
            T0
        )
        .await,
        Err(Error::EmailTaken(_))
    ));
    // A short password is refused without using the link up.
    let short = p.accept(&inv.secret, &pw("short"), T0 + 1).await;
    assert!(
        matches!(short, Err(Error::Invalid(ref m)) if m.contains("12 characters")),
        "{short:?}"
    );
    let asha = p
        .accept(&inv.secret, &pw("asha-secret-pass"), T0 + 2)
        .await
        .expect("accept");
    assert!(asha.active && asha.role == Role::Client);
    assert!(matches!(
        p.accept(&inv.secret, &pw("asha-secret-pass"), T0 + 3).await,
        Err(Error::InvitationInvalid)
    ));

    let signed = p
        .sign_in("asha@client.in", &pw("asha-secret-pass"), ip("127.0.0.1"))
        .await
        .expect("sign in");
    assert_eq!(signed.id, asha.id);
    let wrong = p
        .sign_in("asha@client.in", &pw("not-her-password"), ip("127.0.0.1"))
        .await;
    let unknown = p
        .sign_in("nobody@client.in", &pw("not-her-password"), ip("127.0.0.1"))
        .await;
    assert_eq!(
        wrong.map_err(|e| e.to_string()).err(),
        unknown.map_err(|e| e.to_string()).err(),
        "an unknown email reads like a wrong password"
    );

    // A client invites nobody; a disabled client signs in no more.
    assert!(matches!(
        p.invite(&asha, "b@client.in", "B", Role::Client, Duration::from_secs(60), T0)
            .await,
        Err(Error::NotOperator)
    ));
    assert!(p.set_disabled(&op, &asha.id, true, T0 + 4).await.expect("disable"));
    assert!(matches!(
        p.sign_in("asha@client.in", &pw("asha-secret-pass"), ip("127.0.0.1"))
            .await,
        Err(Error::Disabled)
    ));
}

#[tokio::test]
async fn an_invitation_expires() {
    let (_dir, p) = people(Limits::default()).await;
    let op = operator(&p).await;
    let inv = p
        .invite(&op, "late@client.in", "Late", Role::Client, Duration::from_secs(60), T0)
        .await
        .expect("invite");
    assert!(matches!(
        p.accept(&inv.secret, &pw("late-client-pass"), T0 + 60_000).await,
        Err(Error::InvitationInvalid)
    ));
}

#[tokio::test]
async fn sign_in_is_throttled_per_account_and_per_address() {
    let limits = Limits {
        per_account: 3,
        per_address: 5,
        window: Duration::from_secs(600),
    };
    let (_dir, p) = people(limits).await;
    operator(&p).await;
    for _ in 0..3 {
        assert!(matches!(
            p.sign_in("ops@vendor.in", &pw("wrong-password!"), ip("10.0.0.1")).await,
            Err(Error::BadCredentials)
        ));
    }
    // The account is held, even with the right password and from another address.
    let held = p.sign_in("ops@vendor.in", &pw("operator-pass-1"), ip("10.0.0.2")).await;
    assert!(matches!(held, Err(Error::Throttled { .. })), "{held:?}");
    assert!(held.err().is_some_and(|e| e.to_string().contains("try again in")));
    // One address trying many accounts is held too.
    for i in 0..2 {
        let _ = p
            .sign_in(&format!("guess{i}@client.in"), &pw("wrong-password!"), ip("10.0.0.1"))
            .await;
    }
    assert!(matches!(
        p.sign_in("other@client.in", &pw("wrong-password!"), ip("10.0.0.1"))
            .await,
        Err(Error::Throttled { .. })
    ));
}

#[tokio::test]
async fn an_account_has_one_owner() {
    let (_dir, p) = people(Limits::default()).await;
    let op = operator(&p).await;
    let a = p
        .invite(&op, "a@client.in", "A", Role::Client, Duration::from_secs(60), T0)
        .await
        .expect("a")
        .person;
    let b = p
        .invite(&op, "b@client.in", "B", Role::Client, Duration::from_secs(60), T0)
        .await
        .expect("b")
        .person;
    assert!(p.link_account(&a, "SIMU00001", T0).await.expect("link"));
    assert!(!p.link_account(&b, "SIMU00001", T0).await.expect("taken"));
    assert_eq!(p.accounts_of(&a).await.expect("a's"), ["SIMU00001"]);
    assert!(p.accounts_of(&b).await.expect("b's").is_empty());
}

#[tokio::test]
async fn neither_the_link_secret_nor_a_password_hash_shows_in_debug_output() {
    use secrecy::ExposeSecret;
    let (_dir, p) = people(Limits::default()).await;
    let op = operator(&p).await;
    let inv = p
        .invite(&op, "a@client.in", "A", Role::Client, Duration::from_secs(60), T0)
        .await
        .expect("invite");
    let shown = format!("{inv:?} {op:?} {p:?}");
    assert!(!shown.contains(inv.secret.expose_secret()), "{shown}");
    assert!(!shown.contains("argon2"), "{shown}");
}
