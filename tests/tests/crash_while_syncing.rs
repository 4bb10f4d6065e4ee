//! The grid leader's terminal is killed (SIGKILL: a dead battery, the OS
//! reclaiming the app) at random moments while it records cases with photos
//! and syncs after each one with the real `gridcase-server`: in the middle of
//! photo intake, of an upload, of a push whose answer is on its way, of
//! applying an answer. It restarts on the same folder each time. Afterwards
//! one last sync, and:
//!
//! - every case the terminal reported saved is on the server, received, with
//!   its create, photo, submit and receive each exactly once;
//! - the terminal holds exactly what the server shows it (same cases, states,
//!   ops in the same order), its outbox is empty, nothing was refused;
//! - no op or case is doubled anywhere; every photo file is on the server
//!   complete and on the terminal, and no partial upload or stray file is left;
//! - both databases pass integrity_check;
//! - a colleague's terminal in the same grid sees every submitted case with
//!   its photo.
//!
//! `GRIDCASE_CRASH_SEED` changes the kill moments; `GRIDCASE_CRASH_KILLS` their number.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use gridcase_core::ids::CaseId;
use gridcase_tests::device::{compare_with_server, integrity_check, SimDevice, G01};
use gridcase_tests::server::ServerProcess;

const DEFAULT_SEED: u64 = 0x5eed_c0de_2026;
const DEFAULT_KILLS: usize = 50;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[test]
fn nothing_is_lost_or_doubled_when_the_terminal_is_killed_while_syncing() -> Result<()> {
    let started = Instant::now();
    let server = ServerProcess::start()?;
    let result = scenario(&server);
    if result.is_err() {
        eprintln!("server log (tail):\n{}", server.log_tail());
    }
    result?;
    eprintln!(
        "crash while syncing: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn scenario(server: &ServerProcess) -> Result<()> {
    let seed = env_u64("GRIDCASE_CRASH_SEED", DEFAULT_SEED);
    let kills = env_u64("GRIDCASE_CRASH_KILLS", DEFAULT_KILLS as u64) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let leader = server.create_leader("断电网格员", &[G01])?;
    let colleague = server.create_leader("同网格同事", &[G01])?;
    let dir = tempfile::Builder::new()
        .prefix("gridcase-crash-")
        .tempdir()?;
    {
        // Enrol once, in-process: a kill during enrolment would waste the code.
        let d = SimDevice::open_at(dir.path(), "crash-syncer")?;
        rt.block_on(d.enrol(&server.url, &leader.code))?;
        d.terminal.close();
    }

    let mut rng = fastrand::Rng::with_seed(seed);
    let mut recorded: Vec<CaseId> = Vec::new();
    let mut synced: Vec<CaseId> = Vec::new();
    let mut sync_failures = 0usize;
    let mut killed_mid_sync = 0usize;
    for _ in 0..kills {
        // Kill points follow the syncer's progress, so that a slow machine
        // still sees cases finish: after 0, 1 ("recorded": its sync is
        // running) or 2 ("synced": the next case is being made) lines, plus
        // a random delay (short after "recorded", to land inside the sync).
        let wait_lines = rng.usize(0..=2);
        let delay = Duration::from_millis(rng.u64(0..=if wait_lines == 1 { 120 } else { 350 }));
        let mut child = Command::new(env!("CARGO_BIN_EXE_field-syncer"))
            .arg(dir.path())
            .env("GRIDCASE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting field-syncer")?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let out = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        let mut lines = Vec::new();
        while lines.len() < wait_lines {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => lines.push(line),
                Err(_) => break,
            }
        }
        std::thread::sleep(delay);
        if let Some(status) = child.try_wait()? {
            let err = err.join().unwrap_or_default().join("\n");
            bail!("field-syncer stopped by itself ({status}):\n{err}");
        }
        child.kill()?; // SIGKILL
        child.wait()?;
        let _ = out.join();
        lines.extend(rx.try_iter());
        // Killed after recording a case and before its sync finished.
        if lines.last().is_some_and(|l| l.starts_with("recorded ")) {
            killed_mid_sync += 1;
        }
        for line in lines {
            let parse = |s: &str| CaseId::parse(s).map_err(|e| anyhow::anyhow!("{line}: {e}"));
            if let Some(id) = line.strip_prefix("recorded ") {
                recorded.push(parse(id)?);
            } else if let Some(id) = line.strip_prefix("synced ") {
                synced.push(parse(id)?);
            }
        }
        sync_failures += err
            .join()
            .unwrap_or_default()
            .iter()
            .filter(|l| l.starts_with("sync failed"))
            .count();
    }
    ensure!(!recorded.is_empty(), "the syncer never finished a case");
    eprintln!(
        "{kills} kills ({killed_mid_sync} during a sync): {} cases reported recorded, {} reported synced, {sync_failures} syncs failed",
        recorded.len(),
        synced.len()
    );
    let recorded_set: BTreeSet<CaseId> = recorded.iter().copied().collect();
    ensure!(
        recorded_set.len() == recorded.len(),
        "a case id was printed twice"
    );
    ensure!(
        synced.iter().all(|id| recorded_set.contains(id)),
        "synced a case never recorded"
    );

    // The terminal comes back once more and syncs to the end.
    let device = SimDevice::open_at(dir.path(), "crash-syncer")?;
    let waiting = device.terminal.store().outbox_len()?;
    rt.block_on(device.sync_until_idle(10))?;
    let witness = SimDevice::open("colleague")?;
    rt.block_on(witness.enrol(&server.url, &colleague.code))?;
    rt.block_on(witness.sync_until_idle(10))?;
    eprintln!("the last sync sent {waiting} waiting ops");

    let snap = server.snapshot()?;
    let mut problems = Vec::new();
    for d in [&device, &witness] {
        match compare_with_server(d, &snap)? {
            Ok(n) => {
                eprintln!(
                    "{}: {} cases, {} ops, {} photo files match the server",
                    d.name, n.cases, n.ops, n.photos
                );
                if n.rejected > 0 {
                    problems.push(format!("{}: {} ops refused", d.name, n.rejected));
                }
            }
            Err(diffs) => problems.extend(diffs),
        }
    }
    let account = device.account_id()?;
    let mut ids = BTreeSet::new();
    for o in &snap.ops {
        if !ids.insert(o.op.id) {
            problems.push(format!("op {} is on the server twice", o.op.id));
        }
    }
    for (id, case) in &snap.cases {
        let kinds: Vec<&str> = snap.ops_of(id).iter().map(|o| o.op.kind.name()).collect();
        let whole = ["create", "attach a photo to", "submit", "receive"];
        // A case killed half-way has a prefix of the whole story.
        if case.reported_by != account || kinds.len() > whole.len() || kinds != whole[..kinds.len()]
        {
            problems.push(format!("case {id}: {kinds:?} by {}", case.reported_by));
        }
        if recorded_set.contains(id) && (kinds != whole || case.status != "received") {
            problems.push(format!(
                "reported case {id} is {} with {kinds:?}",
                case.status
            ));
        }
    }
    for id in &recorded {
        if !snap.cases.contains_key(id) {
            problems.push(format!("reported case {id} is not on the server"));
        }
        let seen = witness.terminal.case_detail_blocking(id);
        match seen {
            Ok(d) if d.photos.len() == 1 && d.photos[0].path.is_file() => {}
            Ok(d) => problems.push(format!(
                "the colleague sees {id} with {} photos",
                d.photos.len()
            )),
            Err(e) => problems.push(format!("the colleague does not see {id}: {e}")),
        }
    }
    // Photo files: the terminal has exactly those its rows name; the server
    // has every one complete, and no partial upload.
    let referenced = device.terminal.store().referenced_photo_files()?;
    let on_disk: BTreeSet<String> = walk(&dir.path().join("photos"))
        .iter()
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .collect();
    let referenced: BTreeSet<String> = referenced.into_iter().collect();
    if on_disk != referenced {
        problems.push(format!(
            "terminal: {} photo files on disk, {} referenced",
            on_disk.len(),
            referenced.len()
        ));
    }
    for sha in &referenced {
        if server.photo_file(sha).is_none() {
            problems.push(format!("server: photo file {sha} missing"));
        }
    }
    let partial = server.partial_uploads();
    if !partial.is_empty() {
        problems.push(format!("server: partial uploads left: {partial:?}"));
    }
    for db in [device.db_path(), server.db_path()] {
        let ok = integrity_check(&db)?;
        if ok != "ok" {
            problems.push(format!("{}: integrity_check: {ok}", db.display()));
        }
    }
    eprintln!(
        "server: {} cases ({} reported), {} ops",
        snap.cases.len(),
        recorded.len(),
        snap.ops.len()
    );
    if !problems.is_empty() {
        bail!("{} problems:\n{}", problems.len(), problems.join("\n"));
    }
    Ok(())
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
