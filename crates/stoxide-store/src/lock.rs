//! Process locks on files of a data directory: an OS file lock (`flock`) on `<dir>/<name>`,
//! shared or exclusive. The store's SQLite backend holds `vault.db.lock` exclusively to create,
//! adopt or migrate the database; the vault holds `vault.lock` around its key files (shared to
//! read them, exclusive to rotate or recover). The lock is advisory and per open file
//! description, so it also separates handles within one process; it is released when the guard
//! is dropped, and by the OS if the process dies. Two locks are never nested.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// How long to wait for another process before giving up: a rotation re-seals every secret in
/// one transaction, seconds even for thousands of accounts.
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(10);

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

/// Shared or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

fn open_lock_file(path: &Path) -> Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .map_err(|e| Error::io("cannot open the lock file", path, e))
}

/// Takes the lock `<dir>/<name>`, waiting (without blocking the runtime) while another holder
/// has it in a conflicting mode.
///
/// Cancel safety: dropping the future before it resolves takes no lock.
///
/// # Errors
/// [`Error::Locked`] after a minute of waiting; filesystem errors.
pub async fn lock(dir: &Path, name: &str, mode: Mode) -> Result<LockGuard> {
    let path: PathBuf = dir.join(name);
    let file = open_lock_file(&path)?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let tried = match mode {
            Mode::Shared => file.try_lock_shared(),
            Mode::Exclusive => file.try_lock(),
        };
        match tried {
            Ok(()) => return Ok(LockGuard { _file: file }),
            Err(TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(POLL).await;
            }
            Err(TryLockError::WouldBlock) => return Err(Error::Locked { path, waited: WAIT }),
            Err(TryLockError::Error(e)) => return Err(Error::io("cannot lock", &path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shared_holders_coexist_and_exclusive_waits_for_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = lock(dir.path(), "t.lock", Mode::Shared).await.expect("shared");
        let b = lock(dir.path(), "t.lock", Mode::Shared).await.expect("second shared");
        let path = dir.path().to_owned();
        let exclusive = tokio::spawn(async move { lock(&path, "t.lock", Mode::Exclusive).await.map(drop) });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!exclusive.is_finished(), "exclusive must wait for the shared holders");
        drop(a);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!exclusive.is_finished(), "one shared holder is left");
        drop(b);
        exclusive.await.expect("join").expect("exclusive after both left");
        // Another name is another lock.
        let _x = lock(dir.path(), "t.lock", Mode::Exclusive).await.expect("exclusive");
        let _y = lock(dir.path(), "u.lock", Mode::Exclusive).await.expect("other name");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_lock_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        drop(lock(dir.path(), "t.lock", Mode::Exclusive).await.expect("lock"));
        let mode = std::fs::metadata(dir.path().join("t.lock"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}
