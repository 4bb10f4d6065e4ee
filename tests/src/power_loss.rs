//! A dead battery, simulated: a storage layer that remembers what an fsync
//! has made durable and, at [`cut_power`], forgets everything else, as a
//! disk's volatile cache would. SIGKILL keeps the page cache, so it cannot
//! tell a missing fsync from a present one; this can.
//!
//! - **SQLite** (the terminal's store and the server's database, when they run
//!   in this process): an SQLite VFS wrapping the default `unix` one, made the
//!   process's default. Each file's content as of its last `xSync` is its
//!   durable image; at the cut every file is put back to its image (a file
//!   never synced since it was made comes back empty), and the connections
//!   still open write nothing more.
//! - **Photo files** (the terminal's photo library, the server's uploads):
//!   told by the stores through `gridcase_core::durability`. A file's content
//!   is durable once synced; a rename is durable once its folder is synced.
//!   At the cut, an unsynced file comes back empty and an unsynced rename is
//!   undone (the file is gone from its new name).
//!
//! [`Skip`] turns one kind of fsync into a no-op for the model (the call
//! happens, the layer acts as if it had not), to prove that the tests built
//! on this layer fail when any fsync is missing.
//!
//! The state is the process's: use it from one test at a time ([`lock`]).

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use rusqlite::ffi;

/// An fsync the model pretends was never made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Every fsync: a plain model of the disk.
    Nothing,
    /// SQLite's `xSync` (as if `synchronous=OFF`).
    SqliteSync,
    /// A photo file's content sync.
    PhotoFileSync,
    /// A photo folder's sync after a rename.
    PhotoDirSync,
}

#[derive(Default)]
struct PhotoFile {
    /// Content as of its last sync (`None`: never synced).
    content: Option<Vec<u8>>,
    /// Whether its current name is durable.
    name_durable: bool,
}

struct State {
    installed: bool,
    crashed: bool,
    skip: Skip,
    /// SQLite files touched since power came on: their durable images
    /// (`None`: made since, never synced).
    sqlite: BTreeMap<String, Option<Vec<u8>>>,
    /// Photo files touched since power came on, by current name.
    photos: BTreeMap<PathBuf, PhotoFile>,
}

static STATE: Mutex<State> = Mutex::new(State {
    installed: false,
    crashed: false,
    skip: Skip::Nothing,
    sqlite: BTreeMap::new(),
    photos: BTreeMap::new(),
});

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// One test at a time may use the layer.
pub fn lock() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs the layer (once per process: the VFS becomes SQLite's default,
/// the photo stores' watcher is set) and turns the power on with `skip`.
/// Call before opening any database that should run on it.
pub fn power_on(skip: Skip) {
    install();
    let mut s = state();
    s.crashed = false;
    s.skip = skip;
    s.sqlite.clear();
    s.photos.clear();
}

/// The power cut: every file goes back to what was durable, and open
/// connections write nothing more. Drop everything that holds the
/// databases open, then [`power_on`] again before reopening.
pub fn cut_power() {
    let mut s = state();
    s.crashed = true;
    for (path, image) in s.sqlite.iter() {
        match image {
            Some(bytes) => {
                let _ = std::fs::write(path, bytes);
            }
            None => {
                if Path::new(path).exists() {
                    let _ = std::fs::write(path, b"");
                }
            }
        }
    }
    for (path, f) in s.photos.iter() {
        if !f.name_durable {
            let _ = std::fs::remove_file(path);
            continue;
        }
        let _ = std::fs::write(path, f.content.as_deref().unwrap_or_default());
    }
}

fn install() {
    let mut s = state();
    if s.installed {
        return;
    }
    s.installed = true;
    drop(s);
    register_vfs();
    gridcase_core::durability::watch(Some(Box::new(photo_event)));
}

fn photo_event(e: &gridcase_core::durability::FsEvent<'_>) {
    use gridcase_core::durability::FsEvent;
    let mut s = state();
    if s.crashed {
        return;
    }
    let skip = s.skip;
    match *e {
        FsEvent::Synced(path) => {
            if skip == Skip::PhotoFileSync {
                s.photos.entry(path.to_path_buf()).or_insert(PhotoFile {
                    content: None,
                    name_durable: true,
                });
                return;
            }
            let content = std::fs::read(path).ok();
            let f = s.photos.entry(path.to_path_buf()).or_insert(PhotoFile {
                content: None,
                name_durable: true,
            });
            f.content = content;
        }
        FsEvent::Renamed { from, to } => {
            let mut f = s.photos.remove(from).unwrap_or(PhotoFile {
                // Not seen before: its content was there already.
                content: std::fs::read(to).ok(),
                name_durable: true,
            });
            f.name_durable = false;
            s.photos.insert(to.to_path_buf(), f);
        }
        FsEvent::DirSynced(dir) => {
            if skip == Skip::PhotoDirSync {
                return;
            }
            for (path, f) in s.photos.iter_mut() {
                if path.parent() == Some(dir) {
                    f.name_durable = true;
                }
            }
        }
    }
}

// ---- the SQLite VFS ----

const VFS_NAME: &CStr = c"gridcase-power-loss";

struct Vfs {
    unix: *mut ffi::sqlite3_vfs,
}
// SAFETY: the two VFS structs live for the whole process and SQLite
// serialises its own use of them.
unsafe impl Send for Vfs {}
unsafe impl Sync for Vfs {}

static VFS: OnceLock<Vfs> = OnceLock::new();

/// Our file: SQLite's header, the unix VFS's file right after it, and the
/// path we track it by.
#[repr(C)]
struct ShimFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// A leaked `Box<String>`, or null for a file we do not track.
    path: *mut String,
}

const HEADER: usize = std::mem::size_of::<ShimFile>().div_ceil(16) * 16;

fn register_vfs() {
    VFS.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find returns the registered unix VFS, valid
        // for the life of the process; ours is a leaked copy of it.
        unsafe {
            let unix = ffi::sqlite3_vfs_find(std::ptr::null());
            assert!(!unix.is_null(), "SQLite has no default VFS");
            let mut ours: ffi::sqlite3_vfs = *unix;
            ours.szOsFile = (*unix).szOsFile + HEADER as c_int;
            ours.zName = VFS_NAME.as_ptr();
            ours.pNext = std::ptr::null_mut();
            ours.xOpen = Some(x_open);
            ours.xDelete = Some(x_delete);
            let ours = Box::into_raw(Box::new(ours));
            let rc = ffi::sqlite3_vfs_register(ours, 1);
            assert_eq!(rc, ffi::SQLITE_OK, "registering the power-loss VFS");
            Vfs { unix }
        }
    });
}

fn unix() -> *mut ffi::sqlite3_vfs {
    VFS.get().expect("registered").unix
}

static IO: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: Some(x_fetch),
    xUnfetch: Some(x_unfetch),
};

unsafe fn shim(f: *mut ffi::sqlite3_file) -> &'static mut ShimFile {
    &mut *(f as *mut ShimFile)
}

unsafe fn real(
    f: *mut ffi::sqlite3_file,
) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
    let r = shim(f).real;
    (r, &*(*r).pMethods)
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let s = shim(file);
    s.base.pMethods = std::ptr::null();
    s.real = (file as *mut u8).add(HEADER) as *mut ffi::sqlite3_file;
    s.path = std::ptr::null_mut();
    let unix = unix();
    let rc = ((*unix).xOpen.expect("unix xOpen"))(unix, name, s.real, flags, out_flags);
    if rc != ffi::SQLITE_OK || (*s.real).pMethods.is_null() {
        return rc;
    }
    s.base.pMethods = &IO;
    if !name.is_null() {
        let path = CStr::from_ptr(name).to_string_lossy().into_owned();
        let mut st = state();
        // First seen since power came on: what is on disk now is durable.
        st.sqlite
            .entry(path.clone())
            .or_insert_with(|| std::fs::read(&path).ok().filter(|b| !b.is_empty()));
        s.path = Box::into_raw(Box::new(path));
    }
    rc
}

unsafe extern "C" fn x_delete(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    if state().crashed {
        return ffi::SQLITE_OK;
    }
    let unix = unix();
    let rc = ((*unix).xDelete.expect("unix xDelete"))(unix, name, sync_dir);
    if rc == ffi::SQLITE_OK && !name.is_null() {
        let path = CStr::from_ptr(name).to_string_lossy().into_owned();
        state().sqlite.remove(&path);
    }
    rc
}

unsafe extern "C" fn x_close(f: *mut ffi::sqlite3_file) -> c_int {
    let (r, m) = real(f);
    let rc = (m.xClose.expect("xClose"))(r);
    let s = shim(f);
    if !s.path.is_null() {
        drop(Box::from_raw(s.path));
        s.path = std::ptr::null_mut();
    }
    rc
}

unsafe extern "C" fn x_read(
    f: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    n: c_int,
    off: i64,
) -> c_int {
    let (r, m) = real(f);
    (m.xRead.expect("xRead"))(r, buf, n, off)
}

unsafe extern "C" fn x_write(
    f: *mut ffi::sqlite3_file,
    buf: *const c_void,
    n: c_int,
    off: i64,
) -> c_int {
    if state().crashed {
        return ffi::SQLITE_OK;
    }
    let (r, m) = real(f);
    (m.xWrite.expect("xWrite"))(r, buf, n, off)
}

unsafe extern "C" fn x_truncate(f: *mut ffi::sqlite3_file, size: i64) -> c_int {
    if state().crashed {
        return ffi::SQLITE_OK;
    }
    let (r, m) = real(f);
    (m.xTruncate.expect("xTruncate"))(r, size)
}

unsafe extern "C" fn x_sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    if state().crashed {
        return ffi::SQLITE_OK;
    }
    let (r, m) = real(f);
    let rc = (m.xSync.expect("xSync"))(r, flags);
    let s = shim(f);
    if rc == ffi::SQLITE_OK && !s.path.is_null() {
        let mut st = state();
        if st.skip != Skip::SqliteSync {
            let path = (*s.path).clone();
            let image = std::fs::read(&path).ok();
            st.sqlite.insert(path, image);
        }
    }
    rc
}

unsafe extern "C" fn x_file_size(f: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    let (r, m) = real(f);
    (m.xFileSize.expect("xFileSize"))(r, size)
}

unsafe extern "C" fn x_lock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (r, m) = real(f);
    (m.xLock.expect("xLock"))(r, level)
}

unsafe extern "C" fn x_unlock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (r, m) = real(f);
    (m.xUnlock.expect("xUnlock"))(r, level)
}

unsafe extern "C" fn x_check_reserved_lock(f: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let (r, m) = real(f);
    (m.xCheckReservedLock.expect("xCheckReservedLock"))(r, out)
}

unsafe extern "C" fn x_file_control(
    f: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    let (r, m) = real(f);
    (m.xFileControl.expect("xFileControl"))(r, op, arg)
}

unsafe extern "C" fn x_sector_size(f: *mut ffi::sqlite3_file) -> c_int {
    let (r, m) = real(f);
    (m.xSectorSize.expect("xSectorSize"))(r)
}

unsafe extern "C" fn x_device_characteristics(f: *mut ffi::sqlite3_file) -> c_int {
    let (r, m) = real(f);
    (m.xDeviceCharacteristics.expect("xDeviceCharacteristics"))(r)
}

unsafe extern "C" fn x_shm_map(
    f: *mut ffi::sqlite3_file,
    page: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let (r, m) = real(f);
    match m.xShmMap {
        Some(x) => x(r, page, size, extend, out),
        None => ffi::SQLITE_IOERR,
    }
}

unsafe extern "C" fn x_shm_lock(
    f: *mut ffi::sqlite3_file,
    off: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    let (r, m) = real(f);
    match m.xShmLock {
        Some(x) => x(r, off, n, flags),
        None => ffi::SQLITE_IOERR,
    }
}

unsafe extern "C" fn x_shm_barrier(f: *mut ffi::sqlite3_file) {
    let (r, m) = real(f);
    if let Some(x) = m.xShmBarrier {
        x(r)
    }
}

unsafe extern "C" fn x_shm_unmap(f: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    let (r, m) = real(f);
    match m.xShmUnmap {
        // After the cut the shared-memory index is not ours to delete: the
        // next opener rebuilds it from the (restored) log.
        Some(x) => x(r, if state().crashed { 0 } else { delete }),
        None => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn x_fetch(
    f: *mut ffi::sqlite3_file,
    off: i64,
    n: c_int,
    pp: *mut *mut c_void,
) -> c_int {
    let (r, m) = real(f);
    match m.xFetch {
        Some(x) if (*r).pMethods.as_ref().is_some_and(|m| m.iVersion >= 3) => x(r, off, n, pp),
        _ => {
            *pp = std::ptr::null_mut();
            ffi::SQLITE_OK
        }
    }
}

unsafe extern "C" fn x_unfetch(f: *mut ffi::sqlite3_file, off: i64, p: *mut c_void) -> c_int {
    let (r, m) = real(f);
    match m.xUnfetch {
        Some(x) if m.iVersion >= 3 => x(r, off, p),
        _ => ffi::SQLITE_OK,
    }
}
