//! Where the store lives: a SQLite file in the data directory (the embedded default), or a
//! PostgreSQL database (`STOXIDE_DATABASE_URL=postgres://…`) that several machines can share.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

/// The environment variable naming a PostgreSQL database.
pub const DATABASE_URL_ENV: &str = "STOXIDE_DATABASE_URL";

/// The SQLite file's name in the data directory.
pub const SQLITE_FILE: &str = "vault.db";

/// Where the store lives. Debug and Display never show a password.
#[derive(Clone)]
pub enum Location {
    /// `<dir>/vault.db`.
    Sqlite { dir: PathBuf },
    /// A PostgreSQL URL (it may carry a password, so it stays secret).
    Postgres { url: SecretString },
}

impl Location {
    /// SQLite in `dir`, unless `database_url` names a PostgreSQL database.
    ///
    /// # Errors
    /// [`Error::BadUrl`] for a URL that is not `postgres://` or `postgresql://`.
    pub fn choose(database_url: Option<&str>, dir: &Path) -> Result<Self> {
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(Self::Sqlite { dir: dir.to_owned() }),
            Some(u) => Self::postgres(u),
        }
    }

    /// A PostgreSQL location.
    ///
    /// # Errors
    /// [`Error::BadUrl`] for anything but a `postgres://` URL.
    pub fn postgres(url: &str) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| {
            Error::BadUrl(format!(
                "{DATABASE_URL_ENV} is not a URL ({e}); write it as postgres://user@host:5432/db"
            ))
        })?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(Error::BadUrl(format!(
                "{DATABASE_URL_ENV} must be a postgres:// URL, not {}://…; leave it unset for the embedded SQLite store",
                parsed.scheme()
            )));
        }
        Ok(Self::Postgres {
            url: SecretString::from(url.to_owned()),
        })
    }

    /// The location for people: the SQLite file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite { dir } => dir.join(SQLITE_FILE).display().to_string(),
            Self::Postgres { url } => redact(url.expose_secret()),
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }
}

/// A URL with its password replaced.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<a database URL>".into(),
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Location({})", self.describe())
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_passwords_never_shown() {
        let dir = Path::new("/data");
        assert_eq!(Location::choose(None, dir).expect("sqlite").backend(), "sqlite");
        assert_eq!(Location::choose(Some("  "), dir).expect("sqlite").backend(), "sqlite");
        let pg = Location::choose(Some("postgres://app:hunter2@127.0.0.1:5432/stoxide"), dir).expect("pg");
        assert_eq!(pg.backend(), "postgres");
        for shown in [pg.describe(), format!("{pg:?}"), pg.to_string()] {
            assert!(!shown.contains("hunter2") && shown.contains("127.0.0.1"), "{shown}");
        }
        let e = Location::choose(Some("mysql://x@y/z"), dir).expect_err("mysql");
        assert!(e.to_string().contains("postgres://"), "{e}");
        let e = Location::choose(Some("not a url"), dir).expect_err("garbage");
        assert!(e.to_string().contains("STOXIDE_DATABASE_URL"), "{e}");
    }
}
