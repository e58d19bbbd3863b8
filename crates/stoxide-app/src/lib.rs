//! `stoxide-app`: the application's use cases, written once and driven by every front end —
//! the command line and the dashboard today, the engine and the portal next.
//!
//! - [`clients::Clients`]: one client per base URL for the process, all spending one rate
//!   limiter (a budget per user and API category) and reporting to one observer.
//! - [`accounts`]: which account to act for.
//! - [`tokens::status`]: a token's status, with a typed [`stoxide_vault::NextStep`].
//! - [`linking`]: the app to link with, the OAuth dialog and its callback, the v3 token
//!   request's delivery (believed only when Upstox accepts the token for its user).
//! - [`doctor`]: the checklist, with typed steps and fixes.
//! - [`stream`]: streams fed from the vault handle, and their health as a value.
//!
//! Nothing here returns words meant for one front end: errors say what went wrong, next steps
//! and fixes are enums, and each front end renders them (a command for the CLI, a button for the
//! dashboard).
//!
//! Tests: `cargo test -p stoxide-app` (against an in-process simulator).

pub mod accounts;
pub mod clients;
pub mod doctor;
mod error;
pub mod linking;
pub mod stream;
pub mod tokens;

pub use error::{Error, Result};
