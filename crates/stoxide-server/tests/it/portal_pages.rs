//! The portal's pages on a real socket against the simulator: a client accepts the invitation,
//! signs in, links Upstox through the simulator's dialog, subscribes, reads the consent page and
//! confirms with the password; another client's consent page is 404.

use reqwest::StatusCode;
use serde_json::json;

use super::{cookie_value, csrf_in, fixture, set_cookies};

/// Opens a form page: (the double-submit cookie, the page's CSRF token).
async fn form_page(f: &super::Fixture, path: &str) -> (String, String) {
    let page = f.http.get(format!("{}{path}", f.url)).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK, "{path}");
    let pre = cookie_value(&set_cookies(&page), "stoxide_portal_form").expect("form cookie");
    let csrf = csrf_in(&page.text().await.expect("html"));
    (format!("stoxide_portal_form={pre}"), csrf)
}

/// A signed-in client browser: its cookie header and CSRF token.
struct Client {
    cookie: String,
    csrf: String,
}

async fn sign_in(f: &super::Fixture, email: &str, password: &str) -> Client {
    sign_in_with_code(f, email, password, "").await
}

async fn sign_in_with_code(f: &super::Fixture, email: &str, password: &str, code: &str) -> Client {
    let (pre, csrf) = form_page(f, "/portal/login").await;
    let r = f
        .http
        .post(format!("{}/portal/login", f.url))
        .header("cookie", pre)
        .form(&[
            ("email", email),
            ("password", password),
            ("code", code),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = cookie_value(&set_cookies(&r), "stoxide_portal").expect("portal cookie");
    let cookie = format!("stoxide_portal={session}");
    let home = get(f, &cookie, "/portal").await;
    Client {
        csrf: csrf_in(&home),
        cookie,
    }
}

async fn get(f: &super::Fixture, cookie: &str, path: &str) -> String {
    let r = f
        .http
        .get(format!("{}{path}", f.url))
        .header("cookie", cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.expect("html")
}

async fn post(f: &super::Fixture, c: &Client, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let mut fields = vec![("csrf", c.csrf.as_str())];
    fields.extend_from_slice(form);
    f.http
        .post(format!("{}{path}", f.url))
        .header("cookie", &c.cookie)
        .form(&fields)
        .send()
        .await
        .expect("post")
}

async fn call(
    f: &super::Fixture,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> serde_json::Value {
    let mut r = f.http.request(method, format!("{}{path}", f.url)).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.expect("send");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.expect("json")
}

/// The operator's API token, with two-factor set up (operators act only with it).
async fn operator(f: &super::Fixture) -> String {
    operator_and_secret(f).await.0
}

/// The operator's API token and their two-factor secret.
async fn operator_and_secret(f: &super::Fixture) -> (String, String) {
    let who = json!({"email": "ops@vendor.in", "password": super::PASSWORD});
    let first = call(f, reqwest::Method::POST, "/api/v1/sessions", None, who.clone()).await;
    let first = first["token"].as_str().expect("token").to_owned();
    let setup = call(
        f,
        reqwest::Method::POST,
        "/api/v1/me/two-factor",
        Some(&first),
        json!(null),
    )
    .await;
    let secret = setup["secret"].as_str().expect("secret").to_owned();
    let body = json!({"secret": secret, "code": super::portal::code_of(&secret)});
    call(f, reqwest::Method::PUT, "/api/v1/me/two-factor", Some(&first), body).await;
    let mut who = who;
    who["code"] = serde_json::Value::String(super::portal::code_of(&secret));
    let op = call(f, reqwest::Method::POST, "/api/v1/sessions", None, who).await;
    (op["token"].as_str().expect("token").to_owned(), secret)
}

/// The operator invites `email`; answers the invitation secret.
async fn invite(f: &super::Fixture, op: &str, email: &str, name: &str) -> String {
    let body = json!({"email": email, "name": name});
    let inv = call(f, reqwest::Method::POST, "/api/v1/invitations", Some(op), body).await;
    inv["invitation"].as_str().expect("invitation").to_owned()
}

async fn accept(f: &super::Fixture, secret: &str, password: &str) {
    let (pre, csrf) = form_page(f, &format!("/portal/invite/{secret}")).await;
    let r = f
        .http
        .post(format!("{}/portal/invite", f.url))
        .header("cookie", pre)
        .form(&[("invitation", secret), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .expect("accept");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("html").contains("Your password is set"));
}

#[tokio::test]
async fn a_client_signs_up_links_upstox_subscribes_and_consents_in_the_browser_pages() {
    let f = fixture().await;
    f.state
        .people
        .first_operator(
            "ops@vendor.in",
            "Ops",
            &secrecy::SecretString::from(super::PASSWORD.to_owned()),
            0,
        )
        .await
        .expect("operator");
    super::portal::register_strategy_in(&f.state).await;
    let op = operator(&f).await;
    let secret = invite(&f, &op, "asha@example.in", "Asha").await;
    accept(&f, &secret, "Asha password 123").await;
    // The link works once.
    let (pre, csrf) = form_page(&f, &format!("/portal/invite/{secret}")).await;
    let again = f
        .http
        .post(format!("{}/portal/invite", f.url))
        .header("cookie", pre)
        .form(&[
            ("invitation", secret.as_str()),
            ("password", "another password 1"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .expect("again");
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    let a = sign_in(&f, "asha@example.in", "Asha password 123").await;
    let home = get(&f, &a.cookie, "/portal").await;
    assert!(home.contains("No Upstox account is linked yet"), "{home}");
    assert!(home.contains("Momentum"), "the catalog is missing: {home}");

    // Link Upstox through the simulator's dialog.
    let r = post(&f, &a, "/portal/accounts/link", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let dialog = r.headers()["location"].to_str().expect("location").to_owned();
    let callback = super::through_dialog(&f, &dialog, "SIM002", "234567").await;
    let r = f
        .http
        .get(&callback)
        .header("cookie", &a.cookie)
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/portal");
    let home = get(&f, &a.cookie, "/portal").await;
    assert!(home.contains("Linked your Upstox account SIM002"), "{home}");

    let subscribe = |lots: &'static str| {
        [
            ("strategy", "momo"),
            ("account", "SIM002"),
            ("lots", lots),
            ("max_exposure", "200000"),
            ("daily_max_loss", "5000"),
            ("product", "I"),
        ]
    };
    // A wrong field is named, and nothing is subscribed.
    let r = post(&f, &a, "/portal/subscribe", &subscribe("two")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = get(&f, &a.cookie, "/portal").await;
    assert!(home.contains("Lots per signal must be a number"), "{home}");
    assert!(home.contains("No subscription yet"), "{home}");

    // Subscribe: straight to the consent page, which says what will happen.
    let r = post(&f, &a, "/portal/subscribe", &subscribe("2")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let consent_path = r.headers()["location"].to_str().expect("location").to_owned();
    let consent = get(&f, &a.cookie, &consent_path).await;
    for words in [
        "2 lot(s) per signal",
        "one order at today's prices",
        "2 unit(s)",
        "Intraday",
        "₹200000",
        "₹5000",
        "STOXIDE-MOMO",
        // The instrument by its name, the key beside it.
        "Instruments: RELIANCE (NSE_EQ|INE002A01018)",
    ] {
        assert!(
            consent.contains(words),
            "the consent page does not say {words:?}: {consent}"
        );
    }
    let hash_at = consent.find("name=\"hash\" value=\"").expect("hash") + 19;
    let hash = consent[hash_at..hash_at + 64].to_owned();
    let r = post(
        &f,
        &a,
        &consent_path,
        &[("hash", &hash), ("password", "wrong password 1")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.expect("html").contains("password is wrong"));
    let home = get(&f, &a.cookie, "/portal").await;
    assert!(home.contains("awaiting your consent"), "{home}");
    let r = post(
        &f,
        &a,
        &consent_path,
        &[("hash", &hash), ("password", "Asha password 123")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = get(&f, &a.cookie, "/portal").await;
    assert!(home.contains("is active in SIM002"), "{home}");
    assert!(!home.contains("awaiting your consent"), "{home}");

    // Positions, marked with the simulator's last price; the person's own audit trail.
    f.state
        .vault
        .store()
        .put_position(&stoxide_store::PositionRow {
            subscription: "momo:SIM002".into(),
            instrument: "NSE_EQ|INE002A01018".into(),
            quantity: 2,
            avg_price: "100".into(),
            realised: "0".into(),
            updated_at: 1,
        })
        .await
        .expect("position");
    let home = get(&f, &a.cookie, "/portal").await;
    let at = home
        .find("<td>RELIANCE (NSE_EQ|INE002A01018)</td>")
        .expect("the position's row, named");
    let row = &home[at..at + home[at..].find("</tr>").expect("row end")];
    let cells: Vec<&str> = row.split("<td>").filter_map(|c| c.split("</td>").next()).collect();
    let ltp: f64 = cells[4].parse().expect("a last price");
    let unrealised: f64 = cells[5].parse().expect("unrealised P&L");
    assert!(ltp > 0.0 && (unrealised - (ltp - 100.0) * 2.0).abs() < 0.011, "{row}");
    let trail = &home[home.find("id=\"audit\"").expect("audit section")..];
    assert!(
        trail.contains("<td>consent</td>") && trail.contains("asha@example.in"),
        "{trail}"
    );

    // Another client cannot read A's consent page, nor confirm it.
    let secret_b = invite(&f, &op, "bala@example.in", "Bala").await;
    accept(&f, &secret_b, "Bala password 123").await;
    let b = sign_in(&f, "bala@example.in", "Bala password 123").await;
    let r = f
        .http
        .get(format!("{}{consent_path}", f.url))
        .header("cookie", &b.cookie)
        .send()
        .await
        .expect("b");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = post(
        &f,
        &b,
        &consent_path,
        &[("hash", &hash), ("password", "Bala password 123")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let b_home = get(&f, &b.cookie, "/portal").await;
    assert!(!b_home.contains("SIM002"), "B sees A's account: {b_home}");
    // Nor read or change A's inputs.
    let sub_path = consent_path.trim_end_matches("/consent").to_owned();
    let r = f
        .http
        .get(format!("{}{sub_path}/edit", f.url))
        .header("cookie", &b.cookie)
        .send()
        .await
        .expect("b edit");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = post(
        &f,
        &b,
        &format!("{sub_path}/inputs"),
        &[
            ("lots", "3"),
            ("max_exposure", "1"),
            ("daily_max_loss", "1"),
            ("product", "I"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A changes every input on the edit page: awaiting consent again, said on the page.
    let edit = get(&f, &a.cookie, &format!("{sub_path}/edit")).await;
    assert!(
        edit.contains("name=\"lots\" type=\"number\" min=\"1\" max=\"10\" value=\"2\""),
        "the form shows the inputs as they are: {edit}"
    );
    let r = post(
        &f,
        &a,
        &format!("{sub_path}/inputs"),
        &[
            ("sizing", "margin"),
            ("margin_percent", "5"),
            ("max_exposure", "150000"),
            ("daily_max_loss", "4000"),
            ("max_open_positions", "1"),
            ("max_orders_per_day", "5"),
            ("product", "D"),
            ("instruments_shown", "1"),
            ("only", "NSE_EQ|INE002A01018"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = get(&f, &a.cookie, "/portal").await;
    assert!(home.contains("now awaits your consent again"), "{home}");
    let again = get(&f, &a.cookie, &consent_path).await;
    for words in [
        "5% of the available margin",
        "Delivery",
        "₹150000",
        "₹4000",
        "At most 5 orders a day and 1 open positions",
    ] {
        assert!(
            again.contains(words),
            "the consent page does not say {words:?}: {again}"
        );
    }

    // The live page: the picture first, then each change, pushed.
    let mut live = f
        .http
        .get(format!("{}/portal/events", f.url))
        .header("cookie", &a.cookie)
        .send()
        .await
        .expect("events");
    assert_eq!(live.status(), StatusCode::OK);
    let first = next_event(&mut live).await;
    assert!(
        first.contains(r#""subscriptions":[["momo:SIM002","awaiting_consent"]]"#),
        "{first}"
    );
    assert!(first.contains(r#""orders":[]"#), "{first}");
    let now = chrono::Utc::now().timestamp_millis();
    f.state
        .vault
        .store()
        .insert_intent(&stoxide_store::IntentRow {
            tag: "live-1".into(),
            strategy: "momo".into(),
            signal_id: "s1".into(),
            subscription: "momo:SIM002".into(),
            account: "SIM002".into(),
            plan: None,
            state: "rejected".into(),
            reason: Some("Insufficient funds".into()),
            order_ids: "[]".into(),
            created_at: now,
            updated_at: now,
            filled: 0,
            average_price: None,
        })
        .await
        .expect("intent");
    let next = next_event(&mut live).await;
    assert!(
        next.contains(r#""state":"rejected""#) && next.contains("Insufficient funds"),
        "{next}"
    );
    drop(live);

    // A's kill switch.
    let r = post(&f, &a, "/portal/kill", &[("halt", "true")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = get(&f, &a.cookie, "/portal").await;
    assert!(home.contains("Halted: no order goes out for SIM002"), "{home}");

    // A second browser of A's, ended from the first.
    let a2 = sign_in(&f, "asha@example.in", "Asha password 123").await;
    let home = get(&f, &a.cookie, "/portal").await;
    assert!(home.contains("(this browser)"), "{home}");
    let prefix = "action=\"/portal/sessions/";
    let ends: Vec<&str> = home
        .match_indices(prefix)
        .map(|(i, _)| &home[i + prefix.len()..i + prefix.len() + 16])
        .collect();
    assert_eq!(ends.len(), 2, "{home}");
    let this = home[..home.find("(this browser)").expect("this")]
        .rfind("<code>")
        .map(|i| &home[i + 6..i + 22])
        .expect("this session's id");
    let other = ends.iter().find(|id| **id != this).expect("the other session");
    let r = post(&f, &a, &format!("/portal/sessions/{other}/end"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = f
        .http
        .get(format!("{}/portal", f.url))
        .header("cookie", &a2.cookie)
        .send()
        .await
        .expect("a2");
    assert_eq!(
        r.headers()["location"],
        "/portal/login",
        "the ended session still works"
    );

    // A form without the session's CSRF token changes nothing.
    let forged = Client {
        cookie: a.cookie.clone(),
        csrf: "0".repeat(64),
    };
    let r = post(&f, &forged, "/portal/kill", &[("halt", "false")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// The next Server-Sent Event's data on `resp`.
async fn next_event(resp: &mut reqwest::Response) -> String {
    let mut text = String::new();
    loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), resp.chunk())
            .await
            .expect("an event within the keep-alive")
            .expect("chunk")
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(at) = text.find("data: ")
            && let Some(end) = text[at..].find("\n\n")
        {
            return text[at + 6..at + end].to_owned();
        }
    }
}

#[tokio::test]
async fn the_operator_puts_strategies_in_the_catalog_rotates_a_secret_and_halts_one_from_the_page() {
    let f = fixture().await;
    f.state
        .people
        .first_operator(
            "ops@vendor.in",
            "Ops",
            &secrecy::SecretString::from(super::PASSWORD.to_owned()),
            0,
        )
        .await
        .expect("operator");
    let (op, secret) = operator_and_secret(&f).await;
    let page = sign_in_with_code(&f, "ops@vendor.in", super::PASSWORD, &super::portal::code_of(&secret)).await;
    let catalog = |version: u32, description: &str| {
        format!(
            "[[strategy]]\nid = \"ext1\"\nname = \"Vendor model\"\ndescription = \"{description}\"\nversion = {version}\n\
             algo_name = \"VENDOR-1\"\ninstruments = [\"NSE_EQ|INE002A01018\"]\n[strategy.bounds]\nmax_lots = 5\n\
             max_multiplier = 1\nmax_margin_percent = \"10\"\nmax_exposure = \"100000\"\nmax_orders_per_day = 10\n\
             max_open_positions = 1\n[strategy.source]\nsource = \"external\"\n"
        )
    };
    let r = post(&f, &page, "/portal/strategies", &[("catalog", &catalog(1, "first"))]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = get(&f, &page.cookie, "/portal").await;
    assert!(home.contains("ext1 added."), "{home}");
    assert!(home.contains("data-strategy=\"ext1\""), "{home}");

    // A broken catalog is said in one line; a changed strategy needs a higher version.
    let r = post(&f, &page, "/portal/strategies", &[("catalog", "[[strategy]]\nid = 3")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = get(&f, &page.cookie, "/portal").await;
    assert!(home.contains("That is not a strategy catalog"), "{home}");
    post(&f, &page, "/portal/strategies", &[("catalog", &catalog(1, "changed"))]).await;
    let home = get(&f, &page.cookie, "/portal").await;
    assert!(
        home.contains("ext1: "),
        "a changed definition at the same version is refused: {home}"
    );
    post(&f, &page, "/portal/strategies", &[("catalog", &catalog(2, "changed"))]).await;
    let home = get(&f, &page.cookie, "/portal").await;
    assert!(home.contains("ext1 is now version 2"), "{home}");

    // A new signing secret, shown in this one answer and never again.
    let r = post(&f, &page, "/portal/strategies/ext1/secret", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let shown = r.text().await.expect("html");
    let at = shown
        .find("(shown once; the old one no longer signs): ")
        .expect("the secret")
        + 43;
    let new_secret: String = shown[at..].chars().take_while(char::is_ascii_alphanumeric).collect();
    assert!(new_secret.len() >= 32, "{new_secret}");
    let home = get(&f, &page.cookie, "/portal").await;
    assert!(!home.contains(&new_secret), "the secret was kept for a later page");

    // The strategy's kill switch.
    let r = post(&f, &page, "/portal/strategies/ext1/kill", &[("halt", "true")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = get(&f, &page.cookie, "/portal").await;
    assert!(home.contains("ext1 halted"), "{home}");
    assert_eq!(
        post(&f, &page, "/portal/strategies/nope/kill", &[("halt", "true")])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // The signal monitor is live: a new signal is pushed to the operator's page.
    let mut live = f
        .http
        .get(format!("{}/portal/events", f.url))
        .header("cookie", &page.cookie)
        .send()
        .await
        .expect("events");
    let first = next_event(&mut live).await;
    assert!(!first.contains("sig-live-1"), "{first}");
    f.state
        .vault
        .store()
        .insert_signal(&stoxide_store::SignalRow {
            strategy: "ext1".into(),
            id: "sig-live-1".into(),
            body: "{}".into(),
            accepted: 0,
            reason: Some("stale timestamp".into()),
            received_at: chrono::Utc::now().timestamp_millis(),
        })
        .await
        .expect("signal");
    let next = next_event(&mut live).await;
    assert!(
        next.contains(r#""id":"sig-live-1""#) && next.contains("refused: stale timestamp"),
        "{next}"
    );
    drop(live);

    // A client cannot do any of it.
    let inv = invite(&f, &op, "asha@example.in", "Asha").await;
    accept(&f, &inv, "Asha password 123").await;
    let a = sign_in(&f, "asha@example.in", "Asha password 123").await;
    for (path, form) in [
        ("/portal/strategies", vec![("catalog", catalog(3, "mine"))]),
        ("/portal/strategies/ext1/secret", vec![]),
        ("/portal/strategies/ext1/kill", vec![("halt", "false".to_owned())]),
    ] {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            post(&f, &a, path, &form).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let home = get(&f, &page.cookie, "/portal").await;
    assert!(!home.contains("version 3"), "{home}");
}

#[tokio::test]
async fn a_client_links_with_their_own_upstox_app_and_logs_in_through_it_each_day() {
    let f = fixture().await;
    f.state
        .people
        .first_operator(
            "ops@vendor.in",
            "Ops",
            &secrecy::SecretString::from(super::PASSWORD.to_owned()),
            0,
        )
        .await
        .expect("operator");
    let op = operator(&f).await;
    let inv = invite(&f, &op, "chitra@example.in", "Chitra").await;
    accept(&f, &inv, "Chitra password 1").await;
    let c = sign_in(&f, "chitra@example.in", "Chitra password 1").await;
    let callback = format!("{}/oauth/callback", f.url);

    // A redirect URI that is not this server's is refused, saying which one it must be.
    let r = post(
        &f,
        &c,
        "/portal/accounts/link-own",
        &[
            ("client_id", super::OWN_APP),
            ("client_secret", super::OWN_SECRET),
            ("redirect_uri", "https://example.com/elsewhere"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = get(&f, &c.cookie, "/portal").await;
    assert!(home.contains("is not this server&#39;s callback"), "{home}");
    assert!(home.contains(&callback), "{home}");

    // Through the client's own app: the dialog is that app's, and the account is theirs.
    let own = [
        ("client_id", super::OWN_APP),
        ("client_secret", super::OWN_SECRET),
        ("redirect_uri", callback.as_str()),
    ];
    let r = post(&f, &c, "/portal/accounts/link-own", &own).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let dialog = r.headers()["location"].to_str().expect("location").to_owned();
    assert!(dialog.contains(&format!("client_id={}", super::OWN_APP)), "{dialog}");
    let back = super::through_dialog(&f, &dialog, "SIM003", "345678").await;
    let r = f
        .http
        .get(&back)
        .header("cookie", &c.cookie)
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = get(&f, &c.cookie, "/portal").await;
    assert!(home.contains("Linked your Upstox account SIM003"), "{home}");
    let account = f.state.vault.account("SIM003").await.expect("vault").expect("account");
    assert_eq!(account.client_id.as_deref(), Some(super::OWN_APP));

    // The next day's login goes through the same app.
    f.state.vault.wipe_token("SIM003").await.expect("logout");
    let r = post(&f, &c, "/portal/accounts/link", &[("account", "SIM003")]).await;
    let dialog = r.headers()["location"].to_str().expect("location").to_owned();
    assert!(dialog.contains(&format!("client_id={}", super::OWN_APP)), "{dialog}");

    // Another client cannot replace the app's secret, nor log in for Chitra's account.
    let inv = invite(&f, &op, "dev@example.in", "Dev").await;
    accept(&f, &inv, "Dev password 123").await;
    let d = sign_in(&f, "dev@example.in", "Dev password 123").await;
    let r = post(
        &f,
        &d,
        "/portal/accounts/link-own",
        &[
            ("client_id", super::OWN_APP),
            ("client_secret", "guess"),
            ("redirect_uri", callback.as_str()),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = get(&f, &d.cookie, "/portal").await;
    assert!(home.contains("already registered here with another secret"), "{home}");
    let secret = f
        .state
        .vault
        .app_secret(super::OWN_APP)
        .await
        .expect("vault")
        .expect("secret");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&secret), super::OWN_SECRET);
    let r = post(&f, &d, "/portal/accounts/link", &[("account", "SIM003")]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
