use gridcase_core::case::Face;
use gridcase_core::ids::CaseId;
use gridcase_core::op::{OpKind, Role};
use gridcase_core::protocol::{PushStatus, SyncRequest};

use crate::common::*;

#[tokio::test]
async fn a_push_is_applied_once_and_a_retry_gets_the_same_answers() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let watcher = server.leader("区网格长", &["t-1"]).await;
    let id = CaseId::new();
    let batch = vec![
        create(&dev, id, Some(in_g1())),
        edit_location(&dev, id, in_mg1a()),
        submit(&dev, id),
    ];

    let first = server.push(&dev, &batch).await;
    let seqs = assert_accepted(&first);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // The response was lost; the terminal sends the very same batch again.
    let again = server.push(&dev, &batch).await;
    assert_eq!(again, first);
    // ...and once more inside a bigger batch with a new op after it.
    let verify_too_early = verify(&dev, id, true);
    let mut bigger = batch.clone();
    bigger.push(verify_too_early.clone());
    let third = server.push(&dev, &bigger).await;
    assert_eq!(&third[..3], &first[..]);
    assert_eq!(third[3].status, PushStatus::Rejected);

    // Nothing was applied twice: one Create, one Edit, one Submit, one Receive.
    let (ops, _) = server.pull_all(&watcher, 0).await;
    let kinds: Vec<&str> = ops.iter().map(|o| kind_name(&o.op)).collect();
    assert_eq!(kinds, ["create", "edit", "submit", "receive"]);
    assert!(ops.iter().all(|o| o.grid_id.as_deref() == Some("g-1")));
    let cases = server.admin().list_cases().unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].status, "received");
}

#[tokio::test]
async fn the_server_receives_a_submitted_case() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let id = reported_case(&server, &dev, in_g1()).await;
    // The device's own ops are not sent back, the server's Receive is.
    let page = server.pull(&dev, 0, 100).await;
    assert_eq!(page.ops.len(), 1);
    let receive = &page.ops[0];
    assert!(matches!(receive.op.kind, OpKind::Receive));
    assert_eq!(receive.op.case_id, id);
    assert_eq!(receive.op.actor.role, Role::System);
    assert_eq!(receive.op.actor.id, "server");
    assert_eq!(receive.grid_id.as_deref(), Some("g-1"));
    assert_eq!(page.cursor, receive.server_seq);
    assert!(!page.more);
}

#[tokio::test]
async fn ops_the_rules_refuse_come_back_rejected_with_a_reason() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let id = CaseId::new();
    let no_place = create(&dev, id, None);
    let early_submit = submit(&dev, id);
    let results = server
        .push(
            &dev,
            &[no_place, early_submit.clone(), verify(&dev, id, true)],
        )
        .await;
    assert_eq!(results[0].status, PushStatus::Accepted);
    assert_eq!(results[1].status, PushStatus::Rejected);
    assert_eq!(results[1].code.as_deref(), Some("invalid_input"));
    assert!(
        results[1]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("location"),
        "{results:?}"
    );
    assert_eq!(results[2].code.as_deref(), Some("not_allowed"));
    assert_eq!(
        results[2].reason.as_deref(),
        Some("cannot verify a case that is draft")
    );

    // Once the place is set the case can be submitted, by a new op: the old
    // one keeps its answer.
    let results = server
        .push(
            &dev,
            &[
                edit_location(&dev, id, in_g1()),
                early_submit.clone(),
                submit(&dev, id),
            ],
        )
        .await;
    assert_eq!(results[0].status, PushStatus::Accepted);
    assert_eq!(results[1].status, PushStatus::Rejected);
    assert_eq!(results[1].code.as_deref(), Some("invalid_input"));
    assert_eq!(results[2].status, PushStatus::Accepted);

    // Ops on a case that does not exist, and a second Create.
    let results = server
        .push(
            &dev,
            &[submit(&dev, CaseId::new()), create(&dev, id, Some(in_g1()))],
        )
        .await;
    assert_eq!(results[0].code.as_deref(), Some("unknown_case"));
    assert_eq!(results[1].code.as_deref(), Some("case_exists"));

    // A resident rates only what was verified.
    let results = server.push(&dev, &[rate(&dev, id, Face::Smiley)]).await;
    assert_eq!(results[0].code.as_deref(), Some("not_allowed"));
}

#[tokio::test]
async fn a_device_acts_only_as_its_own_account_and_terminal_roles() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let other = server.leader("李四", &["g-1"]).await;
    let id = CaseId::new();

    let mut as_other = create(&dev, id, Some(in_g1()));
    as_other.actor.id = other.account_id.clone();
    let as_dispatcher = op_as(
        &dev,
        Role::Dispatcher,
        id,
        create(&dev, id, Some(in_g1())).kind,
    );
    let as_system = op_as(&dev, Role::System, id, OpKind::Receive);
    let results = server
        .push(&dev, &[as_other, as_dispatcher, as_system])
        .await;
    for r in &results {
        assert_eq!(r.status, PushStatus::Rejected);
        assert_eq!(r.code.as_deref(), Some("forbidden"), "{r:?}");
    }
    assert!(server.admin().list_cases().unwrap().is_empty());

    // A resident's op on the grid leader's terminal carries the leader's account.
    let id = reported_case(&server, &dev, in_g1()).await;
    let mut admin = server.admin();
    admin.create_department("市政", None).unwrap();
    admin.dispatch(&id.to_string(), "市政", 48, "").unwrap();
    admin.resolve(&id.to_string(), "已修复").unwrap();
    let results = server
        .push(
            &dev,
            &[verify(&dev, id, true), rate(&dev, id, Face::Smiley)],
        )
        .await;
    assert_accepted(&results);
}

#[tokio::test]
async fn ops_on_cases_outside_the_device_grids_are_not_visible() {
    let server = Server::start().await;
    let a = server.leader("张三", &["g-1"]).await;
    let b = server.leader("李四", &["g-2"]).await;
    let id = CaseId::new();
    assert_accepted(&server.push(&a, &[create(&a, id, Some(in_g1()))]).await);

    let results = server
        .push(
            &b,
            &[
                edit_location(&b, id, in_g2()),
                create(&b, id, Some(in_g2())),
            ],
        )
        .await;
    for r in &results {
        assert_eq!(r.status, PushStatus::Rejected);
        assert_eq!(r.code.as_deref(), Some("not_visible"), "{r:?}");
    }
    // Nothing of the refused ops reached anyone.
    let (ops, _) = server.pull_all(&a, 0).await;
    assert!(ops.is_empty(), "{ops:?}");
}

#[tokio::test]
async fn an_op_id_taken_by_another_device_is_refused() {
    let server = Server::start().await;
    let a = server.leader("张三", &["g-1"]).await;
    let b = server.leader("李四", &["g-1"]).await;
    let id = CaseId::new();
    let op = create(&a, id, Some(in_g1()));
    assert_accepted(&server.push(&a, std::slice::from_ref(&op)).await);
    let mut stolen = create(&b, CaseId::new(), Some(in_g1()));
    stolen.id = op.id;
    let results = server.push(&b, &[stolen]).await;
    assert_eq!(results[0].status, PushStatus::Rejected);
    assert_eq!(results[0].code.as_deref(), Some("duplicate_op_id"));
    assert_eq!(results[0].server_seq, None);
}

#[tokio::test]
async fn an_attached_photo_waits_until_its_files_are_uploaded() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let id = CaseId::new();
    let (photo, thumb) = (photo_bytes(1, 300_000), photo_bytes(2, 20_000));
    let attach_op = attach(&dev, id, photo_ref(&photo, &thumb));
    let batch = vec![
        create(&dev, id, Some(in_g1())),
        attach_op.clone(),
        submit(&dev, id),
    ];

    let results = server.push(&dev, &batch).await;
    assert_eq!(
        results.len(),
        2,
        "the push stops at the deferred op: {results:?}"
    );
    assert_eq!(results[0].status, PushStatus::Accepted);
    assert_eq!(results[1].status, PushStatus::Deferred);
    assert_eq!(results[1].code.as_deref(), Some("photo_missing"));
    assert!(results[1].reason.as_deref().unwrap().contains("photo"));

    // The photo alone is not enough: the thumbnail is missing too.
    server.upload(&dev, &photo).await;
    let results = server.push(&dev, &batch).await;
    assert_eq!(results.len(), 2);
    assert_eq!(results[1].status, PushStatus::Deferred);
    assert!(results[1].reason.as_deref().unwrap().contains("thumbnail"));

    server.upload(&dev, &thumb).await;
    let results = server.push(&dev, &batch).await;
    assert_accepted(&results);
    let cases = server.admin().list_cases().unwrap();
    assert_eq!(cases[0].status, "received");
}

#[tokio::test]
async fn a_photo_ref_whose_size_lies_is_rejected() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let id = CaseId::new();
    let (photo, thumb) = (photo_bytes(3, 1000), photo_bytes(4, 100));
    server.upload(&dev, &photo).await;
    server.upload(&dev, &thumb).await;
    let mut wrong = photo_ref(&photo, &thumb);
    wrong.bytes += 1;
    let results = server
        .push(
            &dev,
            &[create(&dev, id, Some(in_g1())), attach(&dev, id, wrong)],
        )
        .await;
    assert_eq!(results[1].status, PushStatus::Rejected);
    assert_eq!(results[1].code.as_deref(), Some("invalid_input"));
}

#[tokio::test]
async fn a_centre_step_flows_back_to_the_reporter() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let id = reported_case(&server, &dev, in_mg1a()).await;
    let page = server.pull(&dev, 0, 100).await;
    let cursor = page.cursor;

    let mut admin = server.admin();
    let municipal = admin.create_department("市政", None).unwrap().id;
    let dispatched = admin
        .dispatch(&id.to_string(), "市政", 48, "请尽快处理")
        .unwrap();
    assert_eq!(dispatched.status, "dispatched");
    admin.chase(&id.to_string(), "临近时限").unwrap();
    let listed = admin.list_cases().unwrap();
    assert_eq!(listed[0].department.as_deref(), Some(municipal.as_str()));
    assert_eq!(listed[0].department_name.as_deref(), Some("市政"));
    assert_eq!(listed[0].grid_id.as_deref(), Some("g-1"));

    let page = server.pull(&dev, cursor, 100).await;
    let kinds: Vec<&str> = page.ops.iter().map(|o| kind_name(&o.op)).collect();
    assert_eq!(kinds, ["dispatch", "chase"]);
    let OpKind::Dispatch {
        department,
        deadline,
        note,
    } = &page.ops[0].op.kind
    else {
        unreachable!()
    };
    assert_eq!(department, &municipal, "by id, so its name resolves");
    assert_eq!(note, "请尽快处理");
    assert!(
        page.names
            .iter()
            .any(|n| n.id == municipal && n.name == "市政"),
        "the answer names the department: {:?}",
        page.names
    );
    assert!(*deadline > gridcase_core::time::now_millis());
    assert_eq!(page.ops[0].op.actor.role, Role::Dispatcher);
    assert_eq!(page.ops[0].grid_id.as_deref(), Some("g-1"));

    let resolved = admin.resolve(&id.to_string(), "已修复").unwrap();
    assert_eq!(resolved.status, "resolved");
    assert_eq!(resolved.server_seqs.len(), 2, "accept and resolve");
    let page = server.pull(&dev, page.cursor, 100).await;
    let kinds: Vec<&str> = page.ops.iter().map(|o| kind_name(&o.op)).collect();
    assert_eq!(kinds, ["accept", "resolve"]);

    // The grid leader checks on site, through the same sync.
    let results = server.push(&dev, &[verify(&dev, id, true)]).await;
    assert_accepted(&results);
    assert_eq!(server.admin().list_cases().unwrap()[0].status, "verified");

    // The rules hold for the admin too.
    let err = server
        .admin()
        .dispatch(&id.to_string(), "市政", 1, "")
        .unwrap_err();
    assert_eq!(err.code(), Some("not_allowed"));
}

#[tokio::test]
async fn one_sync_pushes_and_pulls() {
    let server = Server::start().await;
    let a = server.leader("张三", &["g-1"]).await;
    let b = server.leader("李四", &["g-1"]).await;
    let theirs = reported_case(&server, &b, in_g1()).await;
    let mine = CaseId::new();
    let resp = server
        .sync_req(
            &a,
            &SyncRequest {
                push: vec![create(&a, mine, Some(in_g1()))],
                cursor: 0,
                pull_limit: 100,
                history: None,
            },
        )
        .await;
    assert_accepted(&resp.results);
    // B's three ops; not A's own Create, which committed before the pull.
    assert!(resp.ops.iter().all(|o| o.op.case_id == theirs));
    assert_eq!(resp.ops.len(), 3);
    assert_eq!(resp.cursor, resp.results[0].server_seq.unwrap());
}

/// A terminal adopts, at its first enrolment, what it recorded before (the
/// op says under which local name), and a draft takes its place from a
/// photo's GPS in the attach step itself. The server accepts both, keeps
/// them as sent, and places the case by the photo's point.
#[tokio::test]
async fn steps_recorded_before_enrolment_and_a_photos_place_are_kept_as_sent() {
    use gridcase_core::location::{GeoPoint, Location, LocationSource};
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let watcher = server.leader("李四", &["g-1"]).await;
    let id = CaseId::new();
    let mut create = create(&dev, id, None);
    create.recorded_before_enrolment_as = Some("grid-leader".into());
    let (photo, thumb) = (photo_bytes(7, 4000), photo_bytes(8, 500));
    server.upload(&dev, &photo).await;
    server.upload(&dev, &thumb).await;
    let place = Location {
        point: GeoPoint::new(in_g1().lat, in_g1().lon, None).unwrap(),
        address: None,
        source: LocationSource::PhotoExif,
    };
    let attach = op(
        &dev,
        id,
        OpKind::AttachPhoto {
            photo: photo_ref(&photo, &thumb),
            location: Some(place.clone()),
        },
    );
    let results = server
        .push(&dev, &[create.clone(), attach.clone(), submit(&dev, id)])
        .await;
    assert_accepted(&results);

    let (ops, _) = server.pull_all(&watcher, 0).await;
    let pulled_create = ops.iter().find(|o| o.op.id == create.id).unwrap();
    assert_eq!(
        pulled_create.op.recorded_before_enrolment_as.as_deref(),
        Some("grid-leader")
    );
    let pulled_attach = ops.iter().find(|o| o.op.id == attach.id).unwrap();
    assert_eq!(pulled_attach.op, attach, "kept as sent");
    assert!(ops.iter().all(|o| o.grid_id.as_deref() == Some("g-1")));
    let cases = server.admin().list_cases().unwrap();
    assert_eq!(cases[0].grid_id.as_deref(), Some("g-1"));

    // A photo may not move a case that has its place.
    let again = op(
        &dev,
        id,
        OpKind::AttachPhoto {
            photo: photo_ref(&photo, &thumb),
            location: Some(place),
        },
    );
    let results = server.push(&dev, &[again]).await;
    assert_eq!(results[0].status, PushStatus::Rejected);
    assert_eq!(results[0].code.as_deref(), Some("invalid_input"));
}
