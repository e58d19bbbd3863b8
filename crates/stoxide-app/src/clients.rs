//! One client per Upstox base URL for the whole process, all spending one rate limiter (one
//! budget per user and API category) and reporting every call to one observer.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use secrecy::SecretString;
use upstox_client::{CallObserver, ClientConfig, Hosts, RateLimiter, UpstoxClient};

/// The process's clients. Cheap to clone; clones share the clients and the limiter.
#[derive(Clone, Debug)]
pub struct Clients {
    by_base: Arc<Mutex<HashMap<String, UpstoxClient>>>,
    limiter: RateLimiter,
    observer: Option<CallObserver>,
    local_address: Option<std::net::IpAddr>,
    timeout: Option<std::time::Duration>,
}

impl Default for Clients {
    fn default() -> Self {
        Self::new(RateLimiter::default(), None)
    }
}

impl Clients {
    /// Clients sharing `limiter`, each call told to `observer`.
    pub fn new(limiter: RateLimiter, observer: Option<CallObserver>) -> Self {
        Self {
            by_base: Arc::default(),
            limiter,
            observer,
            local_address: None,
            timeout: None,
        }
    }

    /// The same, with requests leaving from `address` (the static IP registered with Upstox for
    /// order APIs). Set before the first client is made.
    pub fn with_local_address(mut self, address: Option<std::net::IpAddr>) -> Self {
        self.local_address = address;
        self
    }

    /// The same, with every request answered within `timeout` or given up as unknown.
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The token-less client for `base_url` (`production`, `sandbox` or an http(s) URL).
    ///
    /// # Errors
    /// A malformed base URL.
    pub fn client(&self, base_url: &str) -> upstox_client::Result<UpstoxClient> {
        let mut by_base = self.by_base.lock();
        if let Some(c) = by_base.get(base_url) {
            return Ok(c.clone());
        }
        let mut config = ClientConfig::new(Hosts::from_base_url(base_url)?).with_limiter(self.limiter.clone());
        config.observer = self.observer.clone();
        config.local_address = self.local_address;
        if let Some(t) = self.timeout {
            config.timeout = t;
        }
        let client = UpstoxClient::new(config)?;
        by_base.insert(base_url.to_owned(), client.clone());
        Ok(client)
    }

    /// The client for `base_url` acting for `user` with `token`.
    ///
    /// # Errors
    /// A malformed base URL.
    pub fn for_user(&self, base_url: &str, user: &str, token: SecretString) -> upstox_client::Result<UpstoxClient> {
        Ok(self.client(base_url)?.for_user(user, token))
    }

    /// The process's limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }
}
