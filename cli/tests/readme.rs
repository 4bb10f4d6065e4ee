//! The README's "The field terminal" and "Sync with the centre's server"
//! sections, run as written, command by command: the `gridcase` binary, the
//! real `gridcase-server` binary and its admin commands, in a fresh folder
//! (so the default data folders are the README's). Only what a person
//! replaces is replaced: `<case-id>`, the printed one-time code, the
//! server's address (it listens on a free port here) and `/tmp/out`; the
//! photo files the commands name are made first. After each command the test
//! checks what the person would look at.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use gridcase_core::Zone;
use gridcase_tests::server::{server_bin, ServerProcess};

const README: &str = include_str!("../../README.md");

/// The first `sh` block of the section with this heading, one command per
/// entry (continued lines joined, comments dropped).
fn commands(heading: &str) -> Vec<String> {
    let section = README
        .split("\n## ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("the README has no section {heading:?}"));
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap_or_else(|| panic!("{heading:?} has no sh block"));
    let mut out = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        let line = match line.find("  #") {
            Some(i) => &line[..i],
            None => line,
        };
        let line = line.trim_end();
        if let Some(start) = line.strip_suffix('\\') {
            current.push_str(start);
            continue;
        }
        current.push_str(line);
        let cmd = std::mem::take(&mut current)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !cmd.is_empty() {
            out.push(cmd);
        }
    }
    out
}

/// Splits a command line as sh does for these (double quotes only).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

struct Walk {
    dir: tempfile::TempDir,
    server: Option<ServerProcess>,
    case_id: Option<String>,
    code: Option<String>,
}

impl Walk {
    fn cwd(&self) -> &Path {
        self.dir.path()
    }

    fn substitute(&self, word: &str) -> String {
        let mut w = word.to_string();
        if w.contains("<case-id>") {
            let id = self
                .case_id
                .as_deref()
                .expect("a case was recorded before <case-id> is used");
            w = w.replace("<case-id>", id);
        }
        if w == "XXXX-XXXX-XXXX" {
            w = self.code.clone().expect("create-leader printed a code");
        }
        if w == "http://127.0.0.1:8787" {
            w = self.server.as_ref().expect("the server runs").url.clone();
        }
        if w == "/tmp/out" {
            w = self.cwd().join("out").display().to_string();
        }
        w
    }

    /// Runs one README line; answers (status code, stdout, stderr).
    fn run(&mut self, line: &str) -> (i32, String, String) {
        let mut args: Vec<String> = words(line).iter().map(|w| self.substitute(w)).collect();
        let program = args.remove(0);
        if program == "gridcase-server" && args.first().map(String::as_str) == Some("serve") {
            let data = self.cwd().join("gridcase-server-data");
            self.server = Some(ServerProcess::start_in(&data).expect("serve"));
            return (0, String::new(), String::new());
        }
        let bin = match program.as_str() {
            "gridcase" => bin().into(),
            "gridcase-server" => server_bin().unwrap(),
            other => panic!("the README runs {other}, which this walk does not know"),
        };
        let out = Command::new(bin)
            .current_dir(self.cwd())
            .env_remove("GRIDCASE_DATA")
            .env_remove("GRIDCASE_DATA_DIR")
            .env_remove("GRIDCASE_LANG")
            .env_remove("GRIDCASE_ACTOR")
            .env("GRIDCASE_LOG", "warn")
            .args(&args)
            .output()
            .expect("running a README command");
        let (o, e) = (stdout(&out), stderr(&out));
        assert!(!e.contains("panicked"), "{line}: {e}");
        (out.status.code().unwrap_or(-1), o, e)
    }
}

#[test]
fn the_readme_walks_as_written() {
    let dir = tempfile::tempdir().unwrap();
    // The repository's fixture where the README names it.
    let fixtures = dir.path().join("tests/fixtures/grids");
    std::fs::create_dir_all(&fixtures).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/grids/liaoyuan-sample.geojson"
        ),
        fixtures.join("liaoyuan-sample.geojson"),
    )
    .unwrap();
    for (name, (w, h)) in [
        ("scene.jpg", (1600, 1200)),
        ("camera.jpg", (1200, 900)),
        ("result.jpg", (800, 600)),
    ] {
        std::fs::write(dir.path().join(name), jpeg(w, h)).unwrap();
    }
    let mut walk = Walk {
        dir,
        server: None,
        case_id: None,
        code: None,
    };
    let zone = Zone::default();

    let terminal = commands("The field terminal");
    let sync = commands("Sync with the centre's server");
    assert!(
        terminal.len() >= 6 && sync.len() >= 8,
        "{terminal:?} {sync:?}"
    );
    let mut seen = Vec::new();

    for line in terminal.iter().chain(&sync) {
        let (code, out, err) = walk.run(line);
        let verb = words(line)
            .iter()
            .skip(1)
            .take_while(|w| {
                w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-')
            })
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        let program = words(line)[0].clone();
        let key = format!("{program} {verb}");
        let context = format!("`{line}` ({code}):\n{out}\n{err}");
        assert_eq!(code, 0, "{context}");
        assert!(!has_utc_times(&out), "local times, no Z: {context}");
        match key.as_str() {
            "gridcase categories" => {
                assert!(
                    out.contains("leaking_house") && out.contains("房屋漏水"),
                    "{context}"
                )
            }
            "gridcase grids load" => assert!(out.contains("已载入"), "{context}"),
            "gridcase grids list" => assert!(out.contains("福民社区第一网格"), "{context}"),
            "gridcase new" => {
                walk.case_id = Some(first_uuid(&out).expect("new prints the case's id"));
                for word in [
                    "已提交",
                    "三楼漏水",
                    "房屋漏水",
                    "±6 m",
                    "福民社区第一网格",
                    "照片",
                ] {
                    assert!(out.contains(word), "{word}: {context}");
                }
                assert!(
                    !err.contains("注意"),
                    "a point in the leader's grid: no warning: {context}"
                );
            }
            "gridcase list" => {
                let id = walk.case_id.as_deref().unwrap();
                let row = out
                    .lines()
                    .find(|l| l.starts_with(&id[id.len() - 8..]))
                    .unwrap_or_else(|| panic!("the case's short id: {context}"));
                assert!(
                    row.contains("已提交") && row.contains("未同步"),
                    "{context}"
                );
            }
            "gridcase show" if !seen.contains(&"gridcase sync".to_string()) => {
                for word in ["办理过程", "登记事件", "上传照片", "提交", "[未同步]"]
                {
                    assert!(out.contains(word), "{word}: {context}");
                }
            }
            "gridcase photo-intake" => {
                let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
                assert!(
                    Path::new(v["path"].as_str().unwrap()).is_file(),
                    "{context}"
                );
            }
            "gridcase-server admin import-grids" | "gridcase-server admin create-department" => {}
            "gridcase-server admin create-leader" => {
                let code = out
                    .lines()
                    .find_map(|l| l.split("): ").nth(1))
                    .expect("create-leader prints the code");
                walk.code = Some(code.trim().to_string());
            }
            "gridcase-server serve" => {}
            "gridcase enrol" => {
                assert!(
                    out.contains("已登记") && out.contains("220402001001-G01"),
                    "{context}"
                );
                // What was recorded before enrolment is the leader's now, and says so.
                let id = walk.case_id.clone().unwrap();
                let (_, shown, _) = walk.run(&format!("gridcase show {id}"));
                assert!(shown.contains("登记设备前以“grid-leader”记录"), "{shown}");
            }
            "gridcase sync" => {
                let n = seen.iter().filter(|s| *s == "gridcase sync").count();
                assert!(out.contains("退回 0"), "nothing refused: {context}");
                if n == 0 {
                    assert!(out.contains("接受 3"), "create, photo, submit: {context}");
                }
                assert!(out.contains("仍待上传 0 步"), "{context}");
            }
            "gridcase-server admin dispatch" | "gridcase-server admin resolve" => {}
            "gridcase show" => {
                let server = walk.server.as_ref().unwrap();
                let listed = server.list_cases().unwrap();
                let deadline = listed[0].deadline.expect("dispatched with a deadline");
                for word in [
                    "已办结待核实".to_string(),
                    "派单给 市政".into(),
                    "办结：已修复".into(),
                    "中心受理".into(),
                    zone.format_minute(deadline),
                ] {
                    assert!(out.contains(&word), "{word}: {context}");
                }
            }
            "gridcase verify" => {
                assert!(
                    out.contains("已核实") && out.contains("现场核实：已办好：现场已修复"),
                    "{context}"
                )
            }
            "gridcase rate" => assert!(out.contains("已评价"), "{context}"),
            other => panic!("the README runs `{other}`, which this walk does not check: {context}"),
        }
        seen.push(key);
    }

    // What the centre holds at the end: the case, rated, reported by the
    // enrolled leader (adopted), with the leader's photos.
    let server = walk.server.as_ref().unwrap();
    let cases = server.list_cases().unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].status, "rated");
    let snap = server.snapshot().unwrap();
    let account = snap.account_grids.keys().next().unwrap().clone();
    assert_eq!(cases[0].reported_by, account);
    let case_id: gridcase_core::CaseId = gridcase_core::CaseId::parse(&cases[0].case_id).unwrap();
    let ops = snap.ops_of(&case_id);
    assert!(ops
        .iter()
        .any(|o| o.op.recorded_before_enrolment_as.as_deref() == Some("grid-leader")));
    let photos = ops
        .iter()
        .filter(|o| matches!(o.op.kind, gridcase_core::op::OpKind::AttachPhoto { .. }))
        .count();
    assert_eq!(photos, 2, "the scene photo and the result photo");
}
