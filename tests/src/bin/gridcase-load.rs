//! The load generator: a city's terminals against one server on this machine.
//!
//! ```text
//! gridcase-load [--devices N] [--sync-every-secs S] [--duration-secs D]
//!               [--max-syncs M] [--case-share F] [--work DIR] [--breaking-point]
//!               [--round-secs R] [--terminals-on-disk]
//! ```
//!
//! Defaults: 2,000 terminals, a sync every 300 s each, 120 s. With
//! `--breaking-point` it then runs again with the same terminals at a
//! province's rate (100,000 terminals syncing every 5 minutes, 333 syncs/s)
//! and twice that each round (`--round-secs`, default 60), until the p99 of
//! pushes or pulls passes 1 s or errors appear, and reports the rate (as
//! terminals syncing every 5 minutes) where that happened.
//!
//! The terminals' folders live in `/dev/shm` unless `--terminals-on-disk`:
//! each phone fsyncs its own flash, not the server's disk. Build in release
//! mode: `cargo run --release -p gridcase-tests --bin gridcase-load`.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use gridcase_tests::load::{
    find_breaking_point, raise_open_files_limit, run, work_dir, LoadConfig, LoadReport,
};

fn main() -> Result<()> {
    let mut config = LoadConfig::default();
    let mut work = None;
    let mut breaking_point = false;
    let mut round = Duration::from_secs(60);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--devices" => config.devices = value()?.parse()?,
            "--sync-every-secs" => config.sync_every = Duration::from_secs_f64(value()?.parse()?),
            "--duration-secs" => config.duration = Duration::from_secs_f64(value()?.parse()?),
            "--max-syncs" => config.max_syncs = value()?.parse()?,
            "--case-share" => config.case_share = value()?.parse()?,
            "--work" => work = Some(value()?.into()),
            "--breaking-point" => breaking_point = true,
            "--round-secs" => round = Duration::from_secs_f64(value()?.parse()?),
            "--terminals-on-disk" => config.terminals_in_memory = false,
            other => bail!("unknown argument {other}; see the file's docs"),
        }
    }
    raise_open_files_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (dir, _tmp) = work_dir(work)?;
    if !breaking_point {
        let report = rt.block_on(run(config, &dir.join("run-0")))?;
        println!("{}", report.markdown());
        let met = report.errors() == 0 && report.p99("push") < 100.0 && report.p99("pull") < 100.0;
        println!(
            "target (0 errors, p99 < 100 ms for pushes and pulls): {}",
            if met { "met" } else { "NOT met" }
        );
        return Ok(());
    }
    let (reports, broke) = rt.block_on(find_breaking_point(config, round, 8, &dir))?;
    for r in &reports {
        println!("{}", r.markdown());
    }
    for row in LoadReport::markdown_rows(&reports, broke) {
        println!("{row}");
    }
    Ok(())
}
