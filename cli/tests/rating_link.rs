//! `gridcase rating-link` against the real server: the grid leader records,
//! syncs and checks a case on site from the command line, then prints the
//! resident's link and writes its QR code to a file.

mod common;

use common::*;
use gridcase_tests::server::ServerProcess;

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
    let id = submitted_manhole_case(&data);

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
