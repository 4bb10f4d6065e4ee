//! The sync benchmark at a small scale, so it keeps working: the real server,
//! the proxy in pass-through and cut modes, the ceiling insert. The figures
//! that do not depend on the build (requests and bytes) are checked against
//! the targets.

use anyhow::{ensure, Result};
use gridcase_tests::sync_bench::{run, SyncBenchOptions};

#[test]
fn the_sync_benchmark_runs_and_meets_its_wire_targets() -> Result<()> {
    let report = run(&SyncBenchOptions {
        cases: 30,
        ops_per_case: 10,
        photo_bytes: 300 * 1024,
        photos: 3,
    })?;
    for row in report.markdown_rows() {
        eprintln!("{row}");
    }
    eprintln!("{}", report.detail());
    ensure!(report.device_ops == 300 && report.pull.ops == 330);
    ensure!(
        report.idle.requests() == 1,
        "an idle sync is one request: {:?}",
        report.idle.exchanges
    );
    let idle_bytes = report.idle.bytes_from_clients() + report.idle.bytes_to_clients();
    ensure!(
        idle_bytes < 1024,
        "an idle sync costs {idle_bytes} B on the wire"
    );
    ensure!(
        report.photo_wire_ratio() <= 1.02,
        "photo upload: {:.4}× the photo bytes on the wire",
        report.photo_wire_ratio()
    );
    ensure!(
        report.cut_held > 0,
        "the server kept what arrived before the cut"
    );
    ensure!(
        report.cut_resent() == 0,
        "{} B sent again after the cut",
        report.cut_resent()
    );
    Ok(())
}
