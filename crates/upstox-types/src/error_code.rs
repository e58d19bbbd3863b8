//! Upstox error codes (api-facts §7, §4.12) used by both the simulator and the client.

/// Rate limit exceeded (HTTP 429).
pub const RATE_LIMITED: &str = "UDAPI10005";
/// Request not supported: unknown path.
pub const NOT_SUPPORTED: &str = "UDAPI10000";
/// Invalid, expired or revoked token (HTTP 401).
pub const INVALID_TOKEN: &str = "UDAPI100050";
/// API not permitted with an extended token.
pub const EXTENDED_TOKEN_NOT_PERMITTED: &str = "UDAPI100067";
/// Wrong client_id / redirect_uri on the authorization dialog.
pub const BAD_CLIENT_OR_REDIRECT: &str = "UDAPI100068";
/// Invalid client credentials on token exchange.
pub const INVALID_CLIENT_CREDENTIALS: &str = "UDAPI100069";
/// Invalid redirect_uri on token exchange.
pub const INVALID_REDIRECT_URI: &str = "UDAPI100070";
/// Invalid (unknown or used) authorization code.
pub const INVALID_AUTH_CODE: &str = "UDAPI100057";
/// Invalid credentials (generic).
pub const INVALID_CREDENTIALS: &str = "UDAPI100016";
/// Invalid input.
pub const INVALID_INPUT: &str = "UDAPI100038";
/// Something went wrong (HTTP 500).
pub const INTERNAL: &str = "UDAPI100500";
/// Resource not found.
pub const NOT_FOUND: &str = "UDAPI100060";
/// Instrument key required or invalid.
pub const INVALID_INSTRUMENT_KEY: &str = "UDAPI1026";
/// symbol / instrument_key required or invalid on quote APIs.
pub const INVALID_QUOTE_KEY: &str = "UDAPI1087";
/// Valid order type required.
pub const ORDER_TYPE_REQUIRED: &str = "UDAPI1004";
/// Validity required.
pub const VALIDITY_REQUIRED: &str = "UDAPI1007";
/// Quantity cannot be zero.
pub const QUANTITY_ZERO: &str = "UDAPI1052";
/// Invalid validity.
pub const INVALID_VALIDITY: &str = "UDAPI1055";
/// Invalid order type.
pub const INVALID_ORDER_TYPE: &str = "UDAPI1056";
/// Too many orders after slicing.
pub const SLICE_LIMIT: &str = "UDAPI1118";
/// Market protection above 25%.
pub const MARKET_PROTECTION: &str = "UDAPI1159";
/// Order not found.
pub const ORDER_NOT_FOUND: &str = "UDAPI100010";
/// Cancel/modify of an order already in a terminal state.
pub const ORDER_TERMINAL: &str = "UDAPI100040";
/// Order id required.
pub const ORDER_ID_REQUIRED: &str = "UDAPI1023";
/// Order id has characters other than alphanumerics and `-`.
pub const ORDER_ID_CHARS: &str = "UDAPI1010";
/// Funds service in maintenance (HTTP 423).
pub const SERVICE_HOURS: &str = "UDAPI100072";
/// Order APIs outside 05:30–24:00 IST.
pub const ORDER_SERVICE_HOURS: &str = "UDAPI100074";
/// The request came from an address not whitelisted for the app's order APIs.
pub const STATIC_IP_NOT_WHITELISTED: &str = "UDAPI1154";
/// The `X-Algo-Name` header names no algo registered for the app.
pub const INVALID_ALGO_NAME: &str = "UDAPI1156";
