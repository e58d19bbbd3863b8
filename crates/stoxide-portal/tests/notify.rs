//! Notifications against a local SMTP sink and a local webhook receiver (both real servers on
//! 127.0.0.1, written here): each chosen notice goes out once, by email and webhook, only to the
//! person whose account it is about.

use std::sync::Arc;

use chrono::TimeZone;
use secrecy::SecretString;
use stoxide_people::{Limits, People, Role};
use stoxide_portal::Portal;
use stoxide_portal::notify::{Delivery, Event, Notifier, Settings, SmtpConfig, SmtpSecurity};
use stoxide_store::IntentRow;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// A minimal SMTP server: accepts every message and hands its DATA to `tx`.
async fn smtp_sink() -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 sink ESMTP\r\n").await;
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            let _ = tx.send(std::mem::take(body));
                            data = None;
                            let _ = w.write_all(b"250 queued\r\n").await;
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = w.write_all(answer).await;
                }
            });
        }
    });
    (port, rx)
}

/// A minimal HTTP server: answers 200 to every POST and hands its body to `tx`.
async fn webhook_receiver() -> (String, mpsc::UnboundedReceiver<serde_json::Value>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let length = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= head_end + 4 + length {
                            let body = &buf[head_end + 4..head_end + 4 + length];
                            if let Ok(v) = serde_json::from_slice(body) {
                                let _ = tx.send(v);
                            }
                            let _ = sock
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                .await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, rx)
}

/// Epoch ms of `hour`:`minute` IST on the trading day of a token issued now: the IST day that
/// began at the last 03:30 IST (a token imported between midnight and 03:30 IST ends at 03:30
/// that same morning, so "today" for it is the day before).
fn today_ist(hour: u32, minute: u32) -> i64 {
    let today = (chrono::Utc::now() - chrono::Duration::minutes(3 * 60 + 30))
        .with_timezone(&upstox_types::IST)
        .date_naive();
    upstox_types::IST
        .from_local_datetime(&today.and_hms_opt(hour, minute, 0).expect("time"))
        .single()
        .expect("ist")
        .timestamp_millis()
}

fn rejected(tag: &str, account: &str, at: i64) -> IntentRow {
    IntentRow {
        tag: tag.into(),
        strategy: "momo".into(),
        signal_id: "s1".into(),
        subscription: format!("momo:{account}"),
        account: account.into(),
        plan: None,
        state: "rejected".into(),
        reason: Some("Insufficient funds: add Rs. 1200.00".into()),
        order_ids: "[]".into(),
        created_at: at,
        updated_at: at,
        filled: 0,
        average_price: None,
    }
}

#[tokio::test]
async fn chosen_notices_go_out_once_by_email_and_webhook_to_the_accounts_owner_only() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tmp");
    let vault = stoxide_vault::Vault::open(&stoxide_vault::VaultConfig::sqlite(dir.path()))
        .await
        .expect("vault");
    for account in ["ACCT-A", "ACCT-X", "ACCT-B"] {
        vault
            .store_token(&stoxide_vault::NewToken::imported(
                account,
                "http://127.0.0.1:9",
                pw("a-token"),
            ))
            .await
            .expect("token");
    }
    // ACCT-X logged out: no token today.
    vault.store().wipe_tokens("ACCT-X", 1).await.expect("logout");
    let people = People::new(vault.store().clone(), Limits::default());
    let portal = Portal::new(people.clone(), vault.clone());
    let op = people
        .first_operator("ops@vendor.in", "Ops", &pw("operator password"), 0)
        .await
        .expect("op");
    let mut viewers = Vec::new();
    for (email, accounts) in [
        ("asha@example.in", vec!["ACCT-A", "ACCT-X"]),
        ("bala@example.in", vec!["ACCT-B"]),
    ] {
        let inv = people
            .invite(
                &op,
                email,
                "Client",
                Role::Client,
                std::time::Duration::from_secs(60),
                0,
            )
            .await
            .expect("invite");
        let person = people
            .accept(&inv.secret, &pw("client password 1"), 0)
            .await
            .expect("accept");
        for a in accounts {
            people.link_account(&person, a, 0).await.expect("link");
        }
        viewers.push(people.viewer(person).await.expect("viewer"));
    }
    let (port, mut mails) = smtp_sink().await;
    let (hook, mut hooks) = webhook_receiver().await;
    let asha = &viewers[0];
    let bad = portal
        .set_notification_settings(
            asha,
            &Settings {
                email: true,
                webhook_url: Some("ftp://example.com".into()),
                events: [Event::OrderRejected].into(),
            },
        )
        .await;
    assert!(matches!(bad, Err(stoxide_portal::Error::Invalid(_))), "{bad:?}");
    portal
        .set_notification_settings(
            asha,
            &Settings {
                email: true,
                webhook_url: Some(hook.clone()),
                events: [Event::OrderRejected, Event::LoginToday].into(),
            },
        )
        .await
        .expect("settings");
    assert_eq!(
        portal.notification_settings(asha).await.expect("read").webhook_url,
        Some(hook)
    );
    assert_eq!(
        portal.notification_settings(&viewers[1]).await.expect("read"),
        Settings::default()
    );

    let early = today_ist(7, 30);
    let store = vault.store();
    store.insert_intent(&rejected("t-a", "ACCT-A", early)).await.expect("a");
    store.insert_intent(&rejected("t-b", "ACCT-B", early)).await.expect("b");
    let delivery = Delivery::new(Some(&SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::None,
        from: "stoxide <alerts@vendor.in>".into(),
        username: None,
        password: None,
    }))
    .expect("delivery");
    let mut notifier = Notifier::new(&portal, Arc::new(delivery), early - 1000);

    // 07:30 IST: the rejection (by email and webhook); no "log in" notice before 08:00.
    assert_eq!(notifier.scan(early).await.expect("scan"), 2);
    // Quoted-printable: soft line breaks undone.
    let mail = mails.recv().await.expect("a mail").replace("=\n", "");
    assert!(mail.contains("Subject: Order rejected in ACCT-A"), "{mail}");
    assert!(mail.contains("To: asha@example.in"), "{mail}");
    assert!(mail.contains("Insufficient funds"), "{mail}");
    let posted = hooks.recv().await.expect("a webhook");
    assert_eq!(posted["event"], "order_rejected");
    assert_eq!(posted["account"], "ACCT-A");
    // Once only, and nothing for Bala (who chose nothing).
    assert_eq!(notifier.scan(early + 1).await.expect("scan"), 0);
    assert!(mails.try_recv().is_err() && hooks.try_recv().is_err());

    // 08:30 IST: ACCT-X has no token today.
    let later = today_ist(8, 30);
    assert_eq!(notifier.scan(later).await.expect("scan"), 2);
    let mail = mails.recv().await.expect("a mail").replace("=\n", "");
    assert!(mail.contains("Log in to Upstox today for ACCT-X"), "{mail}");
    assert_eq!(hooks.recv().await.expect("hook")["event"], "login_today");
    assert_eq!(
        notifier.scan(later + 60_000).await.expect("scan"),
        0,
        "the login notice went out twice"
    );
    assert_eq!(notifier.failures, 0);
}
