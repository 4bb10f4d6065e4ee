//! `gridcase-bench <photo|store|lib-size|sync|load|all>`: the benchmarks, printed as Markdown table rows.
//!
//! Build both binaries in release mode first; the `gridcase` binary is looked
//! for next to this one (or set `GRIDCASE_BIN`).

use std::path::PathBuf;

use anyhow::{bail, Result};

fn gridcase_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("GRIDCASE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe()?;
    let p = me.with_file_name(format!("gridcase{}", std::env::consts::EXE_SUFFIX));
    if !p.is_file() {
        bail!(
            "{} not found: build it (cargo build --release -p gridcase) or set GRIDCASE_BIN",
            p.display()
        );
    }
    Ok(p)
}

fn photo() -> Result<()> {
    let report = gridcase_tests::photo_bench::run(&gridcase_bin()?)?;
    println!("| benchmark | gridcase | reference | ratio |");
    println!("| --- | --- | --- | --- |");
    for row in report.markdown_rows() {
        println!("{row}");
    }
    eprintln!("{}", report.detail());
    Ok(())
}

fn header() {
    println!("| benchmark | gridcase | reference | ratio |");
    println!("| --- | --- | --- | --- |");
}

fn store() -> Result<()> {
    let cases = std::env::var("GRIDCASE_BENCH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let report = gridcase_tests::store_bench::run(cases)?;
    for row in report.markdown_rows() {
        println!("{row}");
    }
    Ok(())
}

/// Sync over loopback against the real server (next to this binary, or
/// `GRIDCASE_SERVER_BIN`); `GRIDCASE_BENCH_SYNC_CASES` cases of 10 ops.
fn sync() -> Result<()> {
    let mut opts = gridcase_tests::sync_bench::SyncBenchOptions::default();
    if let Some(n) = std::env::var("GRIDCASE_BENCH_SYNC_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.cases = n;
    }
    let report = gridcase_tests::sync_bench::run(&opts)?;
    for row in report.markdown_rows() {
        println!("{row}");
    }
    eprintln!("{}", report.detail());
    Ok(())
}

/// The load generator against the real server: `GRIDCASE_BENCH_LOAD_DEVICES`
/// terminals (2,000) syncing every 5 minutes for `GRIDCASE_BENCH_LOAD_SECS`
/// (60 s), then at a province's rate (100,000 terminals every 5 minutes) and
/// twice that each 30 s round until it breaks.
fn load() -> Result<()> {
    let env = |k: &str, d: f64| -> f64 {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let config = gridcase_tests::load::LoadConfig {
        devices: env("GRIDCASE_BENCH_LOAD_DEVICES", 2_000.0) as usize,
        duration: std::time::Duration::from_secs_f64(env("GRIDCASE_BENCH_LOAD_SECS", 60.0)),
        ..Default::default()
    };
    gridcase_tests::load::raise_open_files_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (dir, _tmp) = gridcase_tests::load::work_dir(None)?;
    let (reports, broke) = rt.block_on(gridcase_tests::load::find_breaking_point(
        config,
        std::time::Duration::from_secs(30),
        8,
        &dir,
    ))?;
    for r in &reports {
        eprintln!("{}", r.markdown());
    }
    for row in gridcase_tests::load::LoadReport::markdown_rows(&reports, broke) {
        println!("{row}");
    }
    Ok(())
}

/// Size of the release FFI library as an app would ship it: stripped.
fn lib_size() -> Result<()> {
    let me = std::env::current_exe()?;
    let lib = me.with_file_name(format!(
        "{}gridcase_ffi{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    if !lib.is_file() {
        bail!(
            "{} not found: build it (cargo build --release -p gridcase-ffi)",
            lib.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let stripped = dir.path().join("stripped");
    let status = std::process::Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&lib)
        .status()?;
    if !status.success() {
        bail!("strip failed");
    }
    let before = std::fs::metadata(&lib)?.len();
    let after = std::fs::metadata(&stripped)?.len();
    println!(
        "| release cdylib (host, x86_64), stripped | {:.2} MiB | unstripped {:.2} MiB | |",
        after as f64 / 1048576.0,
        before as f64 / 1048576.0
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        // Internal: the small process that starts and measures one tool run.
        Some("__measure") => gridcase_tests::photo_bench::measure_main(&args[2..]),
        Some("photo") => photo(),
        Some("store") => {
            header();
            store()
        }
        Some("lib-size") => {
            header();
            lib_size()
        }
        Some("sync") => {
            header();
            sync()
        }
        Some("load") => {
            header();
            load()
        }
        Some("all") => {
            photo()?;
            store()?;
            sync()?;
            load()?;
            lib_size()
        }
        _ => bail!("usage: gridcase-bench <photo|store|lib-size|sync|load|all>"),
    }
}
