//! Backups of the data folder, and restoring one.
//!
//! A backup is a consistent copy of the database taken while the server runs
//! (`VACUUM INTO` reads one snapshot) plus the photo files. Restoring puts it
//! back with the server stopped, and gives the restored database a new history
//! id: terminals synced past the backup then notice that their cursors belong
//! to a future the server lost, and start over (see
//! [`gridcase_core::protocol`]). A database copied back by hand keeps its old
//! id; the server then only catches terminals whose cursor is past its last
//! number, which is why restores go through [`restore`].

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::database_path;

const LOCK_FILE: &str = "server.lock";

/// Held while a server or a restore uses the data folder, so a restore cannot
/// replace the database under a running server. The OS drops the lock when the
/// process ends, however it ends.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

pub fn lock_data_dir(data_dir: &Path) -> anyhow::Result<DataDirLock> {
    let path = data_dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(DataDirLock { _file: file }),
        Err(TryLockError::WouldBlock) => bail!(
            "another gridcase-server process uses {} (stop the server first)",
            data_dir.display()
        ),
        Err(TryLockError::Error(e)) => Err(e).context("locking the data folder"),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupSummary {
    pub database: PathBuf,
    pub database_bytes: u64,
    pub photo_files_copied: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreSummary {
    pub history_id: String,
    pub ops: u64,
    pub photo_files_copied: u64,
}

/// Copies the database (one consistent snapshot, while the server runs) and
/// the photo files into the folder `to`, which must not hold a database yet.
pub fn backup(data_dir: &Path, to: &Path) -> anyhow::Result<BackupSummary> {
    let target = database_path(to);
    if target.exists() {
        bail!("{} already holds a backup", to.display());
    }
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let conn = crate::db::open_migrated(&database_path(data_dir))?;
    let target_text = target
        .to_str()
        .context("the backup folder's path is not UTF-8")?;
    conn.execute("VACUUM INTO ?1", [target_text])
        .context("copying the database")?;
    // Photos after the database: every file the snapshot refers to was
    // complete before its op was accepted, so it is there to copy.
    let photo_files_copied = copy_missing_files(&data_dir.join("photos"), &to.join("photos"))?;
    Ok(BackupSummary {
        database_bytes: std::fs::metadata(&target)?.len(),
        database: target,
        photo_files_copied,
    })
}

/// Replaces the data folder's database with the backup in `from` (the server
/// must be stopped), gives it a new history id, and brings back photo files
/// the data folder lacks.
pub fn restore(data_dir: &Path, from: &Path) -> anyhow::Result<RestoreSummary> {
    let source = database_path(from);
    if !source.is_file() {
        bail!(
            "{} holds no backup (no {})",
            from.display(),
            source.display()
        );
    }
    std::fs::create_dir_all(data_dir)?;
    let _lock = lock_data_dir(data_dir)?;
    let staging = data_dir.join("gridcase.db.restoring");
    std::fs::copy(&source, &staging).context("copying the backup")?;
    let (history_id, ops) = {
        // Migrates an older backup too; closing checkpoints its WAL.
        let conn = crate::db::open_migrated(&staging)?;
        let history: String = conn.query_row(
            "UPDATE server_history SET history_id = lower(hex(randomblob(16)))
             WHERE id = 1 RETURNING history_id",
            [],
            |r| r.get(0),
        )?;
        let ops: u64 = conn.query_row("SELECT count(*) FROM ops", [], |r| r.get(0))?;
        (history, ops)
    };
    let live = database_path(data_dir);
    for suffix in ["-wal", "-shm"] {
        let stale = PathBuf::from(format!("{}{suffix}", live.display()));
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", stale.display()))
            }
            _ => {}
        }
    }
    std::fs::rename(&staging, &live).context("putting the restored database in place")?;
    let photo_files_copied = copy_missing_files(&from.join("photos"), &data_dir.join("photos"))?;
    tracing::info!(%history_id, ops, "database restored from a backup");
    Ok(RestoreSummary {
        history_id,
        ops,
        photo_files_copied,
    })
}

/// Copies the files under `from` that `to` lacks (photo files are named by
/// their hash, so a file of the same name is the same file).
fn copy_missing_files(from: &Path, to: &Path) -> anyhow::Result<u64> {
    if !from.is_dir() {
        return Ok(0);
    }
    std::fs::create_dir_all(to)?;
    let mut copied = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copied += copy_missing_files(&entry.path(), &target)?;
        } else if kind.is_file() && !target.exists() {
            let partial = to.join(format!(".{}.copying", entry.file_name().to_string_lossy()));
            std::fs::copy(entry.path(), &partial)?;
            std::fs::rename(&partial, &target)?;
            copied += 1;
        }
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_waits_for_the_server_to_stop_and_changes_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let saved = dir.path().join("backup");
        std::fs::create_dir_all(data.join("photos/ab")).unwrap();
        std::fs::write(data.join("photos/ab/abcd"), b"photo").unwrap();
        let history = |d: &Path| -> String {
            crate::db::open_migrated(&database_path(d))
                .unwrap()
                .query_row("SELECT history_id FROM server_history", [], |r| r.get(0))
                .unwrap()
        };
        let before = history(&data);
        let b = backup(&data, &saved).unwrap();
        assert_eq!(b.photo_files_copied, 1);
        assert!(
            backup(&data, &saved).is_err(),
            "a backup is never overwritten"
        );

        let running = lock_data_dir(&data).unwrap();
        let refused = restore(&data, &saved).unwrap_err().to_string();
        assert!(refused.contains("stop the server"), "{refused}");
        drop(running);

        std::fs::remove_file(data.join("photos/ab/abcd")).unwrap();
        let r = restore(&data, &saved).unwrap();
        assert_eq!(r.photo_files_copied, 1);
        assert!(data.join("photos/ab/abcd").is_file());
        assert_ne!(r.history_id, before);
        assert_eq!(history(&data), r.history_id);
        assert!(restore(&data, &dir.path().join("nothing")).is_err());
    }
}
