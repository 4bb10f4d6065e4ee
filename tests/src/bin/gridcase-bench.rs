//! `gridcase-bench <photo|store|lib-size|sync|all>`: the benchmarks, printed as Markdown table rows.
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
        Some("all") => {
            photo()?;
            store()?;
            sync()?;
            lib_size()
        }
        _ => bail!("usage: gridcase-bench <photo|store|lib-size|sync|all>"),
    }
}
