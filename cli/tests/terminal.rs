//! The field terminal on the command line, offline: one command, one
//! outcome; errors that name the flag the user typed, once; ids a person can
//! type; local times; a list a pipe can cut short; help for every flag.

mod common;

use std::process::{Command, Stdio};

use common::*;
use gridcase_core::time::{now_millis, HOUR};
use gridcase_core::Zone;

const GRIDS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/grids/liaoyuan-sample.geojson"
);

fn count_cases(data: &std::path::Path) -> usize {
    let list = ok_json(gridcase(data, &["list", "--json", "--page-size", "500"]));
    list["cases"].as_array().unwrap().len()
}

fn new_case<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "new",
        "--category",
        "leaking_house",
        "--title",
        "三楼漏水",
        "--lat",
        "42.895",
        "--lon",
        "125.135",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn a_failed_new_stores_nothing_and_names_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("t");
    let good = tmp.path().join("scene.jpg");
    std::fs::write(&good, jpeg(640, 480)).unwrap();
    let bad = tmp.path().join("bad.jpg");
    std::fs::write(&bad, b"this is not a photo").unwrap();
    let missing = tmp.path().join("missing.jpg");
    let folder = tmp.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    let (good, bad, missing, folder) = (
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
        missing.to_str().unwrap(),
        folder.to_str().unwrap(),
    );

    // A bad second photo: not even the case with the first photo is stored.
    let err = refused(gridcase(
        &data,
        &new_case(&["--photo", good, "--photo", bad, "--submit"]),
    ));
    assert!(err.contains(&format!("--photo {bad}")), "{err}");
    assert_eq!(err.matches("not an image").count(), 1, "said once: {err}");

    let err = refused(gridcase(&data, &new_case(&["--photo", missing])));
    assert!(err.contains(&format!("--photo {missing}")), "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "said once: {err}");

    let err = refused(gridcase(&data, &new_case(&["--photo", folder])));
    assert!(err.contains("--photo") && err.contains("folder"), "{err}");

    let err = refused(gridcase(
        &data,
        &[
            "new",
            "--category",
            "leaking_house",
            "--title",
            "无位置",
            "--submit",
        ],
    ));
    assert!(err.contains("--submit needs a place"), "{err}");

    assert_eq!(
        count_cases(&data),
        0,
        "nothing was stored, so nothing to retry into duplicates"
    );
    // And what succeeds stores all of it at once.
    let case = ok_json(gridcase(
        &data,
        &new_case(&["--photo", good, "--submit", "--json"]),
    ));
    assert_eq!(case["status"], "submitted");
    assert_eq!(case["photos"].as_array().unwrap().len(), 1);
    assert_eq!(count_cases(&data), 1);
}

#[test]
fn errors_name_the_flags_typed_and_explain_the_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("t");
    let err = refused(gridcase(&data, &new_case(&["--deadline-hours", "-5"])));
    assert!(
        err.contains("--deadline-hours: must be in the future"),
        "{err}"
    );
    let err = refused(gridcase(&data, &new_case(&["--deadline-hours", "5000"])));
    assert!(
        err.contains("--deadline-hours: must be within 90 days"),
        "{err}"
    );
    assert!(!err.contains("proposed_deadline"), "{err}");
    let err = refused(gridcase(
        &data,
        &new_case(&["--deadline", "2020-01-01 08:00"]),
    ));
    assert!(err.contains("--deadline: must be in the future"), "{err}");
    let err = refused(gridcase(&data, &new_case(&["--deadline", "tomorrow"])));
    assert!(err.contains("--deadline:"), "{err}");
    let err = refused(gridcase(
        &data,
        &[
            "new",
            "--category",
            "leaking_house",
            "--title",
            "x",
            "--lat",
            "95",
            "--lon",
            "125",
        ],
    ));
    assert!(err.contains("--lat: must be between"), "{err}");
    assert!(!err.contains("location.lat"), "{err}");
    let err = refused(gridcase(
        &data,
        &["new", "--category", "漏水", "--title", "x"],
    ));
    assert!(err.contains("--category"), "{err}");
    assert_eq!(count_cases(&data), 0);

    // Fractional hours, and a Chinese category name.
    let before = now_millis();
    let case = ok_json(gridcase(
        &data,
        &[
            "new",
            "--category",
            "房屋漏水",
            "--title",
            "三楼漏水",
            "--deadline-hours",
            "1.5",
            "--json",
        ],
    ));
    assert_eq!(case["category"], "leaking_house");
    let deadline = case["proposed_deadline"].as_i64().unwrap();
    assert!(
        (deadline - before - 3 * HOUR / 2).abs() < 60_000,
        "{deadline}"
    );

    // An absolute deadline is read on the deployment's clock.
    let zone = Zone::default();
    let day = zone.format_date(now_millis() + 72 * HOUR);
    let when = format!("{day} 18:00");
    let case = ok_json(gridcase(&data, &new_case(&["--deadline", &when, "--json"])));
    assert_eq!(
        case["proposed_deadline"].as_i64().unwrap(),
        zone.parse_local("t", &when).unwrap()
    );
    let id = case["id"].as_str().unwrap();
    let shown = ok(gridcase(&data, &["show", id]));
    assert!(
        shown.contains(&when),
        "the deadline as typed, local: {shown}"
    );
    assert!(!has_utc_times(&shown), "no Z times: {shown}");
}

#[test]
fn a_case_is_named_by_the_end_of_its_id_and_lists_print_that() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("t");
    let a = ok_json(gridcase(&data, &new_case(&["--json"])));
    let b = ok_json(gridcase(&data, &new_case(&["--json"])));
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let list = ok(gridcase(&data, &["list"]));
    let short_b = &b[b.len() - 8..];
    assert!(list.lines().any(|l| l.starts_with(short_b)), "{list}");
    assert!(
        !list.contains(b),
        "the short form, not the whole id: {list}"
    );
    // The last characters, or the first, wherever a case is asked for.
    let shown = ok(gridcase(&data, &["show", &a[a.len() - 6..]]));
    assert!(shown.contains(a), "{shown}");
    ok(gridcase(&data, &["submit", &b[b.len() - 8..]]));
    let err = refused(gridcase(&data, &["show", "ffffffff"]));
    assert!(
        err.contains("<case>") && err.contains("matches no case"),
        "{err}"
    );
    // Both ids begin with the same milliseconds.
    let err = refused(gridcase(&data, &["show", &a[..4]]));
    assert!(
        err.contains("fits 2 cases") && err.contains(a) && err.contains(b),
        "{err}"
    );
    let err = refused(gridcase(&data, &["show", "ab"]));
    assert!(err.contains("<case>"), "{err}");
}

#[test]
fn a_list_cut_short_by_a_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("t");
    for _ in 0..3 {
        ok(gridcase(&data, &new_case(&[])));
    }
    for args in [&["list"][..], &["categories"][..]] {
        // The reader is gone before the first line is written.
        let mut child = Command::new(bin())
            .arg("--data")
            .arg(&data)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        assert!(out.status.success(), "{args:?}: {} {err}", out.status);
    }
}

#[test]
fn help_describes_every_flag_of_every_command() {
    let top = ok(Command::new(bin()).arg("--help").output().unwrap());
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .filter(|c| c != "help")
        .collect();
    assert!(commands.contains(&"grids".to_string()), "{top}");
    let mut pages = vec![(String::new(), top.clone())];
    for c in &commands {
        let page = ok(Command::new(bin()).args([c, "--help"]).output().unwrap());
        pages.push((c.clone(), page));
    }
    for sub in ["load", "list", "locate"] {
        let page = ok(Command::new(bin())
            .args(["grids", sub, "--help"])
            .output()
            .unwrap());
        pages.push((format!("grids {sub}"), page));
    }
    for (cmd, page) in pages {
        let lines: Vec<&str> = page.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let is_item = line.starts_with("  ")
                && (t.starts_with('-') || t.starts_with('<') || t.starts_with('['));
            // clap's notes under a flag's description, not flags.
            let note = ["[env:", "[default:", "[possible values:", "[aliases:"]
                .iter()
                .any(|n| t.starts_with(n))
                || t.starts_with("- ");
            if !is_item || note {
                continue;
            }
            // "--flag <VALUE>  Description" on one line, or (clap's long
            // form, when some flag has paragraphs) the description indented
            // on the next line.
            let inline = t.contains("  ") && !t.trim_end().ends_with('>');
            let indent = line.len() - t.len();
            let below = lines.get(i + 1).is_some_and(|next| {
                let n = next.trim_start();
                !n.is_empty() && next.len() - n.len() > indent && !n.starts_with('-')
            });
            assert!(
                inline || below,
                "`gridcase {cmd} --help`: no description for {t:?}"
            );
        }
    }
}

#[test]
fn grids_list_shows_the_map_as_a_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("t");
    let empty = ok(gridcase(&data, &["grids", "list", "--lang", "en"]));
    assert!(empty.contains("no grid map"), "{empty}");
    ok(gridcase(&data, &["grids", "load", GRIDS]));
    let list = ok(gridcase(&data, &["grids", "list"]));
    let g1 = list
        .lines()
        .find(|l| l.contains("220402001001-G01 "))
        .unwrap();
    let county = list.lines().find(|l| l.contains("220402 ")).unwrap();
    assert!(g1.contains("福民社区第一网格"), "{list}");
    let indent = |l: &str| l.len() - l.trim_start_matches([' ', '*']).len();
    assert!(indent(g1) > indent(county), "a tree: {list}");
}

#[test]
fn show_and_list_speak_chinese_by_default_and_english_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("t");
    ok(gridcase(&data, &["grids", "load", GRIDS]));
    let zh = ok(gridcase(&data, &new_case(&["--accuracy", "6", "--submit"])));
    for word in [
        "状态",
        "已提交",
        "房屋漏水",
        "办理过程",
        "登记事件",
        "提交",
        "±6 m",
        "福民社区第一网格",
    ] {
        assert!(zh.contains(word), "{word} in: {zh}");
    }
    assert!(!zh.contains("grid_leader"), "no internal role codes: {zh}");
    let id = first_uuid(&zh).unwrap();
    let en = ok(gridcase(&data, &["show", &id, "--lang", "en"]));
    for word in [
        "status",
        "submitted",
        "Leaking house",
        "timeline",
        "recorded the case",
        "submitted the case",
    ] {
        assert!(en.contains(word), "{word} in: {en}");
    }
    // The verb does not run into the role.
    assert!(
        !en.contains("to grid_leader") && !en.contains("attach a photo to"),
        "{en}"
    );
    let by_env = Command::new(bin())
        .env("GRIDCASE_LANG", "en")
        .arg("--data")
        .arg(&data)
        .arg("list")
        .output()
        .unwrap();
    assert!(ok(by_env).contains("deadline"));
    // Cases recorded today, on the deployment's clock.
    let today = ok_json(gridcase(&data, &["list", "--day", "today", "--json"]));
    assert_eq!(today["cases"].as_array().unwrap().len(), 1);
    let yesterday = Zone::default().format_date(now_millis() - 24 * HOUR);
    let before = ok_json(gridcase(&data, &["list", "--day", &yesterday, "--json"]));
    assert!(before["cases"].as_array().unwrap().is_empty());
}

#[test]
fn edit_keeps_the_accuracy_unless_told_and_photo_gps_is_no_edit() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("t");
    let case = ok_json(gridcase(&data, &new_case(&["--accuracy", "6", "--json"])));
    let id = case["id"].as_str().unwrap();
    assert_eq!(case["location"]["source"], "typed");
    let edited = ok_json(gridcase(
        &data,
        &["edit", id, "--lat", "42.896", "--lon", "125.136", "--json"],
    ));
    assert_eq!(edited["location"]["point"]["accuracy_m"], 6.0, "{edited}");
    assert_eq!(edited["location"]["point"]["lat"], 42.896);
    let edited = ok_json(gridcase(
        &data,
        &["edit", id, "--address", "福民街12号", "--json"],
    ));
    assert_eq!(edited["location"]["address"], "福民街12号");
    assert_eq!(
        edited["location"]["point"]["lat"], 42.896,
        "an address keeps the point"
    );
    // Typed without an accuracy, a new case says so: unknown, not 10 m.
    let plain = ok_json(gridcase(&data, &new_case(&["--json"])));
    assert!(
        plain["location"]["point"].get("accuracy_m").is_none(),
        "{plain}"
    );
    let shown = ok(gridcase(
        &data,
        &["show", plain["id"].as_str().unwrap(), "--lang", "en"],
    ));
    assert!(shown.contains("accuracy unknown"), "{shown}");
}

#[test]
fn verify_asks_for_done_or_not_done_and_a_reason_when_not_done() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("t");
    let case = ok_json(gridcase(&data, &new_case(&["--submit", "--json"])));
    let id = case["id"].as_str().unwrap();
    let err = refused(gridcase(&data, &["verify", id]));
    assert!(err.contains("--done or --not-done"), "{err}");
    let err = refused(gridcase(&data, &["verify", id, "--not-done"]));
    assert!(err.contains("--note"), "{err}");
    // The case is not resolved yet: refused by the rules, nothing stored.
    let err = refused(gridcase(&data, &["verify", id, "--done"]));
    assert!(err.contains("cannot verify"), "{err}");
}

#[test]
fn a_point_outside_the_grids_is_said_when_it_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("t");
    ok(gridcase(&data, &["grids", "load", GRIDS]));
    let beijing = gridcase(
        &data,
        &[
            "new",
            "--category",
            "environment",
            "--title",
            "x",
            "--lat",
            "39.9",
            "--lon",
            "116.4",
            "--lang",
            "en",
        ],
    );
    assert!(beijing.status.success());
    assert!(
        stderr(&beijing).contains("outside every grid"),
        "{}",
        stderr(&beijing)
    );
    let inside = gridcase(&data, &new_case(&["--lang", "en"]));
    assert!(!stderr(&inside).contains("warning"), "{}", stderr(&inside));
}
