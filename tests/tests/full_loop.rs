//! The whole loop of the brief against the real `gridcase-server` binary: a
//! grid leader's terminal records a case with a photo and syncs; the centre's
//! dispatcher (logged in over HTTP like the dashboard) finds it in the queue
//! and dispatches it with a deadline; the deadline scheduler chases it and the
//! chase reaches the terminal; the department accepts and resolves it; the
//! grid leader checks it on site; the terminal asks for a rating link and the
//! resident rates on their own phone; the terminal sees the rating, and the
//! supervisor's figures count the case. The unhappy path: "not done" on site
//! and a frowny face each reopen the case to its department, with the reason.
//!
//! Each step asserts what the person would notice: statuses on the terminal
//! and at the centre, the chase on the terminal's timeline, the figures' rates.

use anyhow::{ensure, Context, Result};
use gridcase_core::case::{CaseStatus, Face};
use gridcase_core::ids::CaseId;
use gridcase_core::op::{OpKind, Role};
use gridcase_core::sync::SyncError;
use gridcase_core::time::{now_millis, DAY, HOUR, MINUTE};
use gridcase_core::zone::Zone;
use gridcase_tests::centre::{open_rating_page, rate_on_page, staff_the_centre, CentreClient};
use gridcase_tests::device::{point_in, SimDevice, G01};
use gridcase_tests::sample_jpeg;
use gridcase_tests::server::ServerProcess;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// 龙山区: the county whose centre holds G01's cases.
const COUNTY: &str = "220402";

/// The terminal, the server, and the centre's three people, logged in.
struct Loop {
    server: ServerProcess,
    terminal: SimDevice,
    department_id: String,
    dispatcher: CentreClient,
    handler: CentreClient,
    supervisor: CentreClient,
}

impl Loop {
    async fn start() -> Result<Loop> {
        let server = ServerProcess::start()?;
        let department_id = staff_the_centre(&server, COUNTY, "市政")?;
        let leader = server.create_leader("张网格长", &[G01])?;
        let terminal = SimDevice::open("zhang-terminal")?;
        terminal.enrol(&server.url, &leader.code).await?;
        let dispatcher = CentreClient::login(&server, "dispatcher").await?;
        let handler = CentreClient::login(&server, "handler").await?;
        let supervisor = CentreClient::login(&server, "supervisor").await?;
        Ok(Loop {
            server,
            terminal,
            department_id,
            dispatcher,
            handler,
            supervisor,
        })
    }

    async fn sync(&self) -> Result<()> {
        self.terminal.sync_until_idle(5).await.map(drop)
    }

    /// The case as the grid leader's terminal shows it.
    async fn on_terminal(&self, id: &CaseId) -> Result<gridcase_core::terminal::CaseDetail> {
        Ok(self.terminal.terminal.case_detail(id).await?)
    }

    /// The case's status as the dispatcher's case page shows it.
    async fn at_centre(&self, id: &CaseId) -> Result<String> {
        let page = self.dispatcher.case(&id.to_string()).await?;
        Ok(page["case"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Records a case with a photo, submits it and syncs.
    async fn record(&self, title: &str, i: u64) -> Result<CaseId> {
        let case = self.terminal.new_case(title, point_in(G01, i))?;
        self.terminal
            .add_photo(&case.id, sample_jpeg(1024, 768, i as u32))
            .await?;
        self.terminal.terminal.submit_case(&case.id)?;
        self.sync().await?;
        Ok(case.id)
    }

    /// The dispatcher finds the case in the queue and dispatches it.
    async fn dispatch(&self, id: &CaseId, deadline: i64) -> Result<()> {
        let answer = self
            .dispatcher
            .act(
                &id.to_string(),
                "dispatch",
                json!({ "department_id": self.department_id, "deadline": deadline,
                        "note": "请市政尽快处置" }),
            )
            .await?;
        ensure!(answer["status"] == "dispatched", "dispatch: {answer}");
        Ok(())
    }

    /// The department accepts (if it must) and resolves the case.
    async fn department_resolves(&self, id: &CaseId, note: &str) -> Result<()> {
        let id = id.to_string();
        let mine = self
            .handler
            .queue_row("mine=true", &id)
            .await?
            .context("the case is not in the department's list")?;
        if self.handler.actions(&id).await?.contains(&"accept".into()) {
            let a = self.handler.act(&id, "accept", json!({})).await?;
            ensure!(a["status"] == "in_progress", "accept: {a}");
        }
        let a = self
            .handler
            .act(&id, "progress", json!({ "note": "已设置围挡" }))
            .await?;
        ensure!(a["status"] == "in_progress", "progress: {a}");
        let a = self
            .handler
            .act(&id, "resolve", json!({ "note": note }))
            .await?;
        ensure!(a["status"] == "resolved", "resolve: {a} (was {mine})");
        Ok(())
    }

    /// The grid leader checks on site, with a photo, and syncs.
    async fn verify(&self, id: &CaseId, done: bool, note: &str, seed: u32) -> Result<CaseStatus> {
        let photo = self
            .terminal
            .add_photo(id, sample_jpeg(800, 600, seed))
            .await?;
        let case = self.terminal.terminal.verify_case(
            id,
            done,
            note,
            vec![photo.row.photo.id],
            Some(point_in(G01, 3)),
        )?;
        self.sync().await?;
        Ok(case.status)
    }

    /// The supervisor's figures for the county, as a `total` tally.
    async fn figures(&self) -> Result<Value> {
        let f = self.supervisor.figures(&format!("unit={COUNTY}")).await?;
        Ok(f["total"].clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_goes_from_the_terminal_to_the_figures() -> Result<()> {
    let l = Loop::start().await?;
    let result = happy_path(&l).await;
    if result.is_err() {
        eprintln!("server log:\n{}", l.server.log_tail());
    }
    result
}

async fn happy_path(l: &Loop) -> Result<()> {
    // The grid leader records the collapsed manhole with a photo and syncs.
    let id = l.record("暴雨后下水井塌陷", 1).await?;
    let sid = id.to_string();
    ensure!(l.on_terminal(&id).await?.case.status == CaseStatus::Received);
    ensure!(!l.on_terminal(&id).await?.waiting_to_sync);

    // The dispatcher finds it in the county's queue, with its photo.
    let row = l
        .dispatcher
        .queue_row("status=received", &sid)
        .await?
        .context("the received case is not in the dispatcher's queue")?;
    ensure!(
        row["queue_unit_id"] == COUNTY,
        "queued at {}",
        row["queue_unit_id"]
    );
    let page = l.dispatcher.case(&sid).await?;
    ensure!(page["actions"]
        .as_array()
        .is_some_and(|a| a.contains(&json!("dispatch"))));
    let photos = page["photos"].as_array().context("photos")?;
    ensure!(photos.len() == 1, "{} photos at the centre", photos.len());
    let sha = photos[0]["sha256"].as_str().context("photo sha256")?;
    let (status, jpeg) = l
        .dispatcher
        .get_bytes(&format!("/v1/centre/cases/{sid}/photos/{sha}"))
        .await?;
    ensure!(status == StatusCode::OK && jpeg.starts_with(&[0xFF, 0xD8]));

    // Dispatched with a deadline two hours ahead: near it in its last quarter.
    let deadline = now_millis() + 2 * HOUR;
    l.dispatch(&id, deadline).await?;
    ensure!(l.handler.queue_row("mine=true", &sid).await?.is_some());
    let said = l.server.admin(&["admin", "run-deadlines"])?;
    ensure!(
        said.contains("chased 0 near"),
        "not near right after dispatch: {said}"
    );

    // The scheduler's pass 1 h 40 min later chases it; the chase reaches the
    // terminal.
    let later = Zone::default().format_minute(now_millis() + 100 * MINUTE);
    let said = l
        .server
        .admin(&["admin", "run-deadlines", "--at", &later])?;
    ensure!(
        said.contains("chased 1 near their deadline"),
        "run-deadlines: {said}"
    );
    ensure!(l.dispatcher.case(&sid).await?["case"]["chase_count"] == 1);
    l.sync().await?;
    let seen = l.on_terminal(&id).await?;
    ensure!(
        seen.case.status == CaseStatus::Dispatched,
        "{}",
        seen.case.status
    );
    ensure!(seen.case.deadline == Some(deadline));
    ensure!(seen.case.department.as_deref() == Some(l.department_id.as_str()));
    ensure!(seen.case.chase_count == 1);
    ensure!(
        seen.timeline
            .iter()
            .any(|e| matches!(e.op.kind, OpKind::Chase { .. }) && e.op.actor.role == Role::System),
        "no chase on the terminal's timeline"
    );

    // The department accepts and resolves it, within the deadline.
    l.department_resolves(&id, "井盖已更换，路面已修复").await?;
    l.sync().await?;
    ensure!(l.on_terminal(&id).await?.case.status == CaseStatus::Resolved);

    // No rating before the grid leader has looked: refused with the code.
    match l.terminal.terminal.rating_link(&id).await {
        Err(SyncError::Refused { code, .. }) if code == "not_allowed" => {}
        other => anyhow::bail!("a link before the on-site check: {other:?}"),
    }

    // The grid leader checks on site: done.
    ensure!(l.verify(&id, true, "现场查看已修复", 11).await? == CaseStatus::Verified);
    ensure!(l.at_centre(&id).await? == "verified");

    // The terminal shows a one-time link and its QR code.
    let link = l.terminal.terminal.rating_link(&id).await?;
    ensure!(
        link.url.starts_with(&format!("{}/r/", l.server.url)),
        "{}",
        link.url
    );
    ensure!(link.expires_at > now_millis() + 6 * DAY);
    ensure!(link.qr_svg.contains("<svg"), "the QR code is not an SVG");

    // The resident opens it on their phone: the case, nothing private.
    let page = open_rating_page(&link.url).await?;
    ensure!(page.status == StatusCode::OK, "{}", page.status);
    // Its kind (the title only of a problem in public space: the page is public).
    let category = l.on_terminal(&id).await?.case.category;
    ensure!(page.html.contains(category.name_zh()) && page.html.contains("满意"));
    ensure!(
        !page.html.contains("居民反映"),
        "the page shows the description"
    );
    ensure!(
        !page.html.contains("张网格长"),
        "the page shows who reported it"
    );

    // A smiley; the link then works no more.
    let thanks = rate_on_page(&link.url, "smiley", "修得很快").await?;
    ensure!(thanks.status == StatusCode::OK && thanks.html.contains("感谢"));
    let again = rate_on_page(&link.url, "frowny", "").await?;
    ensure!(
        again.status == StatusCode::GONE,
        "a used link: {}",
        again.status
    );
    ensure!(l.at_centre(&id).await? == "rated");

    // Before the terminal hears of it, a new link is the server's refusal.
    match l.terminal.terminal.rating_link(&id).await {
        Err(SyncError::Refused { code, message }) if code == "not_allowed" => {
            ensure!(message.contains("rated"), "{message}");
        }
        other => anyhow::bail!("a link for a rated case: {other:?}"),
    }

    // The terminal syncs and shows the resident's smiley.
    l.sync().await?;
    let seen = l.on_terminal(&id).await?;
    ensure!(
        seen.case.status == CaseStatus::Rated,
        "{}",
        seen.case.status
    );
    ensure!(seen.case.rating.as_ref().map(|r| r.face) == Some(Face::Smiley));
    let rate = seen.timeline.last().context("a timeline")?;
    ensure!(rate.op.actor.role == Role::Resident);

    // The supervisor's figures count it: closed, on time, satisfied.
    let total = l.figures().await?;
    ensure!(total["cases"] == 1, "{total}");
    ensure!(
        total["closed"] == 1 && total["closure_rate"] == 1.0,
        "{total}"
    );
    ensure!(total["on_time"] == 1 && total["late"] == 0, "{total}");
    ensure!(total["on_time_rate"] == 1.0, "{total}");
    ensure!(
        total["smiley"] == 1 && total["satisfaction_rate"] == 1.0,
        "{total}"
    );

    // The dispatcher closes it; the terminal sees it closed, the figures hold.
    let closed = l.dispatcher.act(&sid, "close", json!({})).await?;
    ensure!(closed["status"] == "closed", "{closed}");
    l.sync().await?;
    ensure!(l.on_terminal(&id).await?.case.status == CaseStatus::Closed);
    ensure!(l.figures().await?["closed"] == 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_done_and_a_frowny_face_reopen_the_case_to_its_department() -> Result<()> {
    let l = Loop::start().await?;
    let result = unhappy_path(&l).await;
    if result.is_err() {
        eprintln!("server log:\n{}", l.server.log_tail());
    }
    result
}

async fn unhappy_path(l: &Loop) -> Result<()> {
    let id = l.record("楼道杂物堆放堵塞通道", 2).await?;
    let sid = id.to_string();
    l.dispatch(&id, now_millis() + 2 * DAY).await?;
    l.department_resolves(&id, "已清理").await?;
    l.sync().await?;

    // Not done on site: back to the department, with the grid leader's reason.
    let status = l.verify(&id, false, "三楼仍有杂物", 21).await?;
    ensure!(status == CaseStatus::Reopened);
    ensure!(l.at_centre(&id).await? == "reopened");
    let row = l
        .handler
        .queue_row("mine=true", &sid)
        .await?
        .context("the reopened case is not back with the department")?;
    ensure!(row["reopen_reason"] == "三楼仍有杂物", "{row}");

    // Resolved again, done this time; the resident frowns on their phone.
    l.department_resolves(&id, "三楼杂物已清走").await?;
    l.sync().await?;
    ensure!(l.verify(&id, true, "已清理干净", 22).await? == CaseStatus::Verified);
    let link = l.terminal.terminal.rating_link(&id).await?;
    let page = rate_on_page(&link.url, "frowny", "清理后又堆上了").await?;
    ensure!(page.status == StatusCode::OK, "{}", page.status);

    // The frowny face reopens it to the department, with the resident's words.
    ensure!(l.at_centre(&id).await? == "reopened");
    let row = l
        .handler
        .queue_row("mine=true", &sid)
        .await?
        .context("the frowned-at case is not back with the department")?;
    ensure!(row["reopen_reason"] == "清理后又堆上了", "{row}");
    ensure!(l
        .handler
        .actions(&sid)
        .await?
        .contains(&"resolve".to_string()));

    // The terminal shows it reopened by the resident's frowny face.
    l.sync().await?;
    let seen = l.on_terminal(&id).await?;
    ensure!(
        seen.case.status == CaseStatus::Reopened,
        "{}",
        seen.case.status
    );
    ensure!(seen.timeline.iter().any(|e| matches!(
        e.op.kind,
        OpKind::Rate {
            face: Face::Frowny,
            ..
        }
    ) && e.op.actor.role == Role::Resident));

    // The figures: not closed, not satisfied.
    let total = l.figures().await?;
    ensure!(total["cases"] == 1 && total["closed"] == 0, "{total}");
    ensure!(total["closure_rate"] == 0.0, "{total}");
    ensure!(total["frowny"] == 1 && total["smiley"] == 0, "{total}");
    ensure!(total["satisfaction_rate"] == 0.0, "{total}");
    Ok(())
}
