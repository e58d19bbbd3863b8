//! `stoxide-vault`: the one place that holds Upstox access tokens and app secrets.
//!
//! - [`Vault`]: accounts (one per Upstox user), apps (individual or vendor mode) and their tokens
//!   in SQLite through sqlx, migrations embedded (`migrations/sqlite`). Every token and secret is
//!   sealed with XChaCha20-Poly1305 under the vault key, a fresh random nonce per write, and the
//!   row and column bound as associated data ([`cipher`]-level detail, private).
//! - The key ([`key`]): `STOXIDE_VAULT_KEY` (64 hex digits) or `<data dir>/vault.key`, created
//!   on first use with mode 0600; [`Vault::rotate_key`] re-encrypts everything, crash-safe.
//! - [`check`]: asking Upstox (the profile endpoint) whether a stored token works, cached a minute.
//! - [`status`]: a token's state (valid for how long, expired at 03:30 IST, revoked, rejected)
//!   and the next step; the warnings long-running processes give ahead of expiry.
//! - [`watch_token`]: a long-running process's current token, re-read from the vault, with
//!   warnings ahead of 03:30 IST.
//! - [`LoginStates`]: single-use OAuth `state` values; [`token_file`]: plain token files for
//!   import and export.
//!
//! Only this crate sees plaintext tokens; it hands them out as `SecretString`, and nothing here
//! prints one: not `Debug`, not errors, not logs (a test searches the database and the captured
//! logs for the plaintext). The store's SQL is plain SQLite; a PostgreSQL store would keep the
//! same `Vault` API with its own migrations folder.
//!
//! Tests: `cargo test -p stoxide-vault`.

mod account;
pub mod check;
mod cipher;
mod error;
pub mod key;
mod keys;
mod oauth_state;
pub mod status;
pub mod token_file;
mod vault;
mod watch;

pub use account::{Account, AppMode, AppRecord, Check, CheckOutcome, NewApp, NewToken, TokenOrigin};
pub use error::{Error, Result};
pub use key::{KeyId, KeySource, VaultKey};
pub use oauth_state::{LoginStates, PendingLogin, STATE_TTL, StateError};
pub use status::{LoginReason, NextStep, TokenState, TokenStatus, assess};
pub use vault::{KeyReport, Rotation, Vault, VaultConfig, default_data_dir};
pub use watch::{TokenEvent, TokenWatch, watch_token};
