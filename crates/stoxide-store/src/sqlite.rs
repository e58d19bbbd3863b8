//! The SQLite backend: one file in the data directory (WAL, mode 0600, the directory 0700),
//! told apart from other programs' databases by its application id, created whole and renamed
//! into place, adopted (and migrated) only under the exclusive `vault.db.lock`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::error::{Error, Result};
use crate::location::SQLITE_FILE;
use crate::lock::{self, Mode};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The lock held exclusively while the database file is created, adopted or migrated.
const DB_LOCK: &str = "vault.db.lock";
/// A database being created, until it is complete and renamed to `vault.db`.
const NEW_DB_FILE: &str = "vault.db.new";
/// SQLite's application id in every vault's header ("STXV").
const APPLICATION_ID: u32 = 0x5354_5856;
const APPLICATION_ID_PRAGMA: &str = "PRAGMA application_id = 1398036566";

/// What the database file's header says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    /// Marked with our application id.
    Ours,
    /// No application id, in WAL mode: possibly a vault made before the id was set; its tables
    /// decide.
    Legacy,
}

/// Opens (or, with `create`, makes) the database in `dir`; `None` when there is none and
/// `create` is false. Reads take the shared lock; anything that writes the file's structure
/// takes the exclusive one and looks again.
pub(crate) async fn open(dir: &Path, create: bool) -> Result<Option<SqlitePool>> {
    let db = dir.join(SQLITE_FILE);
    if !db.exists() {
        if !create {
            return Ok(None);
        }
        create_private_dir(dir)?;
    }
    let mut mode = Mode::Shared;
    loop {
        let guard = lock::lock(dir, DB_LOCK, mode).await?;
        let opened = try_open(dir, &db, create, mode == Mode::Exclusive).await?;
        drop(guard);
        match opened {
            Opened::Pool(p) => return Ok(Some(p)),
            Opened::Absent => return Ok(None),
            Opened::NeedsWrite => mode = Mode::Exclusive,
        }
    }
}

enum Opened {
    Pool(SqlitePool),
    Absent,
    NeedsWrite,
}

async fn try_open(dir: &Path, db: &Path, create: bool, may_write: bool) -> Result<Opened> {
    if !db.exists() {
        if !create {
            return Ok(Opened::Absent);
        }
        if !may_write {
            return Ok(Opened::NeedsWrite);
        }
        create_database(dir, db).await?;
    }
    let identity = identify(db)?;
    if identity == Identity::Legacy && !may_write {
        return Ok(Opened::NeedsWrite);
    }
    make_private(db)?;
    let pool = connect(db).await?;
    let ready = async {
        if identity == Identity::Legacy {
            adopt_legacy(&pool, db).await?;
        }
        if migrations_pending(&pool).await? {
            if !may_write {
                return Ok(false);
            }
            migrate(&pool, db).await?;
        }
        Ok::<_, Error>(true)
    }
    .await;
    match ready {
        Ok(true) => Ok(Opened::Pool(pool)),
        Ok(false) => {
            pool.close().await;
            Ok(Opened::NeedsWrite)
        }
        Err(e) => {
            pool.close().await;
            Err(e)
        }
    }
}

pub(crate) fn is_corruption(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("26" | "11")),
        _ => false,
    }
}

pub(crate) fn corrupt_or(db: &Path, e: sqlx::Error) -> Error {
    if is_corruption(&e) {
        Error::Corrupt {
            path: db.to_owned(),
            detail: e.to_string(),
        }
    } else {
        Error::Database(e)
    }
}

/// Reads the 100-byte SQLite header and refuses a file that is not a vault: empty, not SQLite,
/// or a SQLite database of another program. Nothing is written.
fn identify(db: &Path) -> Result<Identity> {
    use std::io::Read;
    let not_ours = |detail: String| Error::NotAVault {
        path: db.to_owned(),
        detail,
    };
    let mut head = Vec::with_capacity(100);
    std::fs::File::open(db)
        .and_then(|f| f.take(100).read_to_end(&mut head))
        .map_err(|e| Error::io("cannot read the vault", db, e))?;
    if head.is_empty() {
        return Err(not_ours("it is an empty file".into()));
    }
    if head.len() < 100 || !head.starts_with(b"SQLite format 3\0") {
        return Err(Error::Corrupt {
            path: db.to_owned(),
            detail: "it does not start with the SQLite header".into(),
        });
    }
    let app_id = u32::from_be_bytes([head[68], head[69], head[70], head[71]]);
    // Bytes 18 and 19 are the read and write format versions: 2 for WAL, which every vault uses.
    let wal = head[18] == 2 && head[19] == 2;
    match app_id {
        APPLICATION_ID => Ok(Identity::Ours),
        0 if wal => Ok(Identity::Legacy),
        0 => Err(not_ours("it is a SQLite database that stoxide did not create".into())),
        other => Err(not_ours(format!(
            "it is a SQLite database of another program (application id {other:#010x})"
        ))),
    }
}

/// Vault files are the owner's alone: a database adopted with a wider mode is narrowed, with
/// its WAL and shared-memory files.
fn make_private(db: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            let path = PathBuf::from(name);
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| Error::io("cannot make the vault private (chmod 600)", &path, e))?;
                tracing::warn!(path = %path.display(), "the vault file was readable by others; it is mode 0600 now");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}

async fn connect(db: &Path) -> Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str("sqlite:")
        .map_err(Error::Database)?
        .filename(db)
        .create_if_missing(false)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(5))
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(|e| corrupt_or(db, e))
}

/// Creates a new database beside its final name and renames it into place once it is complete,
/// so `vault.db` is never an empty or half-made file. Called under the exclusive lock.
async fn create_database(dir: &Path, db: &Path) -> Result<()> {
    let tmp = dir.join(NEW_DB_FILE);
    for stale in [NEW_DB_FILE, "vault.db.new-wal", "vault.db.new-shm"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    create_private_file(&tmp)?;
    let pool = connect(&tmp).await?;
    let made = async {
        sqlx::query(APPLICATION_ID_PRAGMA).execute(&pool).await?;
        migrate(&pool, &tmp).await
    }
    .await;
    // Closing the last connection checkpoints the WAL into the file before the rename.
    pool.close().await;
    made?;
    std::fs::rename(&tmp, db).map_err(|e| Error::io("cannot move the new vault into place", db, e))?;
    sync_dir(dir).map_err(|e| Error::io("cannot sync", dir, e))
}

/// A vault made before the application id existed has our tables; anything else with no
/// application id is another program's database. Called under the exclusive lock.
async fn adopt_legacy(pool: &SqlitePool, db: &Path) -> Result<()> {
    let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .fetch_all(pool)
        .await
        .map_err(|e| corrupt_or(db, e))?;
    let has = |t: &str| tables.iter().any(|n| n == t);
    let ours = has("_sqlx_migrations") && has("vault_meta") && has("accounts") && has("apps");
    if !ours {
        let shown: Vec<&str> = tables.iter().map(String::as_str).take(8).collect();
        return Err(Error::NotAVault {
            path: db.to_owned(),
            detail: if shown.is_empty() {
                "it is a SQLite database with no tables, not one stoxide created".into()
            } else {
                format!(
                    "it is a SQLite database of another program (tables: {})",
                    shown.join(", ")
                )
            },
        });
    }
    sqlx::query(APPLICATION_ID_PRAGMA).execute(pool).await?;
    tracing::info!(db = %db.display(), "marked a vault made by an earlier version with stoxide's application id");
    Ok(())
}

async fn migrations_pending(pool: &SqlitePool) -> Result<bool> {
    let applied: Vec<i64> = match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
        .fetch_all(pool)
        .await
    {
        Ok(v) => v,
        // No table yet: nothing is applied.
        Err(sqlx::Error::Database(d)) if d.message().contains("no such table") => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    Ok(MIGRATOR.iter().any(|m| !applied.contains(&m.version)))
}

async fn migrate(pool: &SqlitePool, db: &Path) -> Result<()> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(inner) if is_corruption(&inner) => Error::Corrupt {
            path: db.to_owned(),
            detail: inner.to_string(),
        },
        other => Error::Migrate(other),
    })
}

/// Makes a rename durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates `dir` (and its parents) with mode 0700 if it does not exist.
///
/// # Errors
/// Filesystem errors.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| Error::io("cannot create the data directory", dir, e))
}

fn create_private_file(path: &Path) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .map(drop)
        .map_err(|e| Error::io("cannot create the vault", path, e))
}
