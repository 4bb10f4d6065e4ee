//! The form body of `POST /open311/v2/requests.json`, read as the handler
//! reads it: a new request or an `Open311Error`, and a request that parses
//! passes the case rules.
#![no_main]

use gridcase_core::zone::Zone;
use gridcase_server::open311::pairs;
use gridcase_server::open311::requests::NewRequest;
use libfuzzer_sys::fuzz_target;

// A fixed clock: the same input must give the same answer on every run.
const NOW: i64 = 1_790_000_000_000;

fuzz_target!(|data: &[u8]| {
    let zone = Zone::default();
    if let Ok(request) = NewRequest::parse(&pairs(data), NOW, &zone) {
        assert!(request.draft.validate().is_ok());
    }
});
