//! Nothing recorded is lost from sight, against the real `gridcase-server`:
//! work recorded before enrolment reaches the centre as the enrolled leader's
//! (and says it was recorded before), a refused step stays listed with the
//! server's reason, and no photo goes up for a step the server refuses.

use anyhow::{ensure, Context, Result};
use gridcase_core::op::OpKind;
use gridcase_core::terminal::PhotoSource;
use gridcase_core::time::{now_millis, DAY};
use gridcase_core::{CaseDraft, Location, LocationSource};
use gridcase_tests::device::{point_in, SimDevice, G01};
use gridcase_tests::sample_jpeg;
use gridcase_tests::server::ServerProcess;

fn draft(title: &str, i: u64) -> CaseDraft {
    let now = now_millis();
    CaseDraft {
        category: gridcase_core::Category::LeakingHouse,
        title: title.into(),
        description: "三楼卫生间漏水到二楼".into(),
        location: Some(Location {
            point: point_in(G01, i),
            address: None,
            source: LocationSource::DeviceGps,
        }),
        occurred_at: now,
        proposed_deadline: Some(now + DAY),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_recorded_before_enrolment_reaches_the_centre_as_the_leaders() -> Result<()> {
    let server = ServerProcess::start()?;
    let leader = server.create_leader("张网格长", &[G01])?;
    // The terminal's local name, as the CLI's default.
    let d = SimDevice::open("grid-leader")?;
    let recorded = d
        .terminal
        .record_case(
            draft("三楼漏水", 1),
            vec![PhotoSource::Bytes(sample_jpeg(1200, 900, 1))],
            true,
            None,
        )
        .await?;
    d.enrol(&server.url, &leader.code).await?;
    let reports = d.sync_until_idle(5).await?;
    let rejected: u32 = reports.iter().map(|r| r.ops_rejected).sum();
    ensure!(rejected == 0, "{reports:?}");
    ensure!(d.terminal.needs_attention()?.is_empty());

    let snap = server.snapshot()?;
    let case = snap
        .cases
        .get(&recorded.case.id)
        .context("the case reached the server")?;
    ensure!(
        case.reported_by == leader.account_id,
        "{}",
        case.reported_by
    );
    ensure!(case.status == "received", "{}", case.status);
    let ops = snap.ops_of(&recorded.case.id);
    let mine: Vec<_> = ops
        .iter()
        .filter(|o| o.op.actor.id == leader.account_id)
        .collect();
    ensure!(mine.len() == 3, "create, photo, submit: {ops:?}");
    ensure!(
        mine.iter()
            .all(|o| o.op.recorded_before_enrolment_as.as_deref() == Some("grid-leader")),
        "each step says it was recorded before enrolment, and as whom"
    );
    let photo = &recorded.photos[0].row.photo;
    ensure!(server.photo_file(&photo.sha256).is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_photo_goes_up_for_steps_the_server_refuses_and_they_stay_listed() -> Result<()> {
    let server = ServerProcess::start()?;
    let first = server.create_leader("张网格长", &[G01])?;
    let second = server.create_leader("李网格长", &[G01])?;
    let d = SimDevice::open("handed-on")?;
    d.enrol(&server.url, &first.code).await?;
    // Recorded as the first leader, then the terminal is enrolled as
    // another: those steps are not the new account's to send.
    let recorded = d
        .terminal
        .record_case(
            draft("楼道杂物", 2),
            vec![
                PhotoSource::Bytes(sample_jpeg(1600, 1200, 2)),
                PhotoSource::Bytes(sample_jpeg(1600, 1200, 3)),
            ],
            true,
            None,
        )
        .await?;
    d.enrol(&server.url, &second.code).await?;
    let r = d.sync().await?;
    ensure!(r.photo_bytes_sent == 0, "no photo for refused steps: {r:?}");
    ensure!(r.ops_rejected == 4 && r.ops_accepted == 0, "{r:?}");
    ensure!(r.refused.len() == 4 && r.needs_attention == 4, "{r:?}");
    ensure!(
        r.refused
            .iter()
            .all(|s| s.code == "forbidden" && !s.resending_may_help),
        "{:?}",
        r.refused
    );
    for p in &recorded.photos {
        ensure!(server.photo_file(&p.row.photo.sha256).is_none());
    }
    // Never settled: the case shows its refused steps, the list finds it.
    let detail = d.terminal.case_detail_blocking(&recorded.case.id)?;
    ensure!(detail.refused.len() == 4);
    let listed = d
        .terminal
        .list_cases_blocking(&gridcase_core::store::CaseQuery {
            refused: true,
            ..Default::default()
        })?;
    ensure!(listed.cases.len() == 1 && listed.cases[0].refused_steps == 4);
    ensure!(
        d.terminal.resend_refused(&recorded.case.id).is_err(),
        "sending them again cannot help"
    );
    ensure!(server.snapshot()?.cases.is_empty());
    ensure!(detail
        .timeline
        .iter()
        .any(|e| matches!(e.op.kind, OpKind::AttachPhoto { .. })));
    Ok(())
}
