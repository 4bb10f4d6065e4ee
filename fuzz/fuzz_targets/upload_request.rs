//! `PUT /v1/photos/{sha256}?offset=N&total=T`: the name from the URL and the
//! query, checked as the handler checks them before any file is touched. A
//! name that passes must be safe to join to a folder.
#![no_main]

use gridcase_server::photos::{check_sha, UploadRange};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First line: the path segment; the rest: the query string.
    let text = String::from_utf8_lossy(data);
    let (name, query) = text.split_once('\n').unwrap_or((&text, ""));
    if check_sha(name).is_ok() {
        assert_eq!(name.len(), 64);
        assert!(!name.contains(['/', '\\', '.', '%']));
    }
    if let Ok(range) = UploadRange::parse(Some(query)) {
        assert!(range.offset <= range.total && range.total > 0);
        assert!(range.total <= gridcase_core::protocol::MAX_PHOTO_BYTES);
    }
});
