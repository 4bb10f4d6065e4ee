//! `gridcase rating-link` against the real server: the grid leader records,
//! syncs and checks a case on site from the command line, then prints the
//! resident's link and writes its QR code to a file.

use std::path::Path;
use std::process::{Command, Output};

use gridcase_tests::server::ServerProcess;
use serde_json::Value;

fn gridcase(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gridcase"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("running gridcase")
}

fn ok_json(out: Output) -> Value {
    assert!(
        out.status.success(),
        "gridcase failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("gridcase printed JSON")
}

#[test]
fn a_verified_case_gets_a_link_and_its_qr_code_in_a_file() {
    let server = ServerProcess::start().unwrap();
    let leader = server
        .create_leader("张网格长", &["220402001001-G01"])
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("terminal");
    ok_json(gridcase(
        &data,
        &[
            "enrol",
            "--server",
            &server.url,
            "--code",
            &leader.code,
            "--json",
        ],
    ));
    let case = ok_json(gridcase(
        &data,
        &[
            "new",
            "--category",
            "collapsed_manhole",
            "--title",
            "井盖塌陷",
            "--lat",
            "42.895",
            "--lon",
            "125.135",
            "--deadline-hours",
            "48",
            "--submit",
            "--json",
        ],
    ));
    let id = case["id"].as_str().unwrap().to_string();

    // Not enrolled elsewhere, not verified here: both refused, plainly.
    let elsewhere = gridcase(&tmp.path().join("other"), &["rating-link", &id]);
    assert!(!elsewhere.status.success());
    assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("not enrolled"));
    let early = gridcase(&data, &["rating-link", &id]);
    assert!(!early.status.success());
    assert!(String::from_utf8_lossy(&early.stderr).contains("not_allowed"));

    ok_json(gridcase(&data, &["sync", "--json"]));
    let case_id = gridcase_core::ids::CaseId::parse(&id).unwrap();
    server.dispatch(&case_id, "市政", 24).unwrap();
    server.resolve(&case_id, "已修复").unwrap();
    ok_json(gridcase(&data, &["sync", "--json"]));
    ok_json(gridcase(
        &data,
        &["verify", &id, "--done", "--note", "现场已修复", "--json"],
    ));

    let svg = tmp.path().join("link.svg");
    let link = ok_json(gridcase(
        &data,
        &[
            "rating-link",
            &id,
            "--qr-svg",
            svg.to_str().unwrap(),
            "--json",
        ],
    ));
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/r/", server.url)), "{url}");
    assert!(link["expires_at"].as_i64().unwrap() > gridcase_core::time::now_millis());
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));

    let text = gridcase(&data, &["rating-link", &id]);
    assert!(text.status.success());
    let printed = String::from_utf8_lossy(&text.stdout);
    assert!(
        printed.starts_with(&format!("{}/r/", server.url)),
        "{printed}"
    );
    assert!(
        printed.contains("有效期至"),
        "Chinese by default: {printed}"
    );
    let english = gridcase(&data, &["rating-link", &id, "--lang", "en"]);
    assert!(english.status.success());
    assert!(
        String::from_utf8_lossy(&english.stdout).contains("expires"),
        "{}",
        String::from_utf8_lossy(&english.stdout)
    );
}
