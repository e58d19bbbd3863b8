//! Plain token files, the `.upstox_token` habit: read for `stoxide token import`, written for
//! `stoxide token export`. A file holds either the bare token on its first line or a JSON object
//! with `access_token` (and optionally `user_id`, `issued_at`, `expires_at` in epoch ms, as the
//! v3 token-request webhook delivers them).

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// What a token file held. Debug hides the token.
pub struct TokenFile {
    pub access_token: SecretString,
    pub user_id: Option<String>,
    pub issued_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFile")
            .field("access_token", &"<redacted>")
            .field("user_id", &self.user_id)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The largest token file read: a bare token or a token-request webhook's JSON is a few KB.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// The longest token accepted. Upstox's JWTs are well under 2 KB; a longer "token" would make
/// every call's `Authorization` header too large for the server (HTTP 431).
pub const MAX_TOKEN_LEN: usize = 4096;

fn bad(path: &Path, problem: impl Into<String>) -> Error {
    Error::BadTokenFile {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

fn epoch_ms(v: Option<&serde_json::Value>) -> Option<DateTime<Utc>> {
    let ms = match v? {
        serde_json::Value::String(s) => s.parse::<i64>().ok()?,
        serde_json::Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    Utc.timestamp_millis_opt(ms).single()
}

/// Checks a token's shape: printable, no spaces, and — for a JWT, as Upstox issues — three
/// base64url parts (a cut-off copy fails here, not at the first API call).
fn check_shape(path: &Path, token: &str) -> Result<()> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(bad(
            path,
            format!(
                "the token is {} characters long, longer than any Upstox token ({MAX_TOKEN_LEN} at most): this is not a token file",
                token.len()
            ),
        ));
    }
    if token.len() < 16 {
        return Err(bad(
            path,
            "the token is too short to be an access token: the file looks truncated",
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(path, "the token contains spaces or non-printable characters"));
    }
    if token.starts_with("eyJ") {
        let parts: Vec<&str> = token.split('.').collect();
        let b64url = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if parts.len() != 3 || !parts.iter().all(|p| b64url(p)) {
            return Err(bad(
                path,
                "the token is not a complete JWT (three base64url parts): the file looks truncated",
            ));
        }
    }
    Ok(())
}

/// Reads at most [`MAX_FILE_BYTES`] of a file, refusing a longer one without reading it all.
fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::io("cannot read the token file", path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("cannot read the token file", path, e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(bad(
            path,
            format!(
                "is larger than {} KB: a token file holds one token",
                MAX_FILE_BYTES / 1024
            ),
        ));
    }
    Ok(bytes)
}

/// Reads a token file.
///
/// # Errors
/// [`Error::BadTokenFile`] with what is wrong (empty, truncated, malformed JSON); never the token.
pub fn read_token_file(path: &Path) -> Result<TokenFile> {
    let bytes = Zeroizing::new(read_bounded(path)?);
    let text = std::str::from_utf8(&bytes).map_err(|_| bad(path, "is not UTF-8 text"))?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad(path, "is empty: it holds no token"));
    }
    if trimmed.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(trimmed).map_err(|e| {
            bad(
                path,
                format!(
                    "is not valid JSON (line {}, column {}): the file looks truncated",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let token = v
            .get("access_token")
            .and_then(|t| t.as_str())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad(path, "has no \"access_token\" field"))?;
        check_shape(path, token)?;
        return Ok(TokenFile {
            access_token: SecretString::from(token.to_owned()),
            user_id: v.get("user_id").and_then(|u| u.as_str()).map(str::to_owned),
            issued_at: epoch_ms(v.get("issued_at")),
            expires_at: epoch_ms(v.get("expires_at")),
        });
    }
    let first = trimmed.lines().next().unwrap_or("").trim();
    check_shape(path, first)?;
    Ok(TokenFile {
        access_token: SecretString::from(first.to_owned()),
        user_id: None,
        issued_at: None,
        expires_at: None,
    })
}

/// Writes the bare token to `path` with mode 0600, atomically; refuses to replace a file.
///
/// # Errors
/// An existing file, filesystem errors.
pub fn write_token_file(path: &Path, token: &SecretString) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            bad(path, "already exists; choose another --out or remove it first")
        } else {
            Error::io("cannot create the token file", path, e)
        }
    })?;
    f.write_all(token.expose_secret().as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("cannot write the token file", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(content: &str) -> Result<TokenFile> {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join(".upstox_token");
        std::fs::write(&p, content).expect("write");
        read_token_file(&p)
    }

    #[test]
    fn formats_and_refusals() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJBQkMxMjMifQ.c2lnbmF0dXJlLWJ5dGVz";
        let t = read(&format!("{jwt}\n")).expect("bare");
        assert_eq!(t.access_token.expose_secret(), jwt);
        let t = read(&format!(
            r#"{{"access_token":"{jwt}","user_id":"AB1234","issued_at":"1731412800000","expires_at":"1731448800000"}}"#
        ))
        .expect("json");
        assert_eq!(t.user_id.as_deref(), Some("AB1234"));
        assert_eq!(t.expires_at.map(|e| e.timestamp_millis()), Some(1_731_448_800_000));

        for (content, expect) in [
            ("", "is empty"),
            ("  \n", "is empty"),
            (&jwt[..40], "not a complete JWT"),
            (r#"{"access_token":"eyJhbGciOiJIUzI1"#, "not valid JSON"),
            (r#"{"user_id":"x"}"#, "no \"access_token\""),
            ("short", "too short"),
        ] {
            let e = read(content).expect_err(content);
            assert!(e.to_string().contains(expect), "{content:?}: {e}");
            assert!(!e.to_string().contains("eyJhbGciOiJIUzI1"), "the token leaked: {e}");
        }
    }

    #[test]
    fn huge_files_and_tokens_are_refused() {
        // 10 MB of token characters: refused before it is read whole, never stored.
        let e = read(&"A".repeat(10 << 20)).expect_err("10 MB");
        assert!(e.to_string().contains("larger than 64 KB"), "{e}");
        let e = read(&format!("{}\n", "b".repeat(MAX_TOKEN_LEN + 1))).expect_err("long token");
        assert!(e.to_string().contains("longer than any Upstox token"), "{e}");
        assert!(e.to_string().len() < 300, "the token is not echoed");
        let e =
            read(&format!(r#"{{"access_token":"{}"}}"#, "c".repeat(MAX_TOKEN_LEN * 2))).expect_err("long json token");
        assert!(e.to_string().contains("longer than any Upstox token"), "{e}");
        assert!(
            read(&"d".repeat(MAX_TOKEN_LEN)).is_ok(),
            "the longest allowed token reads"
        );
    }
}
