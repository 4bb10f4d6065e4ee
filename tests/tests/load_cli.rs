//! The load generator's command line: `--help` answers (exit 0) and
//! describes every flag; a bad value is named, without a backtrace.

use std::process::Command;

#[test]
fn the_load_generator_describes_its_flags_and_names_a_bad_value() {
    let out = Command::new(env!("CARGO_BIN_EXE_gridcase-load"))
        .arg("--help")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "--help exited {}", out.status);
    let help = String::from_utf8(out.stdout).unwrap();
    for (flag, words) in [
        ("--devices", "Terminals to simulate"),
        ("--sync-every-secs", "syncs this often"),
        ("--duration-secs", "measured run lasts"),
        ("--max-syncs", "Stop after this many syncs"),
        ("--case-share", "Share of syncs"),
        ("--work", "Keep the server's"),
        ("--breaking-point", "province's rate"),
        ("--round-secs", "Length of each round"),
        ("--terminals-on-disk", "/dev/shm"),
    ] {
        let line = help
            .lines()
            .position(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("{flag} is not in --help:\n{help}"));
        // The description is on the flag's line or the lines after it.
        let described = help.lines().skip(line).take(4).any(|l| l.contains(words));
        assert!(described, "{flag} is not described:\n{help}");
    }

    let out = Command::new(env!("CARGO_BIN_EXE_gridcase-load"))
        .args(["--devices", "lots"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad value is a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--devices") && err.contains("lots"), "{err}");
    assert!(!err.contains("backtrace"), "{err}");
}
