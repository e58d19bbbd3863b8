//! Authorizing the WebSocket feeds: each call answers a fresh, single-use URI.

use serde::Deserialize;

use crate::client::{UpstoxClient, q};
use crate::error::Result;

/// Upstox sends the URI twice: snake_case and the deprecated camelCase.
#[derive(Debug, Deserialize)]
struct Authorized {
    #[serde(default)]
    authorized_redirect_uri: Option<String>,
    #[serde(default, rename = "authorizedRedirectUri")]
    authorized_redirect_uri_camel: Option<String>,
}

impl Authorized {
    fn uri(self, endpoint: &str) -> Result<String> {
        self.authorized_redirect_uri
            .or(self.authorized_redirect_uri_camel)
            .ok_or_else(|| crate::Error::Decode {
                endpoint: endpoint.to_owned(),
                message: "no authorized_redirect_uri in the answer".into(),
            })
    }
}

impl UpstoxClient {
    /// A single-use URI for the Market Data Feed v3 (`GET /v3/feed/market-data-feed/authorize`).
    ///
    /// # Errors
    /// 401 for a bad or expired token.
    pub async fn market_feed_authorize(&self) -> Result<String> {
        const PATH: &str = "/v3/feed/market-data-feed/authorize";
        self.get_data::<Authorized>(PATH, &[]).await?.uri(PATH)
    }

    /// A single-use URI for the portfolio stream; `update_types` from `order`, `position`,
    /// `holding`, `gtt_order` (Upstox defaults to `order`).
    ///
    /// # Errors
    /// 401 for a bad or expired token, 400 for an unknown update type.
    pub async fn portfolio_feed_authorize(&self, update_types: &[&str]) -> Result<String> {
        let query = if update_types.is_empty() {
            Vec::new()
        } else {
            q(&[("update_types", &update_types.join(","))])
        };
        const PATH: &str = "/v2/feed/portfolio-stream-feed/authorize";
        self.get_data::<Authorized>(PATH, &query).await?.uri(PATH)
    }
}
