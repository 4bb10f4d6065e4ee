//! What the photo stores do to the disk, told to a watcher: the tests'
//! power-loss layer (`tests/src/power_loss.rs`) keeps track of which data and
//! which names an fsync has made durable, and at a simulated power cut
//! forgets the rest, as a disk's cache would. Debug builds only (the ones the
//! tests run); in a release build [`note`] is empty.

use std::path::Path;

/// One step that matters for durability.
#[derive(Debug, Clone, Copy)]
pub enum FsEvent<'a> {
    /// The file's content is synced (`fsync` / `fdatasync`).
    Synced(&'a Path),
    /// The file got a new name; durable once its folder is synced.
    Renamed { from: &'a Path, to: &'a Path },
    /// The folder is synced: the names in it are durable.
    DirSynced(&'a Path),
}

type Watcher = Box<dyn Fn(&FsEvent<'_>) + Send + Sync>;

#[cfg(debug_assertions)]
static WATCHER: std::sync::RwLock<Option<Watcher>> = std::sync::RwLock::new(None);

/// Installs (or with `None` removes) the process's watcher. Debug builds
/// only; a release build ignores it.
pub fn watch(watcher: Option<Watcher>) {
    #[cfg(debug_assertions)]
    {
        *WATCHER.write().unwrap_or_else(|e| e.into_inner()) = watcher;
    }
    #[cfg(not(debug_assertions))]
    let _ = watcher;
}

/// Tells the watcher, if there is one, that `event` just happened.
#[inline]
pub fn note(event: FsEvent<'_>) {
    #[cfg(debug_assertions)]
    if let Some(w) = WATCHER.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        w(&event);
    }
    #[cfg(not(debug_assertions))]
    let _ = event;
}
