//! The body of `POST /v1/sync` (push and pull in one request), decoded as the
//! handler decodes it; every op that parses is then run through the domain
//! rules the server applies before anything is written.
#![no_main]

use gridcase_core::op::{apply, Op};
use gridcase_server::sync::decode_sync_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = decode_sync_request(data) {
        let (ok, refused) = decoded.counts();
        assert!(ok + refused <= gridcase_core::protocol::MAX_PUSH_OPS);
        assert!(decoded.pull_limit <= gridcase_core::protocol::MAX_PULL_OPS);
    }
    // The same ops through the rules: a new case from any op must be a case
    // or a DomainError.
    if let Ok(serde_json::Value::Object(body)) = serde_json::from_slice(data) {
        if let Some(serde_json::Value::Array(ops)) = body.get("push") {
            for op in ops {
                if let Ok(op) = serde_json::from_value::<Op>(op.clone()) {
                    if let Ok(case) = apply(None, &op) {
                        let _ = apply(Some(&case), &op);
                    }
                }
            }
        }
    }
});
