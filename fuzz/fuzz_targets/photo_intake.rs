//! Photo intake on arbitrary bytes: any input is a photo or a `PhotoError`,
//! never a panic, a hang or an allocation past the limits.
#![no_main]

use gridcase_core::photo::{intake_bytes, PhotoConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits keep each run fast; the checks are the same code paths as
    // the defaults (bigger numbers, same comparisons).
    let cfg = PhotoConfig {
        max_edge: 256,
        thumb_edge: 64,
        quality: 75,
        max_input_bytes: 1024 * 1024,
        max_pixels: 4_000_000,
    };
    if let Ok(photo) = intake_bytes(data, &cfg) {
        assert!(photo.width <= cfg.max_edge && photo.height <= cfg.max_edge);
        assert!(photo.thumb_width <= cfg.thumb_edge && photo.thumb_height <= cfg.thumb_edge);
        assert!(photo.width > 0 && photo.height > 0);
    }
});
