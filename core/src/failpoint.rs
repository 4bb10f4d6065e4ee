//! Abort points for the crash tests: named places where a test can have the
//! process die on the spot (`std::process::abort`: no unwinding, no cleanup,
//! nothing flushed, as when the battery dies or the OS kills the app), so a
//! crash lands exactly at the moment that matters instead of wherever a timer
//! happened to fall.
//!
//! `GRIDCASE_FAILPOINT=NAME` aborts the first time the process passes `NAME`;
//! `NAME@N` the N-th time. Compiled into debug builds only (the ones the tests
//! run); a release build has no abort points and [`hit`] is empty.

/// Before each COMMIT of the terminal's store.
pub const STORE_BEFORE_COMMIT: &str = "store.before_commit";
/// After each COMMIT of the terminal's store, before the caller hears of it.
pub const STORE_AFTER_COMMIT: &str = "store.after_commit";
/// A photo's files are renamed into place; its row has not committed.
pub const PHOTO_BEFORE_ROW: &str = "photo.before_row";
/// An upload chunk was answered; the rest of the file and the push wait.
pub const UPLOAD_AFTER_CHUNK: &str = "sync.after_upload_chunk";
/// The photos are up; the push that needs them is about to go.
pub const SYNC_BEFORE_PUSH: &str = "sync.before_push";
/// Before each COMMIT of the server's database.
pub const SERVER_BEFORE_COMMIT: &str = "server.before_commit";
/// After each COMMIT of the server's database, before the answer goes out.
pub const SERVER_AFTER_COMMIT: &str = "server.after_commit";
/// The server has written and synced an upload chunk; its answer waits.
pub const SERVER_AFTER_UPLOAD_CHUNK: &str = "server.after_upload_chunk";

/// Every abort point in the terminal.
pub const TERMINAL: &[&str] = &[
    STORE_BEFORE_COMMIT,
    STORE_AFTER_COMMIT,
    PHOTO_BEFORE_ROW,
    UPLOAD_AFTER_CHUNK,
    SYNC_BEFORE_PUSH,
];
/// Every abort point in the server.
pub const SERVER: &[&str] = &[
    SERVER_BEFORE_COMMIT,
    SERVER_AFTER_COMMIT,
    SERVER_AFTER_UPLOAD_CHUNK,
];

/// The environment variable that arms one abort point.
pub const ENV: &str = "GRIDCASE_FAILPOINT";

/// Passes the abort point `name`: aborts the process if it is the armed one
/// and this is the armed pass. Nothing at all in a release build.
#[inline]
pub fn hit(name: &str) {
    #[cfg(debug_assertions)]
    armed::hit(name);
    #[cfg(not(debug_assertions))]
    let _ = name;
}

#[cfg(debug_assertions)]
mod armed {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    static PLAN: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static PASSED: AtomicU64 = AtomicU64::new(0);

    pub(super) fn parse(v: &str) -> Option<(String, u64)> {
        let (name, at) = match v.split_once('@') {
            Some((name, at)) => (name, at.trim().parse().ok()?),
            None => (v, 1),
        };
        let name = name.trim();
        (!name.is_empty()).then(|| (name.to_string(), at.max(1)))
    }

    pub(super) fn hit(name: &str) {
        let plan = PLAN.get_or_init(|| parse(&std::env::var(super::ENV).ok()?));
        let Some((point, at)) = plan else {
            return;
        };
        if point != name {
            return;
        }
        if PASSED.fetch_add(1, Ordering::SeqCst) + 1 == *at {
            eprintln!("failpoint {name}@{at}: aborting");
            std::process::abort();
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn a_point_is_armed_by_name_and_pass() {
            assert_eq!(
                super::parse("store.after_commit"),
                Some(("store.after_commit".into(), 1))
            );
            assert_eq!(super::parse("a@3"), Some(("a".into(), 3)));
            assert_eq!(super::parse("a@0"), Some(("a".into(), 1)));
            assert_eq!(super::parse("a@x"), None);
            assert_eq!(super::parse(""), None);
        }
    }
}
