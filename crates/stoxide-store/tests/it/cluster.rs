//! Leases on PostgreSQL: an account is held by one node at a time; taken when free or run out,
//! renewed by its holder, never taken from a live holder; a node that leaves frees its accounts.
//! On SQLite the cluster's calls say PostgreSQL is needed.

use crate::Fixture;

fn accounts(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn held(rows: &[stoxide_store::LeaseRow]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(|r| r.account.clone()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_holds_an_account_at_a_time_and_a_dead_ones_run_out() {
    let f = Fixture::new("postgres").await;
    let s = f.store().await;
    s.node_heartbeat("a", "10.0.0.1", "{}").await.expect("beat");
    s.node_heartbeat("b", "10.0.0.2", "{}").await.expect("beat");
    let got = s.hold_leases("a", &accounts(&["U1", "U2"]), 60_000).await.expect("a");
    assert_eq!(held(&got), accounts(&["U1", "U2"]));
    assert!(got.iter().all(|r| r.node == "a" && r.epoch == 1));
    // b cannot take what a holds; it takes what is free.
    let got = s.hold_leases("b", &accounts(&["U2", "U3"]), 60_000).await.expect("b");
    assert_eq!(held(&got), accounts(&["U3"]));
    // a renews its own.
    let got = s
        .hold_leases("a", &accounts(&["U1", "U2"]), 60_000)
        .await
        .expect("renew");
    assert_eq!(held(&got), accounts(&["U1", "U2"]));
    assert!(got.iter().all(|r| r.epoch == 1), "a renewal is not a new holder");
    // a's leases on U2 run out (a short one): b takes it, as the next holder.
    s.hold_leases("a", &accounts(&["U2"]), 1).await.expect("short");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let got = s.hold_leases("b", &accounts(&["U2"]), 60_000).await.expect("take over");
    assert_eq!(held(&got), accounts(&["U2"]));
    assert_eq!(got[0].epoch, 2);
    // a leaves: its accounts are free at once.
    s.node_leave("a").await.expect("leave");
    let got = s.hold_leases("b", &accounts(&["U1"]), 60_000).await.expect("free");
    assert_eq!(held(&got), accounts(&["U1"]));
    let nodes = s.nodes().await.expect("nodes");
    assert_eq!(nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), vec!["b"]);
    s.put_egress("*", &accounts(&["10.0.0.2"])).await.expect("egress");
    assert_eq!(s.egress().await.expect("egress")[0].addresses, "10.0.0.2");
    f.finish(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_says_a_cluster_needs_postgresql() {
    let f = Fixture::new("sqlite").await;
    let s = f.store().await;
    let e = s.hold_leases("a", &accounts(&["U1"]), 1000).await.expect_err("sqlite");
    assert!(e.to_string().contains("PostgreSQL"), "{e}");
    f.finish(s).await;
}
