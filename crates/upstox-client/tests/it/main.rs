//! The client against an in-process simulator: every endpoint, the error mapping, limits,
//! retries and order reconciliation. Everything talks to 127.0.0.1 only.

mod auth;
mod charges;
mod compliance;
mod gtt;
mod market;
mod orders;
mod resilience;

use upstox_client::{ClientConfig, Hosts, UpstoxClient};
use upstox_sim::{SimConfig, Simulator};

/// A simulator on a free port with `config`, and a client holding SIM001's token.
pub(crate) async fn start(config: SimConfig) -> (Simulator, UpstoxClient) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = Simulator::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator starts");
    let client = client_for(&sim, "SIM001");
    (sim, client)
}

pub(crate) fn client_for(sim: &Simulator, user: &str) -> UpstoxClient {
    let token = sim.token_of(user).expect("seeded user").to_owned();
    UpstoxClient::new(ClientConfig::new(Hosts::single(&sim.base_url())))
        .expect("client")
        .for_user(user, token.into())
}

pub(crate) async fn sim_post(sim: &Simulator, path: &str, body: serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", sim.base_url()))
        .json(&body)
        .send()
        .await
        .expect("control call");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
}
