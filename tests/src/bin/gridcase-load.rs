//! The load generator: a city's terminals against one server on this machine.
//!
//! ```text
//! gridcase-load [--devices N] [--sync-every-secs S] [--duration-secs D]
//!               [--max-syncs M] [--case-share F] [--work DIR] [--breaking-point]
//! ```
//!
//! Defaults: 2,000 terminals, a sync every 300 s each, 120 s. With
//! `--breaking-point` it then runs again with the same terminals syncing
//! twice as often each time, until the p99 of pushes or pulls passes 1 s or
//! errors appear, and reports the rate (as terminals syncing every 5 minutes)
//! where that happened. Build in release mode: `cargo run --release -p
//! gridcase-tests --bin gridcase-load`.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use gridcase_tests::load::{run, work_dir, LoadConfig, LoadReport};

fn main() -> Result<()> {
    let mut config = LoadConfig::default();
    let mut work = None;
    let mut breaking_point = false;
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
            other => bail!("unknown argument {other}; see the file's docs"),
        }
    }
    // Thousands of terminals hold files open.
    raise_open_files_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (dir, _tmp) = work_dir(work)?;
    let first = rt.block_on(run(config.clone(), &dir.join("run-0")))?;
    println!("{}", first.markdown());
    let target_met = first.errors() == 0 && first.p99("push") < 100.0 && first.p99("pull") < 100.0;
    println!(
        "target (0 errors, p99 < 100 ms for pushes and pulls): {}",
        if target_met { "met" } else { "NOT met" }
    );
    if breaking_point {
        let mut c = config;
        for round in 1..=8 {
            c.sync_every /= 2;
            let r: LoadReport = rt.block_on(run(c.clone(), &dir.join(format!("run-{round}"))))?;
            println!("{}", r.markdown());
            let worst = r.p99("push").max(r.p99("pull"));
            if worst > 1_000.0 || r.errors() > 0 {
                println!(
                    "breaking point: p99 {worst:.0} ms, {} errors at {:.1} syncs/s = {:.0} terminals syncing every 5 minutes",
                    r.errors(),
                    r.syncs as f64 / r.wall.as_secs_f64(),
                    r.equivalent_devices()
                );
                return Ok(());
            }
        }
        println!("no breaking point found up to the last rate tried");
    }
    Ok(())
}

fn raise_open_files_limit() {
    // SAFETY: getrlimit/setrlimit on our own process with a valid struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
