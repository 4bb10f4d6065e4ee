//! A terminal that records cases with photos as fast as it can, printing each
//! case id once its last step has committed. The crash tests kill it with
//! SIGKILL at random moments and check that everything it printed survived.

use gridcase_core::{GeoPoint, Terminal, TerminalConfig};
use std::io::Write;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: field-recorder DATA_DIR");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let t = Terminal::open(
        std::path::Path::new(&dir),
        TerminalConfig::new("crash-leader"),
    )?;
    let mut out = std::io::stdout().lock();
    let point = GeoPoint::new(42.9, 125.1, 5.0)?;
    for i in 0u64.. {
        // A different picture each time, so each case has files of its own.
        let case = gridcase_tests::record_field_case(
            &t,
            &rt,
            format!("安全隐患 {i}"),
            point,
            (900, 600, i as u32),
        )?;
        writeln!(out, "{case}")?;
        out.flush()?;
    }
    Ok(())
}
