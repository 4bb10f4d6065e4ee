//! A terminal that records cases with a photo each and syncs after every one,
//! forever, printing each case id once the case has committed on the terminal
//! (`recorded <id>`) and again after a sync that succeeded (`synced <id>`).
//! The crash tests have it abort at an armed abort point
//! (`GRIDCASE_FAILPOINT`, see `gridcase_core::failpoint`), restart it on the
//! same folder, and check that nothing was lost or doubled on either side.
//!
//! Usage: `field-syncer DATA_DIR` on a terminal already enrolled (the test
//! enrols it once, so a kill during enrolment cannot waste the one-time code).

use std::io::Write;

use gridcase_core::{GeoPoint, Terminal, TerminalConfig};

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: field-syncer DATA_DIR");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let t = Terminal::open(
        std::path::Path::new(&dir),
        TerminalConfig::new("crash-syncer"),
    )?;
    anyhow::ensure!(
        t.store().sync_account()?.is_some(),
        "the terminal must be enrolled first"
    );
    // Distinct pictures across restarts: start from the cases already here.
    let first = t.store().case_count()?;
    let mut out = std::io::stdout().lock();
    for i in first.. {
        let point = GeoPoint::new(
            42.892 + (i % 90) as f64 * 0.000_2,
            125.131 + (i % 60) as f64 * 0.000_2,
            5.0,
        )?;
        // A camera-like photo of 200-400 KB after intake: more than one
        // upload chunk, so a crash can land inside a file's upload.
        let photo = gridcase_tests::load::camera_photo(i.wrapping_mul(7919) ^ 0x5a5a);
        let case = rt.block_on(gridcase_tests::record_case(
            &t,
            gridcase_core::case::Category::SafetyHazard,
            &format!("安全隐患 {i}"),
            point,
            vec![photo],
        ))?;
        writeln!(out, "recorded {}", case)?;
        out.flush()?;
        match rt.block_on(t.sync_now(None)) {
            Ok(_) => {
                writeln!(out, "synced {}", case)?;
                out.flush()?;
            }
            Err(e) => eprintln!("sync failed: {e}"),
        }
    }
    Ok(())
}
