//! The dead battery: the terminal's store and photo files, and the server's
//! database and photo files, run on a storage layer that drops every write
//! not yet fsynced when the power is cut (`gridcase_tests::power_loss`).
//! Everything acknowledged before the cut survives it: each case the
//! terminal said it saved, whole, with its photo files; each op the server
//! said it accepted, with its photo. And with any one fsync missing
//! (SQLite's, a photo file's, a photo folder's), the same checks fail: the
//! test can tell.

use std::path::Path;

use anyhow::{Context, Result};
use gridcase_core::ids::{CaseId, OpId};
use gridcase_core::op::OpKind;
use gridcase_core::photo::sha256_hex;
use gridcase_core::{GeoPoint, Terminal, TerminalConfig};
use gridcase_tests::device::{integrity_check, point_in, SimDevice, G01};
use gridcase_tests::power_loss::{cut_power, lock, power_on, Skip};
use gridcase_tests::server::{fixture_grids, ServerSnapshot};

const ROUNDS: usize = 3;
const CASES_PER_ROUND: usize = 2;

/// Records cases, cuts the power right after the last one was acknowledged,
/// reopens, checks; three times on the same folder. The problems found.
fn terminal_scenario(skip: Skip) -> Result<Vec<String>> {
    power_on(skip);
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let point = GeoPoint::new(42.9, 125.1, 5.0)?;
    let mut acknowledged: Vec<CaseId> = Vec::new();
    let mut problems = Vec::new();
    for round in 0..ROUNDS {
        let t = Terminal::open(dir.path(), TerminalConfig::new("dead-battery"))?;
        for i in 0..CASES_PER_ROUND {
            let n = (round * CASES_PER_ROUND + i) as u32;
            let id = gridcase_tests::record_field_case(
                &t,
                &rt,
                format!("断电前保存的事件 {n}"),
                point,
                (480, 360, n),
            )?;
            acknowledged.push(id);
        }
        cut_power();
        drop(t);
        power_on(skip);
        problems.extend(check_terminal(dir.path(), &acknowledged, round));
        if !problems.is_empty() {
            break;
        }
    }
    Ok(problems)
}

fn check_terminal(dir: &Path, acknowledged: &[CaseId], round: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let t = match Terminal::open(dir, TerminalConfig::new("dead-battery")) {
        Ok(t) => t,
        Err(e) => return vec![format!("round {round}: the terminal does not open: {e}")],
    };
    for id in acknowledged {
        let d = match t.case_detail_blocking(id) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("round {round}: saved case {id} is gone: {e}"));
                continue;
            }
        };
        let kinds: Vec<&str> = d.timeline.iter().map(|e| e.op.kind.code()).collect();
        if kinds != ["create", "attach_photo", "submit"] {
            problems.push(format!("round {round}: case {id} holds {kinds:?}"));
        }
        if d.photos.len() != 1 {
            problems.push(format!(
                "round {round}: case {id} has {} photos",
                d.photos.len()
            ));
        }
        for p in &d.photos {
            for (path, sha) in [
                (&p.path, &p.row.photo.sha256),
                (&p.thumb_path, &p.row.photo.thumb_sha256),
            ] {
                match std::fs::read(path) {
                    Ok(bytes) if sha256_hex(&bytes) == *sha => {}
                    Ok(bytes) => problems.push(format!(
                        "round {round}: case {id}: photo file {sha} has {} bytes of something else",
                        bytes.len()
                    )),
                    Err(_) => problems.push(format!(
                        "round {round}: case {id}: photo file {sha} is gone"
                    )),
                }
            }
        }
    }
    match integrity_check(t.store().path()) {
        Ok(ok) if ok == "ok" => {}
        other => problems.push(format!("round {round}: integrity_check: {other:?}")),
    }
    problems
}

#[test]
fn what_the_terminal_saved_survives_a_power_cut() -> Result<()> {
    let _one = lock();
    let problems = terminal_scenario(Skip::Nothing)?;
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[test]
fn without_any_one_fsync_the_terminal_loses_what_it_saved() -> Result<()> {
    let _one = lock();
    for skip in [Skip::SqliteSync, Skip::PhotoFileSync, Skip::PhotoDirSync] {
        let problems = terminal_scenario(skip)?;
        eprintln!("without {skip:?}: {:?}", problems.first());
        anyhow::ensure!(
            !problems.is_empty(),
            "with {skip:?} skipped the power cut lost nothing: the test could not tell"
        );
    }
    power_on(Skip::Nothing);
    Ok(())
}

/// A terminal pushes cases with photos to a server running in this process,
/// both on the layer; the power is cut right after the sync's answer. What
/// the server acknowledged (ops the terminal was told were accepted, kept in
/// the test's own log) is in the server's database after the cut, each photo
/// file whole. The problems found.
async fn server_scenario(skip: Skip) -> Result<Vec<String>> {
    power_on(skip);
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("server");
    let mut admin = gridcase_server::admin::Admin::open(&data)?;
    admin.import_grids(&std::fs::read_to_string(fixture_grids())?)?;
    let leader = admin.create_leader("断电网格员", &[G01.to_string()], gridcase_core::time::DAY)?;
    drop(admin);
    let config = gridcase_server::Config {
        data_dir: data.clone(),
        centre: gridcase_server::centre::CentreConfig {
            scheduler_period: None,
            ..Default::default()
        },
        ..Default::default()
    };
    let state = gridcase_server::AppState::open(&config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gridcase_server::serve_on(listener, state, async {
        let _ = stopped.await;
    }));

    let d = SimDevice::open("dead-battery-server")?;
    d.enrol(&url, &leader.code).await?;
    for i in 0..3u64 {
        let case = d.new_case(&format!("服务器断电 {i}"), point_in(G01, i))?;
        d.add_photo(&case.id, gridcase_tests::sample_jpeg(480, 360, i as u32))
            .await?;
        d.terminal.submit_case(&case.id)?;
    }
    d.sync_until_idle(4).await?;
    // The test's log: every op the server acknowledged, with its photo files.
    let mut acknowledged: Vec<OpId> = Vec::new();
    let mut files: Vec<(String, u64)> = Vec::new();
    for c in d.view()?.cases.values() {
        for o in c.ops.iter().filter(|o| o.origin == "local") {
            if o.server_seq.is_some() {
                acknowledged.push(o.op.id);
            }
            if let OpKind::AttachPhoto { photo, .. } = &o.op.kind {
                files.push((photo.sha256.clone(), photo.bytes));
                files.push((photo.thumb_sha256.clone(), photo.thumb_bytes));
            }
        }
    }
    anyhow::ensure!(
        acknowledged.len() == 9,
        "{} ops acknowledged",
        acknowledged.len()
    );

    cut_power();
    let _ = stop.send(());
    let _ = server.await;
    drop(d);
    power_on(skip);

    let mut problems = Vec::new();
    let db = data.join("gridcase.db");
    match ServerSnapshot::read(&db) {
        Ok(snap) => {
            let held: std::collections::BTreeSet<OpId> = snap.ops.iter().map(|o| o.op.id).collect();
            let lost = acknowledged.iter().filter(|id| !held.contains(id)).count();
            if lost > 0 {
                problems.push(format!("{lost} acknowledged ops are gone from the server"));
            }
        }
        Err(e) => problems.push(format!("the server's database does not read: {e:#}")),
    }
    for (sha, bytes) in &files {
        let path = data.join("photos").join(&sha[..2]).join(sha);
        match std::fs::read(&path) {
            Ok(b) if b.len() as u64 == *bytes && sha256_hex(&b) == *sha => {}
            Ok(b) => problems.push(format!(
                "server photo {sha}: {} bytes of something else",
                b.len()
            )),
            Err(_) => problems.push(format!("server photo {sha} is gone")),
        }
    }
    if problems.is_empty() {
        let ok = integrity_check(&db).context("integrity_check")?;
        if ok != "ok" {
            problems.push(format!("integrity_check: {ok}"));
        }
    }
    Ok(problems)
}

// One test at a time on the process's storage layer, across the awaits.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_server_acknowledged_survives_a_power_cut() -> Result<()> {
    let _one = lock();
    let problems = server_scenario(Skip::Nothing).await?;
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_any_one_fsync_the_server_loses_what_it_acknowledged() -> Result<()> {
    let _one = lock();
    for skip in [Skip::SqliteSync, Skip::PhotoFileSync, Skip::PhotoDirSync] {
        let problems = server_scenario(skip).await?;
        eprintln!("without {skip:?}: {:?}", problems.first());
        anyhow::ensure!(
            !problems.is_empty(),
            "with {skip:?} skipped the power cut lost nothing: the test could not tell"
        );
    }
    power_on(Skip::Nothing);
    Ok(())
}
