//! Where a streamer gets its token: asked again before every (re)connect, so a token replaced in
//! the vault, a file or the environment is picked up without a restart.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

/// A source of the current access token, kept a secret all the way to the request that uses it.
pub trait TokenSource: Send + Sync + 'static {
    /// The token to connect with now, if any.
    fn token(&self) -> Option<SecretString>;
}

/// A fixed token.
#[derive(Clone)]
pub struct StaticToken(pub SecretString);

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

impl TokenSource for StaticToken {
    fn token(&self) -> Option<SecretString> {
        Some(self.0.clone()).filter(|t| !t.expose_secret().trim().is_empty())
    }
}

/// A token read from a plain file (first line) at every connect.
#[derive(Debug, Clone)]
pub struct FileToken(pub PathBuf);

impl TokenSource for FileToken {
    fn token(&self) -> Option<SecretString> {
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(&self.0).ok()?);
        text.lines()
            .next()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(SecretString::from)
    }
}

impl<F: Fn() -> Option<SecretString> + Send + Sync + 'static> TokenSource for F {
    fn token(&self) -> Option<SecretString> {
        self()
    }
}
