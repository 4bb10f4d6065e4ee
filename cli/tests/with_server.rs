//! The command line against the real server: a refused step is never taken
//! for done (`sync` lists it with the reason and exits 2, `list --refused`
//! finds it, `resend` sends it again); `show` tells everything the centre
//! wrote; `verify --photo` is one step.

mod common;

use common::*;
use gridcase_core::ids::CaseId;
use gridcase_tests::server::ServerProcess;

fn sync(data: &std::path::Path, lang: &str) -> std::process::Output {
    gridcase(data, &["sync", "--lang", lang])
}

#[test]
fn a_refused_step_is_listed_with_its_reason_until_it_is_sent_again() {
    let server = ServerProcess::start().unwrap();
    let leader = server
        .create_leader("张网格长", &["220402001001-G01"])
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("terminal");
    ok(gridcase(
        &data,
        &["enrol", "--server", &server.url, "--code", &leader.code],
    ));
    let id = submitted_manhole_case(&data);
    let short = &id[id.len() - 8..];
    let first = sync(&data, "en");
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(stdout(&first).contains("0 refused"), "{}", stdout(&first));

    // The centre dispatches; offline, the grid leader withdraws it anyway.
    let case_id = CaseId::parse(&id).unwrap();
    server.dispatch(&case_id, "市政", 24).unwrap();
    ok(gridcase(&data, &["cancel", short, "--reason", "重复上报"]));
    let refused = sync(&data, "en");
    assert_eq!(
        refused.status.code(),
        Some(2),
        "sync says something was refused"
    );
    let out = stdout(&refused);
    assert!(out.contains("1 refused"), "{out}");
    assert!(
        out.contains(short) && out.contains("井盖塌陷"),
        "names the case: {out}"
    );
    assert!(
        out.contains("not_allowed: cannot cancel a case that is dispatched"),
        "{out}"
    );
    assert!(
        stderr(&refused).contains("list --refused"),
        "{}",
        stderr(&refused)
    );

    let listed = ok(gridcase(&data, &["list", "--refused", "--lang", "en"]));
    let row = listed
        .lines()
        .find(|l| l.starts_with(short))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains("REFUSED: 1"), "{row}");
    assert!(row.contains("dispatched"), "the server's state: {row}");
    let shown = ok(gridcase(&data, &["show", short, "--lang", "en"]));
    assert!(shown.contains("needs attention"), "{shown}");
    assert!(
        shown.contains("[REFUSED: not_allowed: cannot cancel"),
        "{shown}"
    );
    assert!(shown.contains("cancelled it, because: 重复上报"), "{shown}");

    // Sent again: it waits in the outbox, and the server refuses it again.
    ok(gridcase(&data, &["resend", short]));
    assert!(ok(gridcase(&data, &["list", "--refused"])).contains("没有事件"));
    let again = sync(&data, "zh");
    assert_eq!(again.status.code(), Some(2));
    assert!(stdout(&again).contains("退回 1"), "{}", stdout(&again));
    // A sync with nothing new refused exits 0 and still mentions what waits.
    let quiet = sync(&data, "en");
    assert_eq!(quiet.status.code(), Some(0));
    assert!(
        stdout(&quiet).contains("refused earlier still need attention"),
        "{}",
        stdout(&quiet)
    );
}

#[test]
fn show_tells_every_note_the_centre_wrote_and_verify_takes_a_photo() {
    let server = ServerProcess::start().unwrap();
    let leader = server
        .create_leader("张网格长", &["220402001001-G01"])
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("terminal");
    ok(gridcase(
        &data,
        &["enrol", "--server", &server.url, "--code", &leader.code],
    ));
    let case = ok_json(gridcase(
        &data,
        &[
            "new",
            "--category",
            "leaking_house",
            "--title",
            "三楼漏水",
            "--lat",
            "42.895",
            "--lon",
            "125.135",
            "--submit",
            "--json",
        ],
    ));
    let id = case["id"].as_str().unwrap().to_string();
    assert_eq!(sync(&data, "en").status.code(), Some(0));
    let case_id = CaseId::parse(&id).unwrap();
    let housing = server.department_id("住建").unwrap();
    server
        .admin(&[
            "admin",
            "dispatch",
            &id,
            "--department",
            &housing,
            "--deadline-hours",
            "24",
            "--note",
            "请当天上门",
        ])
        .unwrap();
    server.chase(&case_id, "请加快处理").unwrap();
    server.resolve(&case_id, "已更换防水层").unwrap();
    assert_eq!(sync(&data, "en").status.code(), Some(0));

    let en = ok(gridcase(&data, &["show", &id, "--lang", "en"]));
    for words in [
        "dispatched to 住建",
        "请当天上门",
        "chased it: 请加快处理",
        "resolved it: 已更换防水层",
        "the centre received it",
        "resolved",
    ] {
        assert!(en.contains(words), "{words}: {en}");
    }
    let zh = ok(gridcase(&data, &["show", &id]));
    for words in [
        "派单给 住建",
        "请当天上门",
        "催办：请加快处理",
        "办结：已更换防水层",
        "已办结待核实",
    ] {
        assert!(zh.contains(words), "{words}: {zh}");
    }
    assert!(!has_utc_times(&zh) && !has_utc_times(&en));

    // One step: a bad photo leaves the case as it was.
    let bad = tmp.path().join("bad.jpg");
    std::fs::write(&bad, b"not a photo").unwrap();
    let err = refused(gridcase(
        &data,
        &[
            "verify",
            &id,
            "--not-done",
            "--note",
            "仍在漏水",
            "--photo",
            bad.to_str().unwrap(),
        ],
    ));
    assert!(err.contains(&format!("--photo {}", bad.display())), "{err}");
    let still = ok_json(gridcase(&data, &["show", &id, "--json"]));
    assert_eq!(still["status"], "resolved");
    assert!(still["photos"].as_array().unwrap().is_empty());

    let good = tmp.path().join("result.jpg");
    std::fs::write(&good, jpeg(800, 600)).unwrap();
    let after = ok(gridcase(
        &data,
        &[
            "verify",
            &id,
            "--not-done",
            "--note",
            "仍在漏水",
            "--photo",
            good.to_str().unwrap(),
            "--lang",
            "en",
        ],
    ));
    assert!(
        after.contains("checked on site: not done: 仍在漏水"),
        "{after}"
    );
    assert!(after.contains("reopened"), "{after}");
    let v = ok_json(gridcase(&data, &["show", &id, "--json"]));
    assert_eq!(v["verification"]["photo_ids"].as_array().unwrap().len(), 1);
    assert_eq!(sync(&data, "en").status.code(), Some(0));
    let cases = server.list_cases().unwrap();
    assert_eq!(cases[0].status, "reopened");
}
