//! The vault's process lock: an OS file lock on `<data dir>/vault.lock` that serialises what
//! touches the key files. Opening (which may finish or discard an interrupted rotation) and
//! re-reading the key hold it shared; a rotation, a recovery and the creation of a vault hold it
//! exclusively. So a reader never deletes the `vault.key.next` that a live rotation is writing,
//! and two rotations never interleave. The lock is advisory and per open file description
//! (`flock`), so it also separates handles within one process; it is released when the guard is
//! dropped, and by the OS if the process dies.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

const LOCK_FILE: &str = "vault.lock";

/// How long to wait for another process's rotation before giving up. A rotation re-seals every
/// secret in one transaction: seconds even for thousands of accounts.
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(10);

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct LockGuard {
    _file: File,
}

/// Shared or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Shared,
    Exclusive,
}

fn lock_path(dir: &Path) -> PathBuf {
    dir.join(LOCK_FILE)
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
        .map_err(|e| Error::io("cannot open the vault lock", path, e))
}

/// Takes the lock on the vault in `dir`, waiting (without blocking the runtime) while another
/// holder has it in a conflicting mode.
///
/// Cancel safety: dropping the future before it resolves takes no lock.
///
/// # Errors
/// [`Error::Locked`] after a minute of waiting; filesystem errors.
pub(crate) async fn lock(dir: &Path, mode: Mode) -> Result<LockGuard> {
    let path = lock_path(dir);
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
            Err(TryLockError::Error(e)) => return Err(Error::io("cannot lock the vault", &path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shared_holders_coexist_and_exclusive_waits_for_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = lock(dir.path(), Mode::Shared).await.expect("shared");
        let b = lock(dir.path(), Mode::Shared).await.expect("second shared");
        let path = dir.path().to_owned();
        let exclusive = tokio::spawn(async move { lock(&path, Mode::Exclusive).await.map(drop) });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!exclusive.is_finished(), "exclusive must wait for the shared holders");
        drop(a);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!exclusive.is_finished(), "one shared holder is left");
        drop(b);
        exclusive.await.expect("join").expect("exclusive after both left");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_lock_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        drop(lock(dir.path(), Mode::Exclusive).await.expect("lock"));
        let mode = std::fs::metadata(lock_path(dir.path()))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}
