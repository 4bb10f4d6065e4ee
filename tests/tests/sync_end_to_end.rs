//! The whole sync story against the real `gridcase-server` binary on an
//! ephemeral port: three terminals (two grid leaders of grid G01, one of G02)
//! record cases with photos offline, then sync. The other G01 terminal sees
//! the G01 cases with their photo files (same SHA-256); the G02 terminal does
//! not. The centre's steps (dispatch, chase, resolve, run as admin commands)
//! reach the reporter; the reporter's verification (with a follow-up photo)
//! and the resident's rating go back up, and the server lists the case as
//! rated. A draft stays its reporter's own until submitted, then reaches the
//! grid with its whole history. At the end every terminal holds exactly what
//! the server shows it.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use gridcase_core::case::{CaseStatus, Face};
use gridcase_core::op::OpKind;
use gridcase_core::photo::sha256_hex;
use gridcase_tests::device::{compare_with_server, point_in, SimDevice, G01, G02};
use gridcase_tests::sample_jpeg;
use gridcase_tests::server::ServerProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_photos_and_the_centres_steps_flow_between_terminals_and_server() -> Result<()> {
    let started = Instant::now();
    let server = ServerProcess::start()?;
    let result = scenario(&server).await;
    if result.is_err() {
        eprintln!("server log:\n{}", server.log_tail());
    }
    result?;
    let status = server.stop()?;
    ensure!(
        status.success(),
        "the server did not stop cleanly: {status}"
    );
    eprintln!("sync end to end: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

async fn scenario(server: &ServerProcess) -> Result<()> {
    let leader_a = server.create_leader("张网格长", &[G01])?;
    let leader_b = server.create_leader("李网格员", &[G01])?;
    let leader_c = server.create_leader("王网格员", &[G02])?;
    let a = SimDevice::open("terminal-a")?;
    let b = SimDevice::open("terminal-b")?;
    let c = SimDevice::open("terminal-c")?;
    ensure!(a.enrol(&server.url, &leader_a.code).await? == leader_a.account_id);
    ensure!(b.enrol(&server.url, &leader_b.code).await? == leader_b.account_id);
    ensure!(c.enrol(&server.url, &leader_c.code).await? == leader_c.account_id);
    // The server's map came with the enrolment: each terminal places its cases.
    ensure!(a.terminal.grid_of(&point_in(G01, 1))?.map(|u| u.id) == Some(G01.to_string()));

    // Offline: nothing below talks to the server until the first sync.
    let manhole = a.new_case("暴雨后下水井塌陷", point_in(G01, 1))?;
    let p1 = a.add_photo(&manhole.id, sample_jpeg(800, 600, 1)).await?;
    let p2 = a.add_photo(&manhole.id, sample_jpeg(640, 480, 2)).await?;
    a.terminal.submit_case(&manhole.id)?;
    let leak = a.new_case("三楼卫生间漏水到二楼", point_in(G01, 7))?;
    a.add_photo(&leak.id, sample_jpeg(700, 500, 3)).await?;
    a.terminal.submit_case(&leak.id)?;
    let draft = a.new_case("楼道堆放杂物（草稿）", point_in(G01, 11))?;
    let lamp = b.new_case("路灯损坏夜间无照明", point_in(G01, 23))?;
    b.add_photo(&lamp.id, sample_jpeg(600, 600, 4)).await?;
    b.terminal.submit_case(&lamp.id)?;
    let noise = c.new_case("邻里噪音纠纷", point_in(G02, 5))?;
    c.add_photo(&noise.id, sample_jpeg(640, 640, 5)).await?;
    c.terminal.submit_case(&noise.id)?;
    ensure!(
        a.terminal.store().outbox_len()? == 8,
        "A's outbox holds its 8 ops"
    );
    ensure!(
        server.list_cases()?.is_empty(),
        "nothing reached the server yet"
    );

    // Back online: everyone syncs, twice round so each sees the others' work.
    for _ in 0..2 {
        for d in [&a, &b, &c] {
            d.sync_until_idle(4).await?;
        }
    }
    let listed = server.list_cases()?;
    let status_of = |id: &gridcase_core::CaseId| {
        listed
            .iter()
            .find(|c| c.case_id == id.to_string())
            .map(|c| (c.status.clone(), c.grid_id.clone()))
    };
    ensure!(listed.len() == 5, "the server lists {} cases", listed.len());
    for (id, status, grid) in [
        (&manhole.id, "received", G01),
        (&leak.id, "received", G01),
        (&draft.id, "draft", G01),
        (&lamp.id, "received", G01),
        (&noise.id, "received", G02),
    ] {
        ensure!(
            status_of(id) == Some((status.to_string(), Some(grid.to_string()))),
            "server: case {id} is {:?}",
            status_of(id)
        );
    }
    // The server's receive came back to the reporter.
    ensure!(a.terminal.case_detail_blocking(&manhole.id)?.case.status == CaseStatus::Received);

    // B, in the same grid, sees A's cases with the very same photo files.
    let seen = b.terminal.case_detail_blocking(&manhole.id)?;
    ensure!(seen.case.status == CaseStatus::Received);
    ensure!(
        seen.photos.len() == 2,
        "B sees {} photos",
        seen.photos.len()
    );
    for (theirs, mine) in seen.photos.iter().zip([&p1, &p2]) {
        ensure!(theirs.row.photo.sha256 == mine.row.photo.sha256);
        for (path, want) in [
            (&theirs.path, &mine.row.photo.sha256),
            (&theirs.thumb_path, &mine.row.photo.thumb_sha256),
        ] {
            let bytes = std::fs::read(path).with_context(|| format!("B's {}", path.display()))?;
            ensure!(&sha256_hex(&bytes) == want, "B's copy of {want} differs");
            ensure!(bytes == std::fs::read(a.terminal.photo_file(want)?)?);
        }
    }
    // A's draft stays A's own until submitted.
    let b_sees = b.listed_case_ids()?;
    ensure!(
        b_sees == [manhole.id, leak.id, lamp.id].into_iter().collect(),
        "B sees {b_sees:?}; manhole {}, leak {}, draft {}, lamp {}",
        manhole.id,
        leak.id,
        draft.id,
        lamp.id
    );
    ensure!(
        a.listed_case_ids()?.len() == 4,
        "A sees its 3 cases and B's"
    );
    // C, in G02, sees none of them; A and B do not see C's case.
    ensure!(c.listed_case_ids()? == [noise.id].into_iter().collect());
    ensure!(!a.listed_case_ids()?.contains(&noise.id));
    ensure!(!b.listed_case_ids()?.contains(&noise.id));

    // The centre dispatches, chases, and the department resolves.
    server.dispatch(&manhole.id, "市政管理处", 4)?;
    server.chase(&manhole.id, "雨季优先处理")?;
    server.resolve(&manhole.id, "井盖已更换")?;
    let r = a.sync_until_idle(4).await?;
    ensure!(
        r[0].ops_pulled == 4,
        "dispatch, chase, accept, resolve: {r:?}"
    );
    let d = a.terminal.case_detail_blocking(&manhole.id)?;
    ensure!(d.case.status == CaseStatus::Resolved, "{:?}", d.case.status);
    let municipal = server.department_id("市政管理处")?;
    ensure!(d.case.department.as_deref() == Some(municipal.as_str()));
    ensure!(d.case.chase_count == 1 && d.case.deadline.is_some());
    let kinds: Vec<&str> = d.timeline.iter().map(|e| e.op.kind.name()).collect();
    ensure!(
        kinds
            == [
                "create",
                "attach a photo to",
                "attach a photo to",
                "submit",
                "receive",
                "dispatch",
                "chase",
                "accept",
                "resolve"
            ],
        "{kinds:?}"
    );

    // On site: the grid leader checks with a photo, the resident rates.
    let after = a.add_photo(&manhole.id, sample_jpeg(800, 600, 6)).await?;
    a.terminal.verify_case(
        &manhole.id,
        true,
        "现场查看已修复",
        vec![after.row.photo.id],
        Some(point_in(G01, 1)),
    )?;
    a.terminal
        .rate_case(&manhole.id, Face::Smiley, "处理及时")?;
    let r = a.sync_until_idle(4).await?;
    ensure!(r[0].ops_accepted == 3 && r[0].ops_rejected == 0, "{r:?}");
    let listed = server.list_cases()?;
    let row = listed
        .iter()
        .find(|c| c.case_id == manhole.id.to_string())
        .context("listed")?;
    ensure!(
        row.status == "rated",
        "the server lists it as {}",
        row.status
    );
    ensure!(row.department_name.as_deref() == Some("市政管理处"));

    // B sees the outcome, with the follow-up photo.
    b.sync_until_idle(4).await?;
    let seen = b.terminal.case_detail_blocking(&manhole.id)?;
    ensure!(seen.case.status == CaseStatus::Rated);
    ensure!(seen.case.verification.as_ref().is_some_and(|v| v.done));
    ensure!(seen.photos.len() == 3 && seen.photos.iter().all(|p| p.path.is_file()));
    ensure!(seen.timeline.iter().any(|e| matches!(
        &e.op.kind,
        OpKind::Rate {
            face: Face::Smiley,
            ..
        }
    )));

    // The draft, submitted at last, reaches B with its whole history.
    a.terminal.submit_case(&draft.id)?;
    a.sync_until_idle(4).await?;
    b.sync_until_idle(4).await?;
    let seen = b.terminal.case_detail_blocking(&draft.id)?;
    ensure!(seen.case.status == CaseStatus::Received);
    let kinds: Vec<&str> = seen.timeline.iter().map(|e| e.op.kind.name()).collect();
    ensure!(kinds == ["create", "submit", "receive"], "{kinds:?}");

    // Everyone settled: each terminal holds exactly what the server shows it.
    for d in [&a, &b, &c] {
        d.sync_until_idle(4).await?;
    }
    let snap = server.snapshot()?;
    for d in [&a, &b, &c] {
        match compare_with_server(d, &snap)? {
            Ok(n) if n.rejected > 0 => anyhow::bail!("{}: {} ops refused", d.name, n.rejected),
            Ok(n) => eprintln!(
                "{}: {} cases, {} ops, {} photo files match",
                d.name, n.cases, n.ops, n.photos
            ),
            Err(diffs) => anyhow::bail!("{}", diffs.join("\n")),
        }
    }
    ensure!(server.partial_uploads().is_empty(), "partial uploads left");
    Ok(())
}
