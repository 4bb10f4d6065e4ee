//! `gridcase-bench <photo|all>`: the benchmarks, printed as Markdown table rows.
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

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        // Internal: the small process that starts and measures one tool run.
        Some("__measure") => gridcase_tests::photo_bench::measure_main(&args[2..]),
        Some("photo") => photo(),
        Some("all") => photo(),
        _ => bail!("usage: gridcase-bench <photo|all>"),
    }
}
