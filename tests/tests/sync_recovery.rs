//! Sync when things go wrong in a particular way, against the real server:
//! two terminals change the same case offline (the server's order wins, the
//! loser's step is kept and marked), a lost enrolment answer, a grid map that
//! failed to download, a server restored from a backup, and a case that a new
//! map moves out of a grid.

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

/// The first thing a grid leader does, often with one bar of signal: enrol.
/// If the server committed but the answer was lost, the same code still works
/// from the same terminal (it sends its enrolment key), and the terminal ends
/// up with one device on the server, not two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_survives_a_lost_answer() -> Result<()> {
    let server = ServerProcess::start()?;
    let proxy = FaultProxy::start(server.addr, 7).await?;
    let leader = server.create_leader("地下室网格员", &[G01])?;
    let d = SimDevice::open("basement")?;
    // More losses in a row than the terminal retries by itself.
    proxy.fail_next("/v1/enrol", Fault::LoseResponse, 4);
    let first = d.terminal.enrol(&proxy.url, &leader.code, "basement").await;
    ensure!(
        matches!(first, Err(SyncError::ServerUnavailable { .. })),
        "{first:?}"
    );
    // The grid leader taps "enrol" again with the same code.
    let again = d.terminal.enrol(&proxy.url, &leader.code, "basement").await;
    let account = again.context("enrolling again after a lost answer")?;
    ensure!(account.account_id == leader.account_id);
    let case = d.new_case("地下室漏水", point_in(G01, 2))?;
    d.terminal.submit_case(&case.id)?;
    d.sync_until_idle(4).await?;
    let devices = server.admin(&["admin", "list-devices", "--json"])?;
    let devices: serde_json::Value = serde_json::from_str(&devices)?;
    ensure!(
        devices.as_array().map(Vec::len) == Some(1),
        "one device on the server: {devices}"
    );
    ensure!(check_same(&d, &server)? == 0);
    Ok(())
}

/// The grid map cannot be downloaded at enrolment (the server answers 503).
/// The terminal is enrolled all the same, and the next sync brings the map,
/// after which cases are placed in their grid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_map_that_failed_to_download_at_enrolment_arrives_later() -> Result<()> {
    let server = ServerProcess::start()?;
    let proxy = FaultProxy::start(server.addr, 7).await?;
    let leader = server.create_leader("信号差的网格员", &[G01])?;
    let d = SimDevice::open("weak-signal")?;
    proxy.fail_next("/v1/grids", Fault::Answer503, 4);
    d.terminal
        .enrol(&proxy.url, &leader.code, "weak-signal")
        .await
        .context("enrolled although the map did not come")?;
    ensure!(d.terminal.grids().units().is_empty(), "no map yet");
    d.sync_until_idle(4).await?;
    let units = d.terminal.grids().units().len();
    ensure!(units > 0, "the terminal still has no grid map");
    let case = d.new_case("路面塌陷", point_in(G01, 1))?;
    ensure!(case.grid_id.as_deref() == Some(G01), "{:?}", case.grid_id);
    // The map is not fetched again while it stays the same.
    d.sync_until_idle(4).await?;
    let r = d.sync().await?;
    ensure!(r.requests == 1, "{r:?}");
    Ok(())
}

/// The server's disk dies and last night's backup is put back with
/// `gridcase-server admin restore`. Terminals synced past the backup notice
/// that the server's history changed, pull everything again, and send again
/// what the restore lost: a colleague's new case and the centre's dispatch
/// reach everyone, and the cases recorded after the backup are back on the
/// server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

    // Nightly backup, taken while the server runs.
    admin_in(
        &data,
        &["admin", "backup", backup.to_str().context("utf-8")?],
    )?;

    // A day's work, then the disk dies and the backup is restored.
    let mut after_backup = Vec::new();
    for i in 0..3 {
        let c = a.new_case(&format!("备份后的事件 {i}"), point_in(G01, 10 + i))?;
        a.terminal.submit_case(&c.id)?;
        after_backup.push(c.id);
    }
    a.sync_until_idle(4).await?;
    b.sync_until_idle(4).await?;
    let cursor_before = b.view()?.cursor;
    server.stop()?;
    std::fs::remove_dir_all(&data)?;
    admin_in(
        &data,
        &["admin", "restore", backup.to_str().context("utf-8")?],
    )?;
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

    for d in [&b, &a, &c, &b] {
        d.sync_until_idle(6).await?;
    }
    let seen: Vec<CaseId> = b.listed_case_ids()?.into_iter().collect();
    ensure!(
        seen.contains(&fresh.id),
        "B receives the colleague's new case"
    );
    let status = b.terminal.case_detail_blocking(&first.id)?.case.status;
    ensure!(
        status == CaseStatus::Dispatched,
        "B shows the first case as {status:?}"
    );
    let on_server = server.snapshot()?;
    for id in &after_backup {
        ensure!(
            on_server.cases.contains_key(id),
            "A sent again the case {id} the restore lost"
        );
        ensure!(b.listed_case_ids()?.contains(id));
    }
    for d in [&a, &b, &c] {
        ensure!(check_same(d, &server)? == 0, "{} differs", d.name);
    }
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

/// A new map moves a case from G01 to G02. The new grid's terminal receives
/// its whole history; the old grid's colleague is told it left and drops it;
/// its reporter keeps following it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
    ensure!(a.terminal.case_detail_blocking(&case.id)?.case.status == CaseStatus::Dispatched);
    ensure!(
        !b.listed_case_ids()?.contains(&case.id),
        "the old grid's terminal no longer lists it"
    );
    ensure!(b.terminal.case_detail_blocking(&case.id).is_err());
    // The new map reached the terminals with their next sync: G01 is now
    // where G02 was.
    let placed = a.terminal.grid_of(&point_in(G02, 1))?.map(|u| u.id);
    ensure!(placed.as_deref() == Some(G01), "{placed:?}");
    for d in [&a, &b, &c] {
        ensure!(check_same(d, &server)? == 0, "{} differs", d.name);
    }
    Ok(())
}

/// A new map moves a case out of G01 while a G01 colleague holds unsent work
/// on it (an on-site check made offline). The colleague's terminal keeps the
/// case and its step: the server refuses the step (the case is no longer the
/// colleague's to see), and the refusal shows on the timeline with its
/// reason; nothing the colleague did is dropped silently. The reporter and
/// the new grid see the case as the server has it, without that step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_leaving_a_grid_keeps_the_unsent_work_on_it() -> Result<()> {
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
    a.sync_until_idle(4).await?;
    server.dispatch(&case.id, "住建局", 24)?;
    server.resolve(&case.id, "已加固")?;
    b.sync_until_idle(4).await?;
    ensure!(b.terminal.case_detail_blocking(&case.id)?.case.status == CaseStatus::Resolved);

    // Offline, the colleague checks it on site; meanwhile the map moves it.
    b.terminal
        .verify_case(&case.id, false, "裂缝仍在扩大", vec![], None)?;
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), swapped_map()?)?;
    server.admin(&[
        "admin",
        "import-grids",
        file.path().to_str().context("utf-8")?,
    ])?;

    let r = b.sync().await?;
    ensure!(r.ops_rejected == 1 && r.ops_waiting == 0, "{r:?}");
    b.sync_until_idle(4).await?;
    let kept = b
        .terminal
        .case_detail_blocking(&case.id)
        .context("the colleague's terminal dropped the case with its unsent step")?;
    ensure!(
        b.listed_case_ids()?.contains(&case.id),
        "the case is hidden from the colleague's list"
    );
    let refused: Vec<_> = kept
        .timeline
        .iter()
        .filter(|e| e.sync == OpSyncState::Rejected)
        .collect();
    ensure!(
        refused.len() == 1 && refused[0].op.kind.name() == "verify",
        "the refused check is on the timeline: {:?}",
        kept.timeline
            .iter()
            .map(|e| (e.op.kind.name(), e.sync))
            .collect::<Vec<_>>()
    );
    ensure!(
        refused[0]
            .reject_reason
            .as_deref()
            .is_some_and(|r| !r.is_empty()),
        "with its reason: {:?}",
        refused[0].reject_reason
    );
    // The server never took the step; the others see its state.
    for d in [&a, &c] {
        d.sync_until_idle(4).await?;
        let seen = d.terminal.case_detail_blocking(&case.id)?;
        ensure!(
            seen.case.status == CaseStatus::Resolved,
            "{} shows {:?}",
            d.name,
            seen.case.status
        );
        ensure!(check_same(d, &server)? == 0, "{} differs", d.name);
    }
    let on_server = server.snapshot()?;
    ensure!(
        on_server
            .ops_of(&case.id)
            .iter()
            .all(|o| o.op.kind.name() != "verify"),
        "the server holds the refused check"
    );
    Ok(())
}
