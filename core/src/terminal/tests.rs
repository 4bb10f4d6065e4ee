use std::sync::{Arc, Mutex};

use super::*;
use crate::case::{CaseStatus, Category};
use crate::location::LocationSource;
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
            source: LocationSource::DeviceGps,
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
        recorded_before_enrolment_as: None,
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
        source: LocationSource::Typed,
    });
    let case = t.create_case(d, None).unwrap();
    assert_eq!(case.grid_id.as_deref(), Some(grid.id.as_str()));
    // Far away: recorded all the same, with no grid for the centre to place.
    let mut d = draft(false);
    d.location = Some(Location {
        point: GeoPoint::new(22.5, 114.0, 5.0).unwrap(),
        address: None,
        source: LocationSource::Typed,
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

const G01: &str = "220402001001-G01";
const IN_G01: (f64, f64) = (42.895, 125.135);
const IN_G02: (f64, f64) = (42.895, 125.15);

fn at(p: (f64, f64)) -> Location {
    Location {
        point: GeoPoint::new(p.0, p.1, 5.0).unwrap(),
        address: None,
        source: LocationSource::Typed,
    }
}

/// Enrols `t` for `grids` with a server nothing listens on, as `account`.
fn enrol_offline(t: &Terminal, account: &str, grids: &[&str]) {
    let account = crate::store::SyncAccount {
        server_url: "http://127.0.0.1:9".into(),
        device_id: "device-1".into(),
        account_id: account.into(),
        token: "t".repeat(32),
        grid_ids: grids.iter().map(|g| g.to_string()).collect(),
        cursor: 0,
        last_success_at: None,
        history: None,
        grid_map_version: 0,
    };
    t.store()
        .enrol(&account, &Default::default(), now_millis(), &|_| None)
        .unwrap();
}

/// A sync answer the server might give, with the parts a test sets.
fn answer(results: Vec<crate::protocol::PushResult>) -> crate::protocol::SyncResponse {
    crate::protocol::SyncResponse {
        results,
        ops: vec![],
        cursor: 0,
        more: false,
        left: vec![],
        history: "h-1".into(),
        reset: false,
        grid_map_version: 0,
        time_zone: String::new(),
        names: vec![],
    }
}

fn refusal(op: &Op, code: &str, reason: &str) -> crate::protocol::PushResult {
    crate::protocol::PushResult {
        op_id: op.id,
        status: crate::protocol::PushStatus::Rejected,
        server_seq: None,
        code: Some(code.into()),
        reason: Some(reason.into()),
    }
}

#[test]
fn a_failed_new_case_stores_nothing_at_all() {
    let rt = runtime();
    let (dir, t) = open();
    let good = PhotoSource::Bytes(jpeg(640, 480));
    // A bad second photo: nothing of the case, not even the first photo's files.
    let err = rt
        .block_on(t.record_case(
            draft(true),
            vec![good.clone(), PhotoSource::Bytes(b"not an image".to_vec())],
            true,
            None,
        ))
        .unwrap_err();
    assert!(matches!(err, Error::PhotoIn { index: 1, .. }), "{err:?}");
    // A missing file and a folder.
    for path in [dir.path().join("missing.jpg"), dir.path().to_path_buf()] {
        let err = rt
            .block_on(t.record_case(draft(true), vec![PhotoSource::File(path)], false, None))
            .unwrap_err();
        assert!(matches!(err, Error::PhotoIn { index: 0, .. }), "{err:?}");
    }
    let folder = rt
        .block_on(t.record_case(
            draft(true),
            vec![PhotoSource::File(dir.path().to_path_buf())],
            false,
            None,
        ))
        .unwrap_err();
    assert!(folder.to_string().contains("folder"), "{folder}");
    // Submitting needs a place; a photo without GPS gives none.
    let err = rt
        .block_on(t.record_case(draft(false), vec![good], true, None))
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref e) if e.field == "location"),
        "{err:?}"
    );
    assert_eq!(t.store().case_count().unwrap(), 0);
    assert_eq!(t.store().outbox_len().unwrap(), 0);
    let files = walk(&dir.path().join("photos"));
    assert!(files.is_empty(), "{files:?}");
}

#[test]
fn a_new_case_its_photos_and_its_submission_are_one_step() {
    let rt = runtime();
    let (_dir, t) = open();
    let photos = vec![
        PhotoSource::Bytes(jpeg(640, 480)),
        PhotoSource::Bytes(jpeg(480, 640)),
    ];
    let d = rt
        .block_on(t.record_case(draft(true), photos, true, None))
        .unwrap();
    assert_eq!(d.case.status, CaseStatus::Submitted);
    assert_eq!(d.photos.len(), 2);
    let kinds: Vec<_> = d.timeline.iter().map(|e| e.op.kind.code()).collect();
    assert_eq!(kinds, ["create", "attach_photo", "attach_photo", "submit"]);
    assert_eq!(t.store().outbox_len().unwrap(), 4);
}

#[test]
fn a_photos_gps_is_a_drafts_place_in_the_same_step_with_its_own_accuracy() {
    let rt = runtime();
    let (_dir, t) = open();
    // No GPSHPositioningError: the accuracy is unknown, not an invented 30 m.
    let case = t.create_case(draft(false), None).unwrap();
    rt.block_on(t.add_photo(
        &case.id,
        PhotoSource::Bytes(crate::photo::tests::jpeg_at(IN_G01.0, IN_G01.1, None)),
    ))
    .unwrap();
    let d = t.case_detail_blocking(&case.id).unwrap();
    let place = d.case.location.unwrap();
    assert_eq!(place.source, LocationSource::PhotoExif);
    assert_eq!(place.point.accuracy_m, None);
    assert!((place.point.lat - IN_G01.0).abs() < 1e-6);
    let kinds: Vec<_> = d.timeline.iter().map(|e| e.op.kind.code()).collect();
    assert_eq!(
        kinds,
        ["create", "attach_photo"],
        "no edit the leader never made"
    );
    // With the camera's own error, that is kept; and a new case takes its
    // place from the photo in the create step itself.
    let photo = crate::photo::tests::jpeg_at(IN_G01.0, IN_G01.1, Some((65, 10)));
    let d = rt
        .block_on(t.record_case(draft(false), vec![PhotoSource::Bytes(photo)], true, None))
        .unwrap();
    let place = d.case.location.unwrap();
    assert_eq!(place.source, LocationSource::PhotoExif);
    assert_eq!(place.point.accuracy_m, Some(6.5));
    match &d.timeline[0].op.kind {
        OpKind::Create { draft } => {
            assert_eq!(
                draft.location.as_ref().unwrap().source,
                LocationSource::PhotoExif
            )
        }
        other => panic!("{other:?}"),
    }
    // A case that has its place keeps it.
    let located = t.create_case(draft(true), None).unwrap();
    rt.block_on(t.add_photo(
        &located.id,
        PhotoSource::Bytes(crate::photo::tests::jpeg_at(IN_G02.0, IN_G02.1, None)),
    ))
    .unwrap();
    let kept = t.case_detail_blocking(&located.id).unwrap().case.location;
    assert_eq!(kept, draft(true).location);
}

#[test]
fn not_done_needs_a_reason_and_a_check_with_a_bad_photo_stores_nothing() {
    let rt = runtime();
    let (_dir, t) = open();
    let case = t.create_case(draft(true), None).unwrap();
    t.submit_case(&case.id).unwrap();
    centre_handles_it(&t, case.id);
    let err = t
        .verify_case(&case.id, false, "  ", vec![], None)
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref e) if e.field == "note"),
        "{err:?}"
    );
    let before = t.case_detail_blocking(&case.id).unwrap();
    let err = rt
        .block_on(t.verify_with_photos(
            &case.id,
            true,
            "现场已修复",
            vec![],
            vec![PhotoSource::Bytes(b"broken".to_vec())],
            None,
        ))
        .unwrap_err();
    assert!(matches!(err, Error::PhotoIn { index: 0, .. }), "{err:?}");
    assert_eq!(t.case_detail_blocking(&case.id).unwrap(), before);
    let c = rt
        .block_on(t.verify_with_photos(
            &case.id,
            true,
            "现场已修复",
            vec![],
            vec![PhotoSource::Bytes(jpeg(640, 480))],
            None,
        ))
        .unwrap();
    assert_eq!(c.status, CaseStatus::Verified);
    let v = c.verification.unwrap();
    assert_eq!(v.photo_ids.len(), 1);
    assert_eq!(c.photo_ids, v.photo_ids);
}

#[test]
fn the_terminal_says_when_a_point_is_outside_its_grids_or_its_map() {
    let (_dir, t) = open();
    let p = |x: (f64, f64)| GeoPoint::new(x.0, x.1, 5.0).unwrap();
    assert_eq!(t.placement_of(&p(IN_G01)).unwrap(), Placement::NoMap);
    t.load_grids(SAMPLE_GRIDS).unwrap();
    // Before enrolment every grid is the leader's own.
    assert!(matches!(
        t.placement_of(&p(IN_G02)).unwrap(),
        Placement::InYourGrid(_)
    ));
    enrol_offline(&t, "leader-7", &[G01]);
    assert!(
        matches!(t.placement_of(&p(IN_G01)).unwrap(), Placement::InYourGrid(ref g) if g.id == G01)
    );
    assert_eq!(
        t.placement_of(&p(IN_G02)).unwrap(),
        Placement::OutsideYourGrids(GridRef {
            id: "220402001001-G02".into(),
            name: "福民社区第二网格".into()
        })
    );
    // Beijing, and the hole in G02 (a factory compound outside the grid).
    assert_eq!(
        t.placement_of(&p((39.9, 116.4))).unwrap(),
        Placement::OutsideEveryGrid
    );
    let case = t
        .create_case(
            CaseDraft {
                location: Some(at((39.9, 116.4))),
                ..draft(false)
            },
            None,
        )
        .unwrap();
    let d = t.case_detail_blocking(&case.id).unwrap();
    assert_eq!(d.placement, Some(Placement::OutsideEveryGrid));
    assert!(d.placement.unwrap().is_warning());
}

#[test]
fn a_case_is_found_by_the_start_or_the_end_of_its_id() {
    let (_dir, t) = open();
    let a = t.create_case(draft(true), None).unwrap().id;
    let b = t.create_case(draft(true), None).unwrap().id;
    let full = a.to_string();
    assert_eq!(t.find_case(&full).unwrap(), a);
    assert_eq!(t.find_case(&full[full.len() - 6..]).unwrap(), a);
    assert_eq!(
        t.find_case(&full[full.len() - 6..].to_uppercase()).unwrap(),
        a
    );
    let short = t.short_id(&b).unwrap();
    assert!(
        short.len() >= 8 && b.to_string().ends_with(&short),
        "{short}"
    );
    assert_eq!(t.find_case(&short).unwrap(), b);
    // Both were made in the same millisecond or two: their starts are alike.
    match t.find_case(&full[..4]) {
        Err(Error::Ambiguous {
            what: "case",
            candidates,
        }) => {
            assert!(candidates.contains(&full) && candidates.contains(&b.to_string()))
        }
        other => panic!("{other:?}"),
    }
    for bad in ["ffff", "abc", "%%%%", "12_4"] {
        assert!(
            matches!(t.find_case(bad), Err(Error::Invalid(ref e)) if e.field == "case_id"),
            "{bad}"
        );
    }
}

#[test]
fn the_first_enrolment_adopts_what_was_recorded_before_it() {
    let (_dir, t) = open();
    let case = t.create_case(draft(true), None).unwrap();
    t.submit_case(&case.id).unwrap();
    enrol_offline(&t, "account-1", &[G01]);
    let d = t.case_detail_blocking(&case.id).unwrap();
    assert_eq!(d.case.reported_by, "account-1");
    for e in &d.timeline {
        assert_eq!(e.op.actor.id, "account-1");
        assert_eq!(
            e.op.recorded_before_enrolment_as.as_deref(),
            Some("leader-7")
        );
        assert_eq!(e.sync, OpSyncState::Pending);
    }
    // Enrolling again (another code, another account) adopts nothing: what
    // waits was the earlier account's (here still under the local name, as
    // this test enrols behind the terminal's back).
    let later = t.create_case(draft(true), None).unwrap();
    enrol_offline(&t, "account-2", &[G01]);
    let d = t.case_detail_blocking(&later.id).unwrap();
    assert_eq!(d.timeline[0].op.actor.id, "leader-7");
    assert_eq!(d.timeline[0].op.recorded_before_enrolment_as, None);
}

#[test]
fn steps_an_older_version_had_refused_for_their_local_name_are_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let (case, ops) = {
        let t = Terminal::open(dir.path(), TerminalConfig::new("grid-leader")).unwrap();
        let case = t.create_case(draft(true), None).unwrap();
        t.submit_case(&case.id).unwrap();
        // What an older version did: save the account, adopt nothing, push,
        // and take the refusals.
        let account = crate::store::SyncAccount {
            server_url: "http://127.0.0.1:9".into(),
            device_id: "device-1".into(),
            account_id: "account-1".into(),
            token: "t".repeat(32),
            grid_ids: vec![G01.into()],
            cursor: 0,
            last_success_at: None,
            history: None,
            grid_map_version: 0,
        };
        t.store()
            .save_sync_account(&account, now_millis() + 1_000)
            .unwrap();
        let ops = t.store().pending_ops(10).unwrap();
        let refused = ops
            .iter()
            .map(|o| refusal(o, "forbidden", "the actor must be this device's account"))
            .collect();
        t.store()
            .apply_sync(&answer(refused), now_millis(), &|_| None)
            .unwrap();
        assert_eq!(t.needs_attention().unwrap().len(), 2);
        (case, ops)
    };
    let t = Terminal::open(dir.path(), TerminalConfig::new("grid-leader")).unwrap();
    assert!(t.needs_attention().unwrap().is_empty());
    let waiting = t.store().pending_ops(10).unwrap();
    assert_eq!(waiting.len(), 2);
    for (copy, old) in waiting.iter().zip(&ops) {
        assert_ne!(
            copy.id, old.id,
            "a refused id keeps its answer; a copy goes"
        );
        assert_eq!(copy.actor.id, "account-1");
        assert_eq!(
            copy.recorded_before_enrolment_as.as_deref(),
            Some("grid-leader")
        );
        assert_eq!(copy.kind, old.kind);
    }
    let d = t.case_detail_blocking(&case.id).unwrap();
    assert_eq!(d.case.status, CaseStatus::Submitted);
    assert_eq!(d.case.reported_by, "account-1");
    let resent: Vec<_> = d
        .timeline
        .iter()
        .filter(|e| e.resent_as.is_some())
        .collect();
    assert_eq!(
        resent.len(),
        2,
        "the refused steps stay on the timeline, marked"
    );
    let page = t
        .list_cases_blocking(&CaseQuery {
            refused: true,
            ..Default::default()
        })
        .unwrap();
    assert!(page.cases.is_empty());
}

#[test]
fn a_refused_step_shows_until_it_is_sent_again() {
    let (_dir, t) = open();
    enrol_offline(&t, "leader-7", &[G01]);
    let case = t.create_case(draft(true), None).unwrap();
    t.submit_case(&case.id).unwrap();
    let other = t.create_case(draft(true), None).unwrap();
    let ops = t.store().pending_ops(10).unwrap();
    let submit = ops
        .iter()
        .find(|o| o.kind == OpKind::Submit)
        .unwrap()
        .clone();
    let applied = t
        .store()
        .apply_sync(
            &answer(vec![refusal(
                &submit,
                "not_allowed",
                "cannot submit a case that is submitted",
            )]),
            now_millis(),
            &|_| None,
        )
        .unwrap();
    assert_eq!(applied.refused.len(), 1);
    assert_eq!(
        applied.refused[0].reason,
        "cannot submit a case that is submitted"
    );
    let list = |refused| {
        t.list_cases_blocking(&CaseQuery {
            refused,
            ..Default::default()
        })
        .unwrap()
        .cases
    };
    let shown = list(true);
    assert_eq!(shown.len(), 1);
    assert_eq!((shown[0].id, shown[0].refused_steps), (case.id, 1));
    assert_eq!(list(false).len(), 2);
    let attention = t.needs_attention().unwrap();
    assert_eq!(attention.len(), 1);
    assert_eq!(attention[0].code, "not_allowed");
    assert!(attention[0].resending_may_help);
    // A case with nothing refused has nothing to send again.
    assert!(matches!(
        t.resend_refused(&other.id),
        Err(Error::Invalid(_))
    ));
    assert_eq!(t.resend_refused(&case.id).unwrap(), 1);
    assert!(t.needs_attention().unwrap().is_empty());
    assert!(list(true).is_empty());
    let d = t.case_detail_blocking(&case.id).unwrap();
    assert_eq!(d.case.status, CaseStatus::Submitted);
    let last = d.timeline.last().unwrap();
    assert_eq!(
        (last.op.kind.code(), last.sync),
        ("submit", OpSyncState::Pending)
    );
    assert!(t.resend_refused(&case.id).is_err(), "nothing left to send");
}

#[test]
fn photos_go_up_only_for_ops_the_server_can_accept() {
    let rt = runtime();
    let (_dir, t) = open();
    // Recorded in the local name, then enrolled as an older version did
    // (nothing adopted): those photos would be refused with their ops.
    let mine = t.create_case(draft(true), None).unwrap();
    rt.block_on(t.add_photo(&mine.id, PhotoSource::Bytes(jpeg(640, 480))))
        .unwrap();
    let account = crate::store::SyncAccount {
        server_url: "http://127.0.0.1:9".into(),
        device_id: "device-1".into(),
        account_id: "account-1".into(),
        token: "t".repeat(32),
        grid_ids: vec![],
        cursor: 0,
        last_success_at: None,
        history: None,
        grid_map_version: 0,
    };
    t.store().save_sync_account(&account, now_millis()).unwrap();
    let files = t.store().pending_photo_files("leader-7").unwrap();
    assert_eq!(files.len(), 2, "photo and thumbnail");
    assert!(t
        .store()
        .pending_photo_files("account-1")
        .unwrap()
        .is_empty());
    // A case whose creation was refused gets no photo upload either.
    let create = t.store().pending_ops(1).unwrap().remove(0);
    t.store()
        .apply_sync(
            &answer(vec![refusal(&create, "invalid_input", "bad")]),
            now_millis(),
            &|_| None,
        )
        .unwrap();
    assert!(t
        .store()
        .pending_photo_files("leader-7")
        .unwrap()
        .is_empty());
}

#[test]
fn the_zone_and_the_names_come_with_the_sync_answer() {
    let (_dir, t) = open();
    assert_eq!(t.zone().name(), "Asia/Shanghai");
    enrol_offline(&t, "leader-7", &[G01]);
    let mut a = answer(vec![]);
    a.time_zone = "Asia/Urumqi".into();
    a.names = vec![
        crate::protocol::DisplayName {
            id: "disp-1".into(),
            kind: crate::protocol::NameKind::Actor,
            name: "王调度".into(),
        },
        crate::protocol::DisplayName {
            id: "dep-1".into(),
            kind: crate::protocol::NameKind::Department,
            name: "市政".into(),
        },
    ];
    t.store().apply_sync(&a, now_millis(), &|_| None).unwrap();
    t.reload_zone().unwrap();
    assert_eq!(t.zone().name(), "Asia/Urumqi");
    let names = t.names().unwrap();
    assert_eq!(names.actor("disp-1"), Some("王调度"));
    assert_eq!(names.department("dep-1"), Some("市政"));
    // And survive reopening.
    let dir = t.store().path().parent().unwrap().to_path_buf();
    drop(t);
    let t = Terminal::open(&dir, TerminalConfig::new("x")).unwrap();
    assert_eq!(t.zone().name(), "Asia/Urumqi");
}

#[test]
fn recorded_today_counts_on_the_deployments_clock() {
    let (_dir, t) = open();
    let case = t.create_case(draft(true), None).unwrap();
    let zone = t.zone();
    let today = CaseQuery {
        recorded_from: Some(zone.day_start(now_millis())),
        recorded_before: Some(zone.next_day_start(now_millis())),
        ..Default::default()
    };
    let ids: Vec<_> = t
        .list_cases_blocking(&today)
        .unwrap()
        .cases
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec![case.id]);
    let yesterday = CaseQuery {
        recorded_from: Some(zone.day_start(now_millis() - DAY)),
        recorded_before: Some(zone.day_start(now_millis())),
        ..Default::default()
    };
    assert!(t.list_cases_blocking(&yesterday).unwrap().cases.is_empty());
}

#[test]
fn work_of_an_earlier_account_is_not_adopted_by_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let t = Terminal::open(dir.path(), TerminalConfig::new("account-1")).unwrap();
    enrol_offline(&t, "account-1", &[G01]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let case = t.create_case(draft(true), None).unwrap();
    enrol_offline(&t, "account-2", &[G01]);
    let ops = t.store().pending_ops(10).unwrap();
    let refused = ops
        .iter()
        .map(|o| refusal(o, "forbidden", "the actor must be this device's account"))
        .collect();
    t.store()
        .apply_sync(&answer(refused), now_millis(), &|_| None)
        .unwrap();
    drop(t);
    let t = Terminal::open(dir.path(), TerminalConfig::new("account-2")).unwrap();
    let attention = t.needs_attention().unwrap();
    assert_eq!(attention.len(), 1, "still refused, still listed");
    assert_eq!(attention[0].op.actor.id, "account-1");
    assert!(!attention[0].resending_may_help);
    assert_eq!(t.case_detail_blocking(&case.id).unwrap().refused.len(), 1);
}
