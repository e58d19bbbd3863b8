//! The audit trail: every decision recorded in a hash chain that verifies, whose tampering is
//! found, and which holds no token.

use std::time::Duration;

use chrono::Utc;
use stoxide_engine::audit::Tamper;
use stoxide_engine::signal::Action;
use upstox_sim::SimConfig;

use crate::{config, engine, signal, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_records_consents_and_orders_verifies_and_shows_tampering() {
    let w = world(3, SimConfig::default(), true).await;
    let e = engine(&w, config()).await;
    e.submit(signal("a-1", Action::EnterLong), "test")
        .await
        .expect("submit");
    e.wait_settled("momo", "a-1", Duration::from_secs(30))
        .await
        .expect("settled");
    e.shutdown().await;

    let n = w
        .desk
        .verify_audit()
        .await
        .expect("read")
        .expect("an untouched trail verifies");
    let user = &w.users[1];
    let mine = w
        .desk
        .audit(Some(user), Utc::now() - chrono::Duration::hours(1), Utc::now())
        .await
        .expect("audit");
    let kinds: Vec<&str> = mine.iter().map(|e| e.kind.as_str()).collect();
    for k in ["subscribed", "consent", "intent", "order_placed"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    assert!(
        mine.iter().all(|e| e.user == *user),
        "one user's export holds only that user"
    );
    assert!(n as usize > mine.len());

    // No token anywhere in the trail or in the database file.
    let db = std::fs::read(w._dir.path().join("vault.db")).expect("db");
    let all = w
        .desk
        .audit(None, Utc::now() - chrono::Duration::hours(1), Utc::now())
        .await
        .expect("audit");
    for u in &w.users {
        let token = w.sim.token_of(u).expect("token");
        assert!(
            !all.iter().any(|e| e.body.contains(token)),
            "a token in the audit trail"
        );
        assert!(
            !db.windows(token.len()).any(|win| win == token.as_bytes()),
            "a token in clear in the database"
        );
    }

    // An edited record is found.
    let url = format!("sqlite:{}", w._dir.path().join("vault.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.expect("db");
    sqlx::query("UPDATE audit_log SET body = body || ' ' WHERE seq = 3")
        .execute(&pool)
        .await
        .expect("tamper");
    pool.close().await;
    let tamper = w.desk.verify_audit().await.expect("read").expect_err("tampered");
    assert_eq!(tamper, Tamper::Edited { seq: 3 }, "the first edited record is named");
    w.sim.shutdown().await;
}
