//! A terminal that records cases with photos as fast as it can, printing each
//! case id once its last step has committed. The crash tests kill it with
//! SIGKILL at random moments and check that everything it printed survived.

use gridcase_core::case::{CaseDraft, Category};
use gridcase_core::terminal::PhotoSource;
use gridcase_core::time::{now_millis, DAY};
use gridcase_core::{GeoPoint, Location, Terminal, TerminalConfig};
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
    for i in 0u64.. {
        let now = now_millis();
        let case = t.create_case(
            CaseDraft {
                category: Category::SafetyHazard,
                title: format!("安全隐患 {i}"),
                description: "配电箱门损坏".into(),
                location: Some(Location {
                    point: GeoPoint::new(42.9, 125.1, 5.0)?,
                    address: None,
                }),
                occurred_at: now,
                proposed_deadline: Some(now + DAY),
            },
            None,
        )?;
        // A different picture each time, so each case has files of its own.
        let bytes = gridcase_tests::sample_jpeg(900, 600, i as u32);
        rt.block_on(t.add_photo(&case.id, PhotoSource::Bytes(bytes)))?;
        t.submit_case(&case.id)?;
        writeln!(out, "{}", case.id)?;
        out.flush()?;
    }
    Ok(())
}
