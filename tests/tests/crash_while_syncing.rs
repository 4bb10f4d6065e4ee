//! Crashes at the moments that matter, on both sides of a sync, against the
//! real `gridcase-server`.
//!
//! **The terminal.** `field-syncer` records cases with a camera photo (more
//! than one upload chunk) and syncs after each one, forever; it is run with
//! one abort point armed (`gridcase_core::failpoint`): before and after each
//! COMMIT of its store, between a photo's files and its row, after an upload
//! chunk, before the push that needs the photos; each at its first few
//! passes. Every run must end at its abort point (a run that ends any other
//! way fails the test), and restarts on the same folder.
//!
//! **The server.** The server runs with one of its abort points armed: before
//! and after each COMMIT, after an upload chunk is written; a terminal
//! (through a proxy that follows the restarted server) records and syncs
//! until the server dies there, then the server comes back and the terminal
//! syncs to the end.
//!
//! After every crash and at the end, against the test's own log of what was
//! acknowledged (a case the terminal said it saved; an op the server said it
//! accepted): nothing acknowledged is lost, no step is doubled (each case's
//! steps, in order, are compared with what the test knows was done), every
//! photo is whole on both sides, no partial upload or stray file is left, and
//! both databases pass integrity_check.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use gridcase_core::failpoint;
use gridcase_core::ids::{CaseId, OpId};
use gridcase_tests::device::{
    compare_with_server, integrity_check, point_in, read_device_view, SimDevice, G01,
};
use gridcase_tests::fault_proxy::FaultProxy;
use gridcase_tests::server::{ServerProcess, ServerSnapshot};

/// A whole case's steps as the terminal records them and the server adds one.
const WHOLE: [&str; 4] = ["create", "attach a photo to", "submit", "receive"];
const TERMINAL_STEPS: [&str; 3] = ["create", "attach a photo to", "submit"];

/// Each terminal abort point and the passes at which it fires. A syncer's
/// life, per case: three commits (create, photo row, submit), then the sync's
/// commits (the push answer, the pull); so five passes of a commit point land
/// on each kind of commit once.
fn terminal_plan() -> Vec<(&'static str, u64)> {
    let mut plan = Vec::new();
    for &point in failpoint::TERMINAL {
        let passes: &[u64] = match point {
            failpoint::STORE_BEFORE_COMMIT | failpoint::STORE_AFTER_COMMIT => &[1, 2, 3, 4, 5],
            failpoint::UPLOAD_AFTER_CHUNK => &[1, 2, 3],
            _ => &[1, 2],
        };
        plan.extend(passes.iter().map(|&n| (point, n)));
    }
    plan
}

fn signal_of(status: std::process::ExitStatus) -> Option<i32> {
    status.signal()
}

#[test]
fn nothing_acknowledged_is_lost_or_doubled_when_the_terminal_dies_at_each_abort_point() -> Result<()>
{
    let started = Instant::now();
    let server = ServerProcess::start()?;
    let result = terminal_scenario(&server);
    if result.is_err() {
        eprintln!("server log (tail):\n{}", server.log_tail());
    }
    result?;
    eprintln!(
        "terminal abort points: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn terminal_scenario(server: &ServerProcess) -> Result<()> {
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
        // Enrol once, in-process: a crash during enrolment would waste the code.
        let d = SimDevice::open_at(dir.path(), "crash-syncer")?;
        rt.block_on(d.enrol(&server.url, &leader.code))?;
        d.terminal.close();
    }
    // The test's log: cases the terminal said were saved, in order.
    let mut recorded: Vec<CaseId> = Vec::new();
    let mut synced = 0usize;
    for (point, pass) in terminal_plan() {
        let armed = format!("{point}@{pass}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_field-syncer"))
            .arg(dir.path())
            .env("GRIDCASE_LOG", "warn")
            .env(failpoint::ENV, &armed)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting field-syncer")?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let out = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        let err = std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                child.kill()?;
                child.wait()?;
                bail!("{armed}: the syncer never reached its abort point");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let lines = out.join().unwrap_or_default();
        let err = err.join().unwrap_or_default().join("\n");
        // Where the crash landed is asserted, not counted: at the armed point.
        ensure!(
            signal_of(status) == Some(libc::SIGABRT)
                && err.contains(&format!("failpoint {armed}: aborting")),
            "{armed}: the syncer ended otherwise ({status}):\n{err}"
        );
        for line in &lines {
            let parse = |s: &str| CaseId::parse(s).map_err(|e| anyhow::anyhow!("{line}: {e}"));
            if let Some(id) = line.strip_prefix("recorded ") {
                recorded.push(parse(id)?);
            } else if line.starts_with("synced ") {
                synced += 1;
            }
        }
        check_terminal_after_crash(dir.path(), &recorded).with_context(|| armed.clone())?;
    }
    ensure!(!recorded.is_empty(), "the syncer never finished a case");
    eprintln!(
        "{} crashes at abort points: {} cases reported saved, {synced} syncs reported done",
        terminal_plan().len(),
        recorded.len()
    );

    // The terminal comes back once more and syncs to the end; a colleague
    // in the same grid syncs too.
    let device = SimDevice::open_at(dir.path(), "crash-syncer")?;
    rt.block_on(device.sync_until_idle(10))?;
    let witness = SimDevice::open("colleague")?;
    rt.block_on(witness.enrol(&server.url, &colleague.code))?;
    rt.block_on(witness.sync_until_idle(10))?;

    let snap = server.snapshot()?;
    let mut problems = Vec::new();
    for d in [&device, &witness] {
        match compare_with_server(d, &snap)? {
            Ok(n) if n.rejected > 0 => {
                problems.push(format!("{}: {} ops refused", d.name, n.rejected))
            }
            Ok(_) => {}
            Err(diffs) => problems.extend(diffs),
        }
    }
    problems.extend(server_problems(
        server,
        &snap,
        &device.account_id()?,
        &recorded,
    )?);
    for id in &recorded {
        match witness.terminal.case_detail_blocking(id) {
            Ok(d) if d.photos.len() == 1 && d.photos[0].path.is_file() => {}
            Ok(d) => problems.push(format!(
                "the colleague sees {id} with {} photos",
                d.photos.len()
            )),
            Err(e) => problems.push(format!("the colleague does not see {id}: {e}")),
        }
    }
    // Photo files: the terminal has exactly those its rows name.
    let referenced: BTreeSet<String> = device
        .terminal
        .store()
        .referenced_photo_files()?
        .into_iter()
        .collect();
    let on_disk: BTreeSet<String> = walk(&dir.path().join("photos"))
        .iter()
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .collect();
    if on_disk != referenced {
        problems.push(format!(
            "terminal: {} photo files on disk, {} referenced",
            on_disk.len(),
            referenced.len()
        ));
    }
    for db in [device.db_path(), server.db_path()] {
        let ok = integrity_check(&db)?;
        if ok != "ok" {
            problems.push(format!("{}: integrity_check: {ok}", db.display()));
        }
    }
    if !problems.is_empty() {
        bail!("{} problems:\n{}", problems.len(), problems.join("\n"));
    }
    Ok(())
}

/// Right after a crash, before anything runs on the folder again: every case
/// the terminal said it saved is there with exactly its three steps, in
/// order, and its photo's files; a case cut short holds a prefix of them.
fn check_terminal_after_crash(dir: &std::path::Path, recorded: &[CaseId]) -> Result<()> {
    let view = read_device_view(&dir.join("gridcase.sqlite3"))?;
    for (id, case) in &view.cases {
        let kinds: Vec<&str> = case
            .ops
            .iter()
            .filter(|o| o.origin == "local")
            .map(|o| o.op.kind.name())
            .collect();
        let whole = recorded.contains(id);
        let fits = if whole {
            kinds == TERMINAL_STEPS
        } else {
            // Not reported: cut short, or whole with the crash between its
            // last commit and the report (after_commit).
            kinds.len() <= TERMINAL_STEPS.len() && kinds == TERMINAL_STEPS[..kinds.len()]
        };
        ensure!(fits, "case {id} (reported saved: {whole}) holds {kinds:?}");
        for (photo, thumb) in &case.photos {
            for sha in [photo, thumb] {
                let path = dir
                    .join("photos")
                    .join(&sha[..2])
                    .join(format!("{sha}.jpg"));
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("case {id}: photo file {sha} is missing"))?;
                ensure!(
                    gridcase_core::photo::sha256_hex(&bytes) == *sha,
                    "case {id}: photo file {sha} is not whole"
                );
            }
        }
    }
    for id in recorded {
        let case = view
            .cases
            .get(id)
            .with_context(|| format!("case {id}, reported saved, is gone"))?;
        ensure!(case.photos.len() == 1, "case {id} lost its photo row");
    }
    Ok(())
}

/// The server's side: every case is the terminal's, its steps a prefix of the
/// whole story (whole for every case reported saved), each op once, every
/// photo file whole, no partial upload left.
fn server_problems(
    server: &ServerProcess,
    snap: &ServerSnapshot,
    account: &str,
    recorded: &[CaseId],
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<OpId, usize> = BTreeMap::new();
    for o in &snap.ops {
        *seen.entry(o.op.id).or_default() += 1;
    }
    problems.extend(
        seen.iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| format!("op {id} is on the server {n} times")),
    );
    for (id, case) in &snap.cases {
        let kinds: Vec<&str> = snap.ops_of(id).iter().map(|o| o.op.kind.name()).collect();
        if case.reported_by != account || kinds.len() > WHOLE.len() || kinds != WHOLE[..kinds.len()]
        {
            problems.push(format!("case {id}: {kinds:?} by {}", case.reported_by));
        }
        for o in snap.ops_of(id) {
            if let gridcase_core::op::OpKind::AttachPhoto { photo, .. } = &o.op.kind {
                for (sha, bytes) in [
                    (&photo.sha256, photo.bytes),
                    (&photo.thumb_sha256, photo.thumb_bytes),
                ] {
                    match server.photo_file(sha).map(std::fs::read) {
                        Some(Ok(data))
                            if data.len() as u64 == bytes
                                && gridcase_core::photo::sha256_hex(&data) == *sha => {}
                        _ => {
                            problems.push(format!("server: photo file {sha} missing or not whole"))
                        }
                    }
                }
            }
        }
    }
    for id in recorded {
        match snap.cases.get(id) {
            None => problems.push(format!("reported case {id} is not on the server")),
            Some(c) => {
                let kinds: Vec<&str> = snap.ops_of(id).iter().map(|o| o.op.kind.name()).collect();
                if kinds != WHOLE || c.status != "received" {
                    problems.push(format!("reported case {id} is {} with {kinds:?}", c.status));
                }
            }
        }
    }
    let partial = server.partial_uploads();
    if !partial.is_empty() {
        problems.push(format!("server: partial uploads left: {partial:?}"));
    }
    Ok(problems)
}

/// Each server abort point and the passes at which it fires. A sync of a
/// case with a photo writes the upload's chunks (two or three), then one
/// commit for the push; the test's second case (no photo) one more commit.
fn server_plan() -> Vec<(&'static str, u64)> {
    let mut plan = Vec::new();
    for &point in failpoint::SERVER {
        let passes: &[u64] = match point {
            failpoint::SERVER_AFTER_UPLOAD_CHUNK => &[1, 2],
            _ => &[1, 2],
        };
        plan.extend(passes.iter().map(|&n| (point, n)));
    }
    plan
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_or_doubled_when_the_server_dies_at_each_abort_point(
) -> Result<()> {
    let started = Instant::now();
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let grids = gridcase_tests::server::fixture_grids();
    gridcase_tests::server::admin_in(
        &data,
        &["admin", "import-grids", grids.to_str().context("utf-8")?],
    )?;
    let mut server = ServerProcess::start_in(&data)?;
    let proxy = FaultProxy::start(server.addr, 1).await?;
    let leader = server.create_leader("服务器断电", &[G01])?;
    let d = SimDevice::open("server-crash")?;
    d.enrol(&proxy.url, &leader.code).await?;
    let account = d.account_id()?;
    server.stop()?;

    // The test's log: what the terminal recorded, and which ops the server
    // acknowledged (the terminal holds them as accepted).
    let mut recorded: Vec<CaseId> = Vec::new();
    let mut i = 0u64;
    for (point, pass) in server_plan() {
        let armed = format!("{point}@{pass}");
        server = ServerProcess::start_in_with_env(&data, &[(failpoint::ENV, &armed)])?;
        proxy.set_upstream(server.addr);
        // Work until the server dies at its abort point.
        let mut died = None;
        for _ in 0..4 {
            i += 1;
            let case = d.new_case(&format!("服务器断电 {i}"), point_in(G01, i))?;
            let photo = gridcase_tests::load::camera_photo(i);
            d.add_photo(&case.id, photo).await?;
            d.terminal.submit_case(&case.id)?;
            recorded.push(case.id);
            let _ = d.sync().await;
            if let Some(status) = server.wait_exit(Duration::from_millis(200))? {
                died = Some(status);
                break;
            }
        }
        let status = died.with_context(|| format!("{armed}: the server never got there"))?;
        let log = server.log_tail();
        ensure!(
            status.signal() == Some(libc::SIGABRT),
            "{armed}: the server ended otherwise ({status}):\n{log}"
        );
        let acknowledged: BTreeSet<OpId> = d
            .view()?
            .cases
            .values()
            .flat_map(|c| c.ops.iter())
            .filter(|o| o.origin == "local" && o.server_seq.is_some())
            .map(|o| o.op.id)
            .collect();
        // What the server acknowledged before it died is there after it.
        let snap = ServerSnapshot::read(&data.join("gridcase.db"))?;
        let held: BTreeSet<OpId> = snap.ops.iter().map(|o| o.op.id).collect();
        let lost: Vec<_> = acknowledged.difference(&held).collect();
        ensure!(lost.is_empty(), "{armed}: acknowledged ops lost: {lost:?}");

        // Back up; the terminal sends what waits, once.
        server = ServerProcess::start_in(&data)?;
        proxy.set_upstream(server.addr);
        d.sync_until_idle_retrying(10)
            .await
            .context(armed.clone())?;
        let snap = server.snapshot()?;
        let problems = server_problems(&server, &snap, &account, &recorded)?;
        ensure!(problems.is_empty(), "{armed}:\n{}", problems.join("\n"));
        match compare_with_server(&d, &snap)? {
            Ok(n) => ensure!(n.rejected == 0, "{armed}: {} ops refused", n.rejected),
            Err(diffs) => bail!("{armed}:\n{}", diffs.join("\n")),
        }
        server.stop()?;
    }
    let ok = integrity_check(&data.join("gridcase.db"))?;
    ensure!(ok == "ok", "integrity_check: {ok}");
    eprintln!(
        "server abort points: {} crashes, {} cases, {:.1} s",
        server_plan().len(),
        recorded.len(),
        started.elapsed().as_secs_f64()
    );
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
