//! Sync when things go wrong in a particular way, against the real server:
//! two terminals change the same case offline (the server's order wins, the
//! loser's step is kept and marked), and recoveries that do not work today.
//!
//! The tests marked `#[ignore = "BUG: …"]` fail on the current core and
//! server; each says what goes wrong. Run them with
//! `cargo test -p gridcase-tests --test sync_recovery -- --ignored`.

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use gridcase_core::case::CaseStatus;
use gridcase_core::store::OpSyncState;
use gridcase_core::sync::SyncError;
use gridcase_core::CaseId;
use gridcase_tests::device::{compare_with_server, point_in, SimDevice, G01, G02};
use gridcase_tests::fault_proxy::{Fault, FaultProxy};
use gridcase_tests::server::{admin_in, fixture_grids, ServerProcess};

fn check_same(d: &SimDevice, server: &ServerProcess) -> Result<usize> {
    match compare_with_server(d, &server.snapshot()?)? {
        Ok(n) => Ok(n.rejected),
        Err(diffs) => bail!("{}", diffs.join("\n")),
    }
}

/// Two grid leaders of the same grid check the same resolved case offline
/// and disagree. The first to sync wins; the other's verification is refused
/// by the server, kept on its timeline with the reason, and its terminal shows
/// the server's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_steps_offline_end_in_the_servers_order() -> Result<()> {
    let server = ServerProcess::start()?;
    let a = SimDevice::open("leader-a")?;
    let b = SimDevice::open("leader-b")?;
    for d in [&a, &b] {
        let leader = server.create_leader(&d.name, &[G01])?;
        d.enrol(&server.url, &leader.code).await?;
    }
    let case = a.new_case("井盖破损", point_in(G01, 3))?;
    a.terminal.submit_case(&case.id)?;
    a.sync_until_idle(4).await?;
    server.dispatch(&case.id, "市政管理处", 24)?;
    server.resolve(&case.id, "已更换井盖")?;
    a.sync_until_idle(4).await?;
    b.sync_until_idle(4).await?;

    // Offline, both check on site: A finds it done, B does not.
    a.terminal
        .verify_case(&case.id, true, "已修复", vec![], None)?;
    b.terminal
        .verify_case(&case.id, false, "仍有积水", vec![], None)?;
    ensure!(b.terminal.case_detail_blocking(&case.id)?.case.status == CaseStatus::Reopened);
    let r = a.sync().await?;
    ensure!(r.ops_accepted == 1, "{r:?}");
    let r = b.sync().await?;
    ensure!(r.ops_rejected == 1 && r.ops_waiting == 0, "{r:?}");
    b.sync_until_idle(4).await?;
    a.sync_until_idle(4).await?;

    let seen = b.terminal.case_detail_blocking(&case.id)?;
    ensure!(
        seen.case.status == CaseStatus::Verified,
        "B shows the server's state: {:?}",
        seen.case.status
    );
    let refused: Vec<_> = seen
        .timeline
        .iter()
        .filter(|e| e.sync == OpSyncState::Rejected)
        .collect();
    ensure!(refused.len() == 1, "B keeps its refused step");
    ensure!(
        refused[0]
            .reject_reason
            .as_deref()
            .is_some_and(|r| r.contains("not_allowed")),
        "{:?}",
        refused[0].reject_reason
    );
    ensure!(check_same(&a, &server)? == 0);
    ensure!(check_same(&b, &server)? == 1);
    Ok(())
}

/// BUG (server `sync-server/src/accounts.rs` `enrol`, with the terminal's
/// `core/src/terminal/sync.rs` `Terminal::enrol`): enrolment is not
/// idempotent. If the answer to `POST /v1/enrol` is lost (the server
/// committed: code marked used, device created), the terminal cannot retry:
/// the same code is now `enrol_code_used`, and the grid leader must go back
/// to the centre for a new code. In a basement with one bar of signal this is
/// the first thing a grid leader does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "BUG: a lost enrolment answer burns the one-time code (enrol_code_used on retry)"]
async fn enrolment_survives_a_lost_answer() -> Result<()> {
    let server = ServerProcess::start()?;
    let proxy = FaultProxy::start(server.addr, 7).await?;
    let leader = server.create_leader("地下室网格员", &[G01])?;
    let d = SimDevice::open("basement")?;
    proxy.fail_next("/v1/enrol", Fault::LoseResponse, 1);
    let first = d.terminal.enrol(&proxy.url, &leader.code, "basement").await;
    ensure!(
        matches!(first, Err(SyncError::ServerUnavailable { .. })),
        "{first:?}"
    );
    // The terminal (or the grid leader) tries again with the same code.
    let again = d.terminal.enrol(&proxy.url, &leader.code, "basement").await;
    let account = again.context("enrolling again after a lost answer")?;
    ensure!(account.account_id == leader.account_id);
    Ok(())
}

/// BUG (`core/src/terminal/sync.rs`, `Terminal::enrol`): the account is saved
/// before the grid map is fetched, and the map is fetched nowhere else. If
/// `GET /v1/grids` fails, `enrol` returns an error although the terminal is
/// enrolled; enrolling again fails (`enrol_code_used`), and syncing never
/// fetches the map, so the terminal places no case in a grid and the app
/// shows no map until the centre issues a new code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "BUG: a failed grid map download at enrolment is never retried"]
async fn a_grid_map_that_failed_to_download_at_enrolment_arrives_later() -> Result<()> {
    let server = ServerProcess::start()?;
    let proxy = FaultProxy::start(server.addr, 7).await?;
    let leader = server.create_leader("信号差的网格员", &[G01])?;
    let d = SimDevice::open("weak-signal")?;
    proxy.fail_next("/v1/grids", Fault::Answer503, 1);
    let first = d
        .terminal
        .enrol(&proxy.url, &leader.code, "weak-signal")
        .await;
    ensure!(first.is_err(), "{first:?}");
    ensure!(
        d.terminal.store().sync_account()?.is_some(),
        "half enrolled: the account is saved"
    );
    // What an app can do: try enrolling again, and sync.
    let again = d
        .terminal
        .enrol(&proxy.url, &leader.code, "weak-signal")
        .await;
    eprintln!("enrolling again: {again:?}");
    d.sync_until_idle(4).await?;
    let units = d.terminal.grids().units().len();
    ensure!(units > 0, "the terminal still has no grid map");
    let case = d.new_case("路面塌陷", point_in(G01, 1))?;
    ensure!(case.grid_id.as_deref() == Some(G01), "{:?}", case.grid_id);
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}

/// BUG (server and terminal): after the server's database is restored from
/// a backup, a terminal whose cursor is past the restored horizon skips the
/// ops the restored server numbers below its old cursor: here a colleague's
/// new case and the centre's dispatch of a known case never reach it.
///
/// - `sync-server/src/sync.rs` `pull`: `from = cursor.min(horizon)` brings
///   the cursor back to the *current* horizon, which already includes every
///   op numbered since the restore: those are skipped even by a terminal that
///   took the answer's cursor.
/// - `core/src/store/sync.rs` `apply_sync`: `cursor = max(cursor, ?1)` does
///   not even take the answer's cursor, so the terminal keeps asking from its
///   old one.
/// - Re-pulling from 0 instead fails for good: the restored server reuses the
///   numbers of the ops it lost, and the terminal's unique index
///   `ops_by_server_seq` (`core/src/store/migrations/0003_sync_state.sql`)
///   refuses the pulled op (`UNIQUE constraint failed: ops.server_seq`).
///
/// Suggested fix: give the server's history an id (random, made with the
/// database, changed by the restore procedure) sent with every cursor; on a
/// different id the terminal clears the numbers it holds, pulls from 0
/// (ignoring op ids it has) and puts its own ops back in the outbox (the
/// server dedups by op id and re-applies those the restore lost, which the
/// terminal otherwise believes synced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "BUG: after the server is restored from a backup, terminals skip new ops"]
async fn terminals_follow_a_server_restored_from_a_backup() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let backup = tmp.path().join("backup");
    let grids = fixture_grids();
    admin_in(
        &data,
        &["admin", "import-grids", grids.to_str().context("utf-8")?],
    )?;
    let mut server = ServerProcess::start_in(&data)?;
    // The terminals talk to the proxy, which follows the server's restarts.
    let proxy = FaultProxy::start(server.addr, 7).await?;
    let a = SimDevice::open("leader-a")?;
    let b = SimDevice::open("leader-b")?;
    let c = SimDevice::open("leader-c")?;
    for d in [&a, &b, &c] {
        let leader = server.create_leader(&d.name, &[G01])?;
        d.enrol(&proxy.url, &leader.code).await?;
    }
    let first = a.new_case("备份前的事件", point_in(G01, 1))?;
    a.terminal.submit_case(&first.id)?;
    a.sync_until_idle(4).await?;
    b.sync_until_idle(4).await?;

    // Nightly backup (server stopped for a consistent copy).
    server.stop()?;
    copy_dir(&data, &backup)?;
    server = ServerProcess::start_in(&data)?;
    proxy.set_upstream(server.addr);

    // A day's work, then the disk dies and the backup is restored.
    for i in 0..3 {
        let c = a.new_case(&format!("备份后的事件 {i}"), point_in(G01, 10 + i))?;
        a.terminal.submit_case(&c.id)?;
    }
    a.sync_until_idle(4).await?;
    b.sync_until_idle(4).await?;
    let cursor_before = b.view()?.cursor;
    server.stop()?;
    std::fs::remove_dir_all(&data)?;
    copy_dir(&backup, &data)?;
    server = ServerProcess::start_in(&data)?;
    proxy.set_upstream(server.addr);

    // Life goes on on the restored server.
    let fresh = c.new_case("恢复后的新事件", point_in(G01, 40))?;
    c.terminal.submit_case(&fresh.id)?;
    c.sync_until_idle(4).await?;
    server.dispatch(&first.id, "市政管理处", 24)?;
    let horizon = server
        .snapshot()?
        .ops
        .iter()
        .map(|o| o.seq)
        .max()
        .unwrap_or(0);
    eprintln!("B's cursor {cursor_before}, restored server's horizon {horizon}");

    b.sync_until_idle(4).await?;
    let seen: Vec<CaseId> = b.listed_case_ids()?.into_iter().collect();
    ensure!(
        seen.contains(&fresh.id),
        "B never receives the colleague's new case (its cursor {} stays past the restored horizon {horizon})",
        b.view()?.cursor
    );
    let status = b.terminal.case_detail_blocking(&first.id)?.case.status;
    ensure!(
        status == CaseStatus::Dispatched,
        "B shows the first case as {status:?}"
    );
    Ok(())
}

/// The fixture's map with grids G01 and G02 swapped (and G01's micro-grids
/// dropped): every case of G01 now lies in G02 and the other way round.
fn swapped_map() -> Result<String> {
    let mut map: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_grids())?)?;
    let features = map["features"].as_array_mut().context("features")?;
    features.retain(|f| f["properties"]["level"] != "micro_grid");
    for f in features.iter_mut() {
        let id = f["properties"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if id == G01 {
            f["properties"]["id"] = G02.into();
        } else if id == G02 {
            f["properties"]["id"] = G01.into();
        }
    }
    Ok(serde_json::to_string(&map)?)
}

/// GAP (`sync-server/src/cases.rs`, `replace_all`/`renumber`, and the pull
/// protocol): when a new map moves a case to another grid, the terminals of
/// the new grid receive its whole history, but the terminals of the old grid
/// are never told that it left them. They keep showing it, frozen in the
/// state it had: here the centre dispatches it and the old grid's terminal
/// still shows it as received, forever. A pull needs a way to say "this case
/// is no longer yours" (a tombstone entry in the sequence for the accounts
/// that lost it), and the terminal a way to drop or mark it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "GAP: a case moved out of a grid by a new map stays, frozen, on the old grid's terminals"]
async fn a_case_moved_to_another_grid_leaves_the_old_grids_terminals() -> Result<()> {
    let server = ServerProcess::start()?;
    let a = SimDevice::open("g1-reporter")?;
    let b = SimDevice::open("g1-colleague")?;
    let c = SimDevice::open("g2-leader")?;
    for (d, grid) in [(&a, G01), (&b, G01), (&c, G02)] {
        let leader = server.create_leader(&d.name, &[grid])?;
        d.enrol(&server.url, &leader.code).await?;
    }
    let case = a.new_case("围墙开裂", point_in(G01, 5))?;
    a.terminal.submit_case(&case.id)?;
    for d in [&a, &b, &c] {
        d.sync_until_idle(4).await?;
    }
    ensure!(b.listed_case_ids()?.contains(&case.id));

    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), swapped_map()?)?;
    server.admin(&[
        "admin",
        "import-grids",
        file.path().to_str().context("utf-8")?,
    ])?;
    server.dispatch(&case.id, "住建局", 24)?;
    for d in [&a, &b, &c] {
        d.sync_until_idle(4).await?;
    }
    // The new grid has it, whole and current.
    ensure!(c.terminal.case_detail_blocking(&case.id)?.case.status == CaseStatus::Dispatched);
    check_same(&c, &server)?;
    check_same(&a, &server)?;
    // The old grid's colleague still shows it, as it was.
    let stale = b
        .terminal
        .case_detail_blocking(&case.id)
        .ok()
        .map(|d| d.case.status);
    eprintln!("the old grid's terminal shows the case as {stale:?}");
    check_same(&b, &server)?;
    Ok(())
}
