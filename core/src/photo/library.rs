//! Content-addressed photo files: `<root>/<first two hex digits>/<sha256>.jpg`.
//!
//! Files are only ever created whole (temp file, fsync, rename, fsync of the
//! folder), so after a crash a file either has its full content or does not
//! exist; leftover temp files are removed by [`PhotoLibrary::collect_garbage`].

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

const TEMP_PREFIX: &str = ".tmp-";
const EXTENSION: &str = "jpg";

/// Whether `s` is a SHA-256 digest in lowercase hex, the only names the
/// library turns into paths.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn invalid(sha256: &str) -> io::Error {
    // Say how long the name was, not what it was.
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "not a SHA-256 hex digest (a name of {} bytes)",
            sha256.len()
        ),
    )
}

/// Content-addressed photo files under a folder.
#[derive(Debug)]
pub struct PhotoLibrary {
    root: PathBuf,
    counter: AtomicU64,
}

impl PhotoLibrary {
    /// Opens (creating if needed) the library folder.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(PhotoLibrary {
            root,
            counter: AtomicU64::new(0),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the file with this digest lives, e.g. `root/ab/abcdef….jpg`.
    ///
    /// A name that is not 64 lowercase hex digits never becomes part of a path:
    /// it maps to `root/invalid.jpg`, which the library never writes.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        if !is_sha256_hex(sha256) {
            tracing::warn!(len = sha256.len(), "photo path asked for an invalid digest");
            return self.root.join(format!("invalid.{EXTENSION}"));
        }
        self.root
            .join(&sha256[..2])
            .join(format!("{sha256}.{EXTENSION}"))
    }

    /// Stores `bytes` under `sha256`, which must be their digest. Atomic, and a
    /// no-op when the file already exists with that content.
    pub fn write(&self, sha256: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        if !is_sha256_hex(sha256) {
            return Err(invalid(sha256));
        }
        if sha256_hex(bytes) != sha256 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the bytes do not have the digest they are stored under",
            ));
        }
        let path = self.path_of(sha256);
        if let Ok(existing) = fs::read(&path) {
            if existing == bytes {
                return Ok(path);
            }
            tracing::warn!("photo file had the wrong content; rewriting it");
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir)?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(
            "{TEMP_PREFIX}{}-{}-{n}",
            &sha256[..16],
            std::process::id()
        ));
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            crate::durability::note(crate::durability::FsEvent::Synced(&tmp));
            drop(f);
            fs::rename(&tmp, &path)?;
            crate::durability::note(crate::durability::FsEvent::Renamed {
                from: &tmp,
                to: &path,
            });
            sync_dir(&dir)?;
            crate::durability::note(crate::durability::FsEvent::DirSynced(&dir));
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|_| path)
    }

    /// Whether the file for this digest exists.
    pub fn contains(&self, sha256: &str) -> bool {
        is_sha256_hex(sha256) && self.path_of(sha256).is_file()
    }

    /// Removes every file in the library's sub-folders that is not a kept
    /// digest's file, including temp files a crash left behind. Returns how many
    /// files were removed. Must not run while a [`write`](Self::write) is in
    /// progress (it would take the temp file away).
    pub fn collect_garbage(&self, keep: &HashSet<String>) -> io::Result<usize> {
        let mut removed = 0;
        for shard in fs::read_dir(&self.root)? {
            let shard = shard?;
            let name = shard.file_name();
            let name = name.to_string_lossy();
            let kind = shard.file_type()?;
            if kind.is_file() && name.starts_with(TEMP_PREFIX) {
                fs::remove_file(shard.path())?;
                removed += 1;
                continue;
            }
            let is_shard = name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit());
            if !kind.is_dir() || !is_shard {
                continue;
            }
            for entry in fs::read_dir(shard.path())? {
                let entry = entry?;
                if !entry.file_type()?.is_file() {
                    continue;
                }
                let file = entry.file_name();
                let file = file.to_string_lossy();
                let kept = file
                    .strip_suffix(&format!(".{EXTENSION}"))
                    .is_some_and(|sha| {
                        is_sha256_hex(sha) && sha.starts_with(&*name) && keep.contains(sha)
                    });
                if !kept {
                    fs::remove_file(entry.path())?;
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            tracing::debug!(removed, "photo garbage collected");
        }
        Ok(removed)
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let lib = PhotoLibrary::open(dir.path().join("photos")).unwrap();
        let bytes = b"not really a jpeg".to_vec();
        let sha = sha256_hex(&bytes);
        assert!(!lib.contains(&sha));
        let p = lib.write(&sha, &bytes).unwrap();
        assert_eq!(p, lib.path_of(&sha));
        assert!(p.starts_with(dir.path().join("photos").join(&sha[..2])));
        assert_eq!(fs::read(&p).unwrap(), bytes);
        assert!(lib.contains(&sha));
        // Again: same path, no temp files left over.
        assert_eq!(lib.write(&sha, &bytes).unwrap(), p);
        let names: Vec<_> = fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
        // A damaged file is rewritten.
        fs::write(&p, b"damaged").unwrap();
        lib.write(&sha, &bytes).unwrap();
        assert_eq!(fs::read(&p).unwrap(), bytes);
    }

    #[test]
    fn refuses_bad_names_and_wrong_digests() {
        let dir = tempfile::tempdir().unwrap();
        let lib = PhotoLibrary::open(dir.path()).unwrap();
        for bad in [
            "",
            "../../etc/passwd",
            &"A".repeat(64),
            &"a".repeat(63),
            &format!("{}/", "a".repeat(63)),
        ] {
            assert_eq!(
                lib.write(bad, b"x").unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
            assert!(!lib.contains(bad));
            assert_eq!(lib.path_of(bad), dir.path().join("invalid.jpg"));
        }
        let err = lib.write(&sha256_hex(b"one"), b"two").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn garbage_collection_keeps_only_referenced_files() {
        let dir = tempfile::tempdir().unwrap();
        let lib = PhotoLibrary::open(dir.path()).unwrap();
        let (a, b) = (b"photo a".to_vec(), b"photo b".to_vec());
        let (sa, sb) = (sha256_hex(&a), sha256_hex(&b));
        lib.write(&sa, &a).unwrap();
        lib.write(&sb, &b).unwrap();
        // A crash between create and rename leaves a temp file.
        let shard = lib.path_of(&sa).parent().unwrap().to_path_buf();
        fs::write(shard.join(".tmp-deadbeef-1-0"), b"half").unwrap();
        fs::write(dir.path().join(".tmp-stray"), b"half").unwrap();
        let keep: HashSet<String> = [sa.clone()].into_iter().collect();
        assert_eq!(lib.collect_garbage(&keep).unwrap(), 3);
        assert!(lib.contains(&sa));
        assert!(!lib.contains(&sb));
        assert_eq!(lib.collect_garbage(&keep).unwrap(), 0);
    }
}
