//! The grid leader's terminal dies (an abort: no cleanup, like the OS
//! reclaiming the app) at each abort point of recording
//! (`gridcase_core::failpoint`): before and after each COMMIT, between a
//! photo's files and its row, each at its first passes (a case is three
//! commits: create, photo, submit). Every run must end there. After restart,
//! every case the terminal had reported saved is there, whole, with its photo
//! files; the database is intact; no step is duplicated; no file is left
//! without its row.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gridcase_core::failpoint;

use gridcase_core::case::CaseStatus;
use gridcase_core::ids::CaseId;
use gridcase_core::store::CaseQuery;
use gridcase_core::{Terminal, TerminalConfig};

fn plan() -> Vec<(&'static str, u64)> {
    let points = [
        failpoint::STORE_BEFORE_COMMIT,
        failpoint::STORE_AFTER_COMMIT,
        failpoint::PHOTO_BEFORE_ROW,
    ];
    let mut plan = Vec::new();
    for point in points {
        let passes = if point == failpoint::PHOTO_BEFORE_ROW {
            1..=2
        } else {
            1..=4
        };
        plan.extend(passes.map(|n| (point, n)));
    }
    plan
}

#[test]
fn nothing_saved_is_lost_when_the_terminal_dies_at_each_abort_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut reported: Vec<CaseId> = Vec::new();
    let kills = plan().len();
    for (point, pass) in plan() {
        let armed = format!("{point}@{pass}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_field-recorder"))
            .arg(dir.path())
            .env(failpoint::ENV, &armed)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let err = std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
                .join("\n")
        });
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| CaseId::parse(&l).ok())
                .collect::<Vec<_>>()
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("{armed}: the recorder never reached its abort point");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let err = err.join().unwrap();
        assert!(
            status.signal() == Some(libc::SIGABRT)
                && err.contains(&format!("failpoint {armed}: aborting")),
            "{armed}: the recorder ended otherwise ({status}): {err}"
        );
        reported.extend(reader.join().unwrap());
    }
    assert!(!reported.is_empty(), "the recorder never finished a case");

    let t = Terminal::open(dir.path(), TerminalConfig::new("checker")).unwrap();
    let integrity: String = rusqlite::Connection::open(t.store().path())
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");

    for id in &reported {
        let d = t.case_detail_blocking(id).unwrap();
        assert_eq!(d.case.status, CaseStatus::Submitted);
        assert_eq!(d.photos.len(), 1);
        assert!(d.photos[0].path.exists() && d.photos[0].thumb_path.exists());
        let kinds: Vec<_> = d.timeline.iter().map(|e| e.op.kind.name()).collect();
        assert_eq!(kinds, vec!["create", "attach a photo to", "submit"]);
    }

    // Every case in the store (including ones killed half-way) is consistent:
    // its status agrees with its steps, and steps are never duplicated.
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let page = t
            .list_cases_blocking(&CaseQuery {
                page_size: 500,
                page_token: token,
                ..Default::default()
            })
            .unwrap();
        all.extend(page.cases);
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    let mut op_ids = HashSet::new();
    let mut files = HashSet::new();
    for summary in &all {
        let d = t.case_detail_blocking(&summary.id).unwrap();
        for e in &d.timeline {
            assert!(op_ids.insert(e.op.id), "a step was recorded twice");
        }
        for p in &d.photos {
            files.insert(p.path.clone());
            files.insert(p.thumb_path.clone());
        }
        let expected = match d.timeline.len() {
            1 | 2 => CaseStatus::Draft,
            _ => CaseStatus::Submitted,
        };
        assert_eq!(d.case.status, expected);
    }
    assert_eq!(t.store().outbox_len().unwrap() as usize, op_ids.len());
    // Photo files on disk are exactly those with a committed row.
    let on_disk: HashSet<_> = walk(&dir.path().join("photos")).into_iter().collect();
    assert_eq!(on_disk, files);
    eprintln!(
        "{kills} crashes: {} cases reported saved, {} in the store",
        reported.len(),
        all.len()
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
