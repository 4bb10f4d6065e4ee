use std::sync::{Arc, Mutex};

use super::*;
use crate::case::{CaseStatus, Category};
use crate::store::{CaseQuery, OpSyncState};
use crate::time::{DAY, HOUR};

const SAMPLE_GRIDS: &str = include_str!("../../../tests/fixtures/grids/liaoyuan-sample.geojson");

fn open() -> (tempfile::TempDir, Terminal) {
    let dir = tempfile::tempdir().unwrap();
    let t = Terminal::open(dir.path(), TerminalConfig::new("leader-7")).unwrap();
    (dir, t)
}

fn draft(located: bool) -> CaseDraft {
    CaseDraft {
        category: Category::CollapsedManhole,
        title: "下水井塌陷".into(),
        description: "暴雨后井盖塌陷".into(),
        location: located.then(|| Location {
            point: GeoPoint::new(42.9, 125.1, 5.0).unwrap(),
            address: None,
        }),
        occurred_at: now_millis() - HOUR,
        proposed_deadline: Some(now_millis() + 2 * DAY),
    }
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .unwrap();
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Steps the centre and the department take, as sync will bring them.
fn centre_handles_it(t: &Terminal, id: CaseId) {
    let actor = |role: Role| Actor {
        role,
        id: format!("{}-x", role.as_str()),
    };
    let step = |role, kind| Op {
        id: OpId::new(),
        case_id: id,
        actor: actor(role),
        device_time: now_millis(),
        at: None,
        kind,
    };
    let ops = vec![
        step(Role::System, OpKind::Receive),
        step(
            Role::Dispatcher,
            OpKind::Dispatch {
                department: "市政".into(),
                deadline: now_millis() + DAY,
                note: String::new(),
            },
        ),
        step(
            Role::Department,
            OpKind::Resolve {
                note: "已修复".into(),
            },
        ),
    ];
    t.store().record_batch(ops, &|_| None).unwrap();
}

#[test]
fn a_case_is_recorded_with_a_photo_and_listed() {
    let rt = runtime();
    let (_dir, t) = open();
    let case = t.create_case(draft(true), None).unwrap();
    let photo = rt
        .block_on(t.add_photo(&case.id, PhotoSource::Bytes(jpeg(2400, 1800))))
        .unwrap();
    assert_eq!(
        (photo.row.photo.width, photo.row.photo.height),
        (1920, 1440)
    );
    assert!(photo.path.exists() && photo.thumb_path.exists());
    t.submit_case(&case.id).unwrap();

    let page = rt.block_on(t.list_cases(CaseQuery::default())).unwrap();
    assert_eq!(page.cases.len(), 1);
    let row = &page.cases[0];
    assert_eq!(row.status, CaseStatus::Submitted);
    assert_eq!(row.photo_count, 1);
    assert!(row.waiting_to_sync);
    assert_eq!(
        row.thumb_sha256.as_deref(),
        Some(photo.row.photo.thumb_sha256.as_str())
    );

    let detail = rt.block_on(t.case_detail(&case.id)).unwrap();
    let kinds: Vec<_> = detail.timeline.iter().map(|e| e.op.kind.name()).collect();
    assert_eq!(kinds, vec!["create", "attach a photo to", "submit"]);
    assert!(detail
        .timeline
        .iter()
        .all(|e| e.sync == OpSyncState::Pending));
    assert!(detail.timeline.iter().all(|e| e.op.actor.id == "leader-7"));
}

#[test]
fn deadlines_in_the_past_or_too_far_are_refused() {
    let (_dir, t) = open();
    let mut d = draft(true);
    d.proposed_deadline = Some(now_millis() - HOUR);
    let err = t.create_case(d, None).unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref e) if e.field == "proposed_deadline"),
        "{err:?}"
    );
    let mut d = draft(true);
    d.proposed_deadline = Some(32_503_680_000_000); // the year 3000
    assert!(matches!(t.create_case(d, None), Err(Error::Invalid(_))));
    assert_eq!(t.store().case_count().unwrap(), 0);
}

#[test]
fn a_broken_photo_is_refused_and_leaves_nothing_behind() {
    let rt = runtime();
    let (dir, t) = open();
    let case = t.create_case(draft(true), None).unwrap();
    let mut truncated = jpeg(800, 600);
    truncated.truncate(truncated.len() / 3);
    for bad in [Vec::new(), b"not an image at all".to_vec(), truncated] {
        let err = rt
            .block_on(t.add_photo(&case.id, PhotoSource::Bytes(bad)))
            .unwrap_err();
        assert!(matches!(err, Error::Photo(_)), "{err:?}");
    }
    let detail = t.case_detail_blocking(&case.id).unwrap();
    assert!(detail.photos.is_empty());
    assert_eq!(detail.timeline.len(), 1);
    let files = walk(&dir.path().join("photos"));
    assert!(files.is_empty(), "{files:?}");
}

#[test]
fn a_cancelled_case_takes_no_photo() {
    let rt = runtime();
    let (_dir, t) = open();
    let case = t.create_case(draft(true), None).unwrap();
    t.cancel_case(&case.id, "重复上报").unwrap();
    let err = rt
        .block_on(t.add_photo(&case.id, PhotoSource::Bytes(jpeg(64, 64))))
        .unwrap_err();
    assert!(matches!(err, Error::NotAllowed(_)), "{err:?}");
    let err = t.edit_case(
        &case.id,
        CaseEdit {
            title: Some("x".into()),
            ..Default::default()
        },
    );
    assert!(matches!(err, Err(Error::NotAllowed(_))));
}

#[test]
fn unknown_cases_are_not_found() {
    let (_dir, t) = open();
    assert!(matches!(
        t.submit_case(&CaseId::new()),
        Err(Error::NotFound { what: "case" })
    ));
    assert!(matches!(
        t.case_detail_blocking(&CaseId::new()),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn the_grid_leader_verifies_and_the_resident_rates() {
    let rt = runtime();
    let (_dir, t) = open();
    let case = t.create_case(draft(true), None).unwrap();
    t.submit_case(&case.id).unwrap();
    centre_handles_it(&t, case.id);
    let photo = rt
        .block_on(t.add_photo(&case.id, PhotoSource::Bytes(jpeg(640, 480))))
        .unwrap();
    let at = GeoPoint::new(42.9, 125.1, 4.0).unwrap();
    let verified = t
        .verify_case(
            &case.id,
            true,
            "现场已修复",
            vec![photo.row.photo.id],
            Some(at),
        )
        .unwrap();
    assert_eq!(verified.status, CaseStatus::Verified);
    let rated = t.rate_case(&case.id, Face::Smiley, "满意").unwrap();
    assert_eq!(rated.status, CaseStatus::Rated);
    let timeline = t.case_detail_blocking(&case.id).unwrap().timeline;
    let rate = timeline.last().unwrap();
    assert_eq!(rate.op.actor.role, Role::Resident);
    let verify = &timeline[timeline.len() - 2];
    assert_eq!(verify.op.at, Some(at));
}

#[test]
fn not_done_on_site_reopens_the_case() {
    let (_dir, t) = open();
    let case = t.create_case(draft(true), None).unwrap();
    t.submit_case(&case.id).unwrap();
    centre_handles_it(&t, case.id);
    let c = t
        .verify_case(&case.id, false, "井盖仍然松动", vec![], None)
        .unwrap();
    assert_eq!(c.status, CaseStatus::Reopened);
    assert!(!c.verification.unwrap().done);
}

#[test]
fn the_listener_hears_every_change() {
    struct Heard(Mutex<Vec<CaseId>>);
    impl CaseChangeListener for Heard {
        fn cases_changed(&self, ids: &[CaseId]) {
            self.0.lock().unwrap().extend_from_slice(ids);
        }
    }
    let (_dir, t) = open();
    let heard = Arc::new(Heard(Mutex::new(Vec::new())));
    t.set_listener(Some(heard.clone()));
    let case = t.create_case(draft(true), None).unwrap();
    t.submit_case(&case.id).unwrap();
    assert_eq!(*heard.0.lock().unwrap(), vec![case.id, case.id]);
    // A refused change is not a change.
    let again = t.submit_case(&case.id);
    assert!(matches!(again, Err(Error::NotAllowed(_))), "{again:?}");
    assert_eq!(heard.0.lock().unwrap().len(), 2);
}

#[test]
fn a_case_is_placed_in_the_grid_its_location_falls_in() {
    let (_dir, t) = open();
    let units = t.load_grids(SAMPLE_GRIDS).unwrap();
    assert!(units > 0);
    let grids = t.grids();
    let grid = grids
        .units()
        .iter()
        .find(|u| u.level == crate::grid::UnitLevel::Grid)
        .unwrap()
        .clone();
    let ring = &grid.boundary.as_ref().unwrap().0[0].exterior().0;
    let inside = GeoPoint::new(
        (ring[0].y + ring[2].y) / 2.0,
        (ring[0].x + ring[2].x) / 2.0,
        5.0,
    )
    .unwrap();
    let mut d = draft(false);
    d.location = Some(Location {
        point: inside,
        address: None,
    });
    let case = t.create_case(d, None).unwrap();
    assert_eq!(case.grid_id.as_deref(), Some(grid.id.as_str()));
    // Far away: recorded all the same, with no grid for the centre to place.
    let mut d = draft(false);
    d.location = Some(Location {
        point: GeoPoint::new(22.5, 114.0, 5.0).unwrap(),
        address: None,
    });
    assert_eq!(t.create_case(d, None).unwrap().grid_id, None);
}

#[test]
fn the_grid_map_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let n = Terminal::open(dir.path(), TerminalConfig::new("a"))
        .unwrap()
        .load_grids(SAMPLE_GRIDS)
        .unwrap();
    let t = Terminal::open(dir.path(), TerminalConfig::new("a")).unwrap();
    assert_eq!(t.grids().units().len(), n);
}

#[test]
fn files_of_photos_whose_row_never_committed_are_removed_on_open() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let kept = {
        let t = Terminal::open(dir.path(), TerminalConfig::new("a")).unwrap();
        let case = t.create_case(draft(true), None).unwrap();
        let p = rt
            .block_on(t.add_photo(&case.id, PhotoSource::Bytes(jpeg(800, 600))))
            .unwrap();
        // As if the app died after writing a photo's files but before its row.
        let lib = PhotoLibrary::open(dir.path().join("photos")).unwrap();
        let orphan = b"orphan";
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(orphan));
        lib.write(&sha, orphan).unwrap();
        p
    };
    let _t = Terminal::open(dir.path(), TerminalConfig::new("a")).unwrap();
    let files = walk(&dir.path().join("photos"));
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(kept.path.exists() && kept.thumb_path.exists());
}

#[test]
fn closing_refuses_further_calls() {
    let (_dir, t) = open();
    t.close();
    assert!(matches!(
        t.create_case(draft(true), None),
        Err(Error::Closed)
    ));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Enrols `t` with a server address nothing listens on.
fn enrol_unreachable(t: &Terminal) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let account = crate::store::SyncAccount {
        server_url: format!("http://127.0.0.1:{port}"),
        device_id: "device-1".into(),
        account_id: "leader-7".into(),
        token: "t".repeat(32),
        grid_ids: vec![],
        cursor: 0,
        last_success_at: None,
        history: None,
        grid_map_version: 0,
    };
    t.store().save_sync_account(&account, now_millis()).unwrap();
}

#[test]
fn a_rating_link_needs_an_enrolled_terminal() {
    let rt = runtime();
    let (_dir, t) = open();
    let case = t.create_case(draft(true), None).unwrap();
    let err = rt.block_on(t.rating_link(&case.id)).unwrap_err();
    assert!(matches!(err, crate::sync::SyncError::NotEnrolled), "{err}");
}

#[test]
fn a_rating_link_is_refused_before_the_grid_leader_verifies() {
    let rt = runtime();
    let (_dir, t) = open();
    enrol_unreachable(&t);
    let case = t.create_case(draft(true), None).unwrap();
    t.submit_case(&case.id).unwrap();
    centre_handles_it(&t, case.id);
    // Refused without the network, with the code the server would give.
    match rt.block_on(t.rating_link(&case.id)).unwrap_err() {
        crate::sync::SyncError::Refused { code, message } => {
            assert_eq!(code, "not_allowed");
            assert!(message.contains("resolved"), "{message}");
            assert!(!message.contains("下水井"), "no case content: {message}");
        }
        other => panic!("expected a refusal, got {other}"),
    }
    let unknown = rt.block_on(t.rating_link(&CaseId::new())).unwrap_err();
    let unknown: Error = unknown.into();
    assert!(
        matches!(unknown, Error::NotFound { what: "case" }),
        "{unknown}"
    );
}

#[test]
fn a_rating_link_for_a_verified_case_needs_signal() {
    let rt = runtime();
    let (_dir, t) = open();
    enrol_unreachable(&t);
    let case = t.create_case(draft(true), None).unwrap();
    t.submit_case(&case.id).unwrap();
    centre_handles_it(&t, case.id);
    t.verify_case(&case.id, true, "现场已修复", vec![], None)
        .unwrap();
    let err = rt.block_on(t.rating_link(&case.id)).unwrap_err();
    assert!(
        matches!(err, crate::sync::SyncError::Offline { .. }),
        "{err}"
    );
    // The on-site check stays safe in the outbox for the next sync.
    let detail = t.case_detail_blocking(&case.id).unwrap();
    assert_eq!(detail.case.status, CaseStatus::Verified);
    assert!(detail.waiting_to_sync);
}
