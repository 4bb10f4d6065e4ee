//! The load generator: a city's terminals against one server on this machine.
//!
//! `gridcase-load --help` describes every flag.
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

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use gridcase_tests::load::{
    find_breaking_point, raise_open_files_limit, run, work_dir, LoadConfig, LoadReport,
};

/// A city's terminals against one gridcase-server on this machine: real
/// terminals enrol, record cases with photos and sync on their own clocks
/// while the centre dispatches and resolves over its HTTP API.
#[derive(Parser, Debug)]
#[command(name = "gridcase-load", version)]
struct Args {
    /// Terminals to simulate (each a real Terminal on its own SQLite folder).
    #[arg(long, default_value_t = 2_000)]
    devices: usize,
    /// Each terminal syncs this often, in seconds (with ±50% jitter).
    #[arg(long, default_value_t = 300.0)]
    sync_every_secs: f64,
    /// How long the measured run lasts, in seconds.
    #[arg(long, default_value_t = 120.0)]
    duration_secs: f64,
    /// Stop after this many syncs in all, even before the duration is over.
    #[arg(long)]
    max_syncs: Option<u64>,
    /// Share of syncs preceded by recording a case with 1-3 photos (0 to 1).
    #[arg(long, default_value_t = 0.01)]
    case_share: f64,
    /// Keep the server's and the terminals' data in this folder (a temporary
    /// folder, removed afterwards, if not given).
    #[arg(long)]
    work: Option<PathBuf>,
    /// After the city's run, go on at a province's rate (100,000 terminals
    /// syncing every 5 minutes) and twice that each round, until the p99 of
    /// pushes or pulls passes 1 s or a request fails.
    #[arg(long)]
    breaking_point: bool,
    /// Length of each round of --breaking-point, in seconds.
    #[arg(long, default_value_t = 60.0)]
    round_secs: f64,
    /// Keep the terminals' folders on disk next to the server's instead of
    /// in /dev/shm (each phone fsyncs its own flash, not the server's disk).
    #[arg(long)]
    terminals_on_disk: bool,
}

fn seconds(flag: &str, s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow::anyhow!("--{flag} must be a positive number of seconds"))
}

fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.devices > 0, "--devices must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.case_share),
        "--case-share must be between 0 and 1"
    );
    let config = LoadConfig {
        devices: args.devices,
        sync_every: seconds("sync-every-secs", args.sync_every_secs)?,
        duration: seconds("duration-secs", args.duration_secs)?,
        max_syncs: args.max_syncs.unwrap_or(u64::MAX),
        case_share: args.case_share,
        terminals_in_memory: !args.terminals_on_disk,
        ..LoadConfig::default()
    };
    let round = seconds("round-secs", args.round_secs)?;
    raise_open_files_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (dir, _tmp) = work_dir(args.work)?;
    if !args.breaking_point {
        let report = rt.block_on(run(config, &dir.join("run-0")))?;
        println!("{}", report.markdown());
        println!(
            "target (0 errors, p99 < 100 ms for pushes and pulls): {}",
            if report.city_met() { "met" } else { "NOT met" }
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
