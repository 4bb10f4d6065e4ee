//! The grid leader's terminal is killed (SIGKILL: no cleanup, like a dead
//! battery or the OS reclaiming the app) at random moments while recording
//! cases with photos. After restart, every case the terminal had reported
//! saved is there, whole, with its photo files; the database is intact; no
//! step is duplicated; no file is left without its row.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use gridcase_core::case::CaseStatus;
use gridcase_core::ids::CaseId;
use gridcase_core::store::CaseQuery;
use gridcase_core::{Terminal, TerminalConfig};

const KILLS: u64 = 20;

#[test]
fn nothing_saved_is_lost_when_the_terminal_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut reported: Vec<CaseId> = Vec::new();
    // Deterministic spread of kill delays (ms) so runs are comparable.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..KILLS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(50 + seed % 1200);
        let mut child = Command::new(env!("CARGO_BIN_EXE_field-recorder"))
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| CaseId::parse(&l).ok())
                .collect::<Vec<_>>()
        });
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
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
        "{KILLS} kills: {} cases reported saved, {} in the store",
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
