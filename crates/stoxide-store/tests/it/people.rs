//! The portal's people, invitations and account ownership, on both backends.

use stoxide_store::{InvitationRow, PersonRow};

use crate::{Fixture, contract};

fn person(id: &str, email: &str, role: &str) -> PersonRow {
    PersonRow {
        id: id.into(),
        email: email.into(),
        name: format!("Person {id}"),
        role: role.into(),
        password_phc: None,
        totp_sealed: None,
        disabled: 0,
        created_at: 1,
        updated_at: 1,
    }
}

contract!(people_are_unique_by_email_and_listed_by_role);
async fn people_are_unique_by_email_and_listed_by_role(backend: &str) {
    let f = Fixture::new(backend).await;
    let s = f.store().await;
    s.put_person(&person("p-op", "ops@vendor.in", "operator"))
        .await
        .expect("operator");
    s.put_person(&person("p-b", "b@client.in", "client")).await.expect("b");
    s.put_person(&person("p-a", "a@client.in", "client")).await.expect("a");
    assert!(
        s.put_person(&person("p-x", "a@client.in", "client")).await.is_err(),
        "a second person with the same email"
    );
    let clients: Vec<String> = s
        .people(Some("client"))
        .await
        .expect("clients")
        .into_iter()
        .map(|p| p.email)
        .collect();
    assert_eq!(clients, ["a@client.in", "b@client.in"]);
    assert_eq!(s.people(None).await.expect("all").len(), 3);
    assert_eq!(
        s.person_by_email("ops@vendor.in")
            .await
            .expect("by email")
            .map(|p| p.id),
        Some("p-op".to_owned())
    );

    assert!(
        s.set_credentials("p-a", Some("$argon2id$v=19$..."), 5)
            .await
            .expect("set")
    );
    assert!(!s.set_credentials("nobody", Some("x"), 5).await.expect("nobody"));
    let a = s.person("p-a").await.expect("get").expect("some");
    assert_eq!(
        (a.password_phc.as_deref(), a.updated_at),
        (Some("$argon2id$v=19$..."), 5)
    );
    assert!(s.set_disabled("p-a", true, 6).await.expect("disable"));
    assert_eq!(s.person("p-a").await.expect("get").map(|p| p.disabled), Some(1));
    f.finish(s).await;
}

contract!(an_invitation_is_used_once_and_never_after_it_expires);
async fn an_invitation_is_used_once_and_never_after_it_expires(backend: &str) {
    let f = Fixture::new(backend).await;
    let s = f.store().await;
    s.put_person(&person("p-a", "a@client.in", "client")).await.expect("a");
    for (hash, expires) in [("h-live", 100), ("h-old", 10)] {
        s.put_invitation(&InvitationRow {
            token_hash: hash.into(),
            person_id: "p-a".into(),
            created_by: "p-op".into(),
            created_at: 1,
            expires_at: expires,
            used_at: None,
        })
        .await
        .expect("invite");
    }
    assert_eq!(
        s.use_invitation("h-live", 50).await.expect("use"),
        Some("p-a".to_owned())
    );
    assert_eq!(s.use_invitation("h-live", 51).await.expect("again"), None, "single use");
    assert_eq!(s.use_invitation("h-old", 50).await.expect("expired"), None);
    assert_eq!(s.use_invitation("h-unknown", 50).await.expect("unknown"), None);
    f.finish(s).await;
}

contract!(an_account_belongs_to_one_person);
async fn an_account_belongs_to_one_person(backend: &str) {
    let f = Fixture::new(backend).await;
    let s = f.store().await;
    assert!(s.link_account("p-a", "SIMU00001", 1).await.expect("link"));
    assert!(s.link_account("p-a", "SIMU00002", 2).await.expect("link"));
    assert!(
        !s.link_account("p-b", "SIMU00001", 3).await.expect("taken"),
        "already someone's"
    );
    assert_eq!(
        s.accounts_of_person("p-a").await.expect("of"),
        ["SIMU00001", "SIMU00002"]
    );
    assert!(s.accounts_of_person("p-b").await.expect("of").is_empty());
    assert_eq!(
        s.owner_of_account("SIMU00001").await.expect("owner"),
        Some("p-a".to_owned())
    );
    assert_eq!(s.owner_of_account("SIMU00009").await.expect("owner"), None);
    f.finish(s).await;
}

contract!(notification_settings_are_kept_and_each_notification_is_claimed_once);
async fn notification_settings_are_kept_and_each_notification_is_claimed_once(backend: &str) {
    let f = Fixture::new(backend).await;
    let s = f.store().await;
    let mut row = stoxide_store::NotificationSettingsRow {
        person_id: "p-a".into(),
        email: 1,
        webhook_url: None,
        events: r#"["order_rejected"]"#.into(),
        updated_at: 1,
    };
    s.put_notification_settings(&row).await.expect("put");
    row.webhook_url = Some("http://127.0.0.1:9/hook".into());
    row.updated_at = 2;
    s.put_notification_settings(&row).await.expect("replace");
    assert_eq!(s.notification_settings("p-a").await.expect("get"), Some(row.clone()));
    assert_eq!(s.notification_settings("p-b").await.expect("get"), None);
    assert_eq!(s.all_notification_settings().await.expect("all"), vec![row]);
    assert!(s.claim_notification("p-a", "rejected:t1", 5).await.expect("claim"));
    assert!(
        !s.claim_notification("p-a", "rejected:t1", 6).await.expect("again"),
        "sent twice"
    );
    assert!(
        s.claim_notification("p-b", "rejected:t1", 6)
            .await
            .expect("another person")
    );
    f.finish(s).await;
}
