//! The centre's steps on a case, every transition, as ops the grid leader's
//! terminal pulls.

use gridcase_core::case::{CaseStatus, Face};
use gridcase_core::op::Role;
use gridcase_core::time::{now_millis, DAY, HOUR};
use reqwest::StatusCode;
use serde_json::json;

use crate::centre_support::{dispatch_body, Centre};
use crate::common::{assert_accepted, in_g1, in_g2, rate, verify};

#[tokio::test]
async fn a_case_runs_its_whole_life_through_the_centre() {
    let c = Centre::start().await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let municipal = c.handler("shizheng", &c.municipal).await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    let (_, cursor) = c.server.pull_all(&leader, 0).await;

    // Received, it waits in the dispatcher's own queue.
    assert_eq!(
        c.queue_ids(&k1, "mine=true&status=received").await,
        vec![case.to_string()]
    );
    let proposed = c.stored(case).proposed_deadline.unwrap();
    let out = c
        .ok(&k1, case, "dispatch", dispatch_body(&c.municipal))
        .await;
    assert_eq!(out["status"], "dispatched");
    let stored = c.stored(case);
    assert_eq!(
        stored.deadline,
        Some(proposed),
        "the grid leader's deadline by default"
    );
    assert_eq!(stored.department.as_deref(), Some(c.municipal.as_str()));

    assert_eq!(
        c.queue_ids(&municipal, "mine=true").await,
        vec![case.to_string()]
    );
    c.ok(&municipal, case, "accept", json!({})).await;
    c.ok(&municipal, case, "progress", json!({"note": "已设置围挡"}))
        .await;
    c.ok(&municipal, case, "resolve", json!({"note": "已修复"}))
        .await;
    assert!(c.queue_ids(&municipal, "mine=true").await.is_empty());

    // The terminal pulls every step, made by the centre's staff.
    let (pulled, _) = c.server.pull_all(&leader, cursor).await;
    let steps: Vec<(&str, Role)> = pulled
        .iter()
        .map(|p| (p.op.kind.name(), p.op.actor.role))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("dispatch", Role::Dispatcher),
            ("accept", Role::Department),
            ("report progress on", Role::Department),
            ("resolve", Role::Department),
        ]
    );
    assert!(pulled.iter().all(|p| p.grid_id.as_deref() == Some("g-1")));

    // Closing waits for the grid leader's check on site.
    let (status, body) = c.act(&k1, case, "close", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_accepted(&c.server.push(&leader, &[verify(&leader, case, true)]).await);
    assert_accepted(
        &c.server
            .push(&leader, &[rate(&leader, case, Face::Smiley)])
            .await,
    );
    let (_, view) = c.case(&k1, case).await;
    assert_eq!(view["case"]["status"], "rated");
    assert_eq!(view["actions"], json!(["cancel", "close"]));
    c.ok(&k1, case, "close", json!({})).await;
    assert_eq!(c.stored(case).status, CaseStatus::Closed);

    // The timeline: who, when, in order, with names the centre knows.
    let (_, view) = c.case(&k1, case).await;
    let timeline = view["timeline"].as_array().unwrap();
    let kinds: Vec<&str> = timeline
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "create", "submit", "receive", "dispatch", "accept", "progress", "resolve", "verify",
            "rate", "close"
        ]
    );
    assert_eq!(timeline[3]["actor_name"], "k1 同志");
    assert_eq!(timeline[0]["actor_name"], "网格长");
    let seqs: Vec<u64> = timeline
        .iter()
        .map(|e| e["server_seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(view["grid_name"], "一网格");
    assert_eq!(view["actions"], json!([]));
}

#[tokio::test]
async fn reassigning_moves_the_case_to_the_other_department() {
    let c = Centre::start().await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let municipal = c.handler("shizheng", &c.municipal).await;
    let housing = c.handler("zhujian", &c.housing).await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;

    let (status, body) = c
        .act(
            &k1,
            case,
            "dispatch",
            json!({"department_id": c.municipal, "deadline": now_millis() - HOUR}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "deadline");
    assert_eq!(body["reason"], "in_the_past", "a code the page translates");
    let (status, body) = c.act(&k1, case, "dispatch", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "department_id");
    assert_eq!(body["reason"], "required");

    c.ok(&k1, case, "dispatch", dispatch_body(&c.municipal))
        .await;
    c.ok(&municipal, case, "accept", json!({})).await;
    let deadline = now_millis() + 3 * DAY;
    c.ok(
        &k1,
        case,
        "dispatch",
        json!({"department_id": c.housing, "deadline": deadline, "note": "改派住建"}),
    )
    .await;
    let stored = c.stored(case);
    assert_eq!(stored.status, CaseStatus::Dispatched);
    assert_eq!(stored.department.as_deref(), Some(c.housing.as_str()));
    assert_eq!(stored.deadline, Some(deadline));
    assert!(c.queue_ids(&municipal, "").await.is_empty());
    assert_eq!(c.case(&municipal, case).await.0, StatusCode::NOT_FOUND);
    assert_eq!(c.queue_ids(&housing, "").await, vec![case.to_string()]);
    // Reassigning again without a deadline keeps the one set.
    c.ok(&k1, case, "dispatch", json!({"department_id": c.municipal}))
        .await;
    assert_eq!(c.stored(case).deadline, Some(deadline));
}

#[tokio::test]
async fn an_escalated_case_goes_to_the_level_above_and_out_of_the_lower_hands() {
    let c = Centre::start().await;
    let t1 = c.dispatcher("t1", "t-1").await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let city = c.dispatcher("city", "c").await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;

    // It queues at the nearest centre with a dispatcher: the township.
    let (_, view) = c.case(&t1, case).await;
    assert_eq!(view["desk"]["queue_unit_id"], "t-1");
    assert_eq!(
        c.queue_ids(&t1, "queue_unit=t-1").await,
        vec![case.to_string()]
    );
    let (status, body) = c.act(&t1, case, "escalate", json!({"reason": ""})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "reason");
    let out = c
        .ok(
            &t1,
            case,
            "escalate",
            json!({"reason": "涉及多个部门，本级无法解决"}),
        )
        .await;
    assert_eq!(out["status"], "escalated");

    let (_, view) = c.case(&t1, case).await;
    assert_eq!(view["desk"]["queue_unit_id"], "k-1");
    assert_eq!(view["desk"]["queue_unit_name"], "龙山区");
    assert_eq!(
        view["actions"],
        json!([]),
        "still visible, no longer theirs"
    );
    let (status, _) = c
        .act(&t1, case, "dispatch", dispatch_body(&c.municipal))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(c.queue_ids(&t1, "mine=true").await.is_empty());
    assert_eq!(c.queue_ids(&k1, "mine=true").await, vec![case.to_string()]);

    // The county escalates further; the city is the top.
    c.ok(&k1, case, "dispatch", dispatch_body(&c.municipal))
        .await;
    c.ok(&k1, case, "escalate", json!({"reason": "需市级协调"}))
        .await;
    let (_, view) = c.case(&city, case).await;
    assert_eq!(view["desk"]["queue_unit_id"], "c");
    assert_eq!(view["desk"]["department_id"], serde_json::Value::Null);
    let (status, body) = c
        .act(&city, case, "escalate", json!({"reason": "再上报"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    c.ok(&city, case, "dispatch", dispatch_body(&c.housing))
        .await;
    assert_eq!(c.stored(case).status, CaseStatus::Dispatched);
}

#[tokio::test]
async fn a_dispatcher_cancels_with_a_reason_and_then_nothing_more_happens() {
    let c = Centre::start().await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    let (status, body) = c.act(&k1, case, "cancel", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "reason");
    c.ok(&k1, case, "cancel", json!({"reason": "重复上报"}))
        .await;
    assert_eq!(c.stored(case).status, CaseStatus::Cancelled);
    for action in ["dispatch", "chase", "close", "cancel"] {
        let (status, body) = c
            .act(
                &k1,
                case,
                action,
                json!({"department_id": c.municipal, "reason": "x"}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {body}");
    }
    assert!(c.queue_ids(&k1, "mine=true").await.is_empty());
    assert_eq!(
        c.queue_ids(&k1, "status=cancelled").await,
        vec![case.to_string()]
    );
}

#[tokio::test]
async fn not_done_on_site_and_a_frowny_face_reopen_the_case_to_its_department() {
    let c = Centre::start().await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let municipal = c.handler("shizheng", &c.municipal).await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    c.ok(&k1, case, "dispatch", dispatch_body(&c.municipal))
        .await;
    c.ok(&municipal, case, "resolve", json!({"note": "已修复"}))
        .await;

    assert_accepted(
        &c.server
            .push(&leader, &[verify(&leader, case, false)])
            .await,
    );
    let (_, view) = c.case(&municipal, case).await;
    assert_eq!(view["case"]["status"], "reopened");
    assert_eq!(view["desk"]["department_name"], "市政");
    assert_eq!(view["desk"]["reopen_reason"], "现场查看");
    assert_eq!(view["actions"], json!(["accept", "resolve"]));
    assert_eq!(
        c.queue_ids(&municipal, "mine=true&status=reopened").await,
        vec![case.to_string()]
    );

    c.ok(&municipal, case, "accept", json!({})).await;
    c.ok(&municipal, case, "resolve", json!({"note": "重新修复"}))
        .await;
    let (_, view) = c.case(&k1, case).await;
    assert_eq!(
        view["desk"]["reopen_reason"], "现场查看",
        "kept until dispatched again"
    );
    assert_accepted(&c.server.push(&leader, &[verify(&leader, case, true)]).await);
    let mut frowny = rate(&leader, case, Face::Frowny);
    if let gridcase_core::op::OpKind::Rate { comment, .. } = &mut frowny.kind {
        *comment = "井盖还是松的".into();
    }
    assert_accepted(&c.server.push(&leader, &[frowny]).await);
    let (_, view) = c.case(&municipal, case).await;
    assert_eq!(view["case"]["status"], "reopened");
    assert_eq!(view["desk"]["reopen_reason"], "井盖还是松的");
    assert_eq!(
        c.queue_ids(&municipal, "mine=true").await,
        vec![case.to_string()]
    );
}

#[tokio::test]
async fn the_queue_filters_searches_and_pages() {
    let c = Centre::start().await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let leader = c.leader("网格长", &["g-1", "g-2"]).await;
    let a = c.report(&leader, in_g1()).await;
    let b = c.report(&leader, in_g2()).await;
    let d = c.report(&leader, in_g2()).await;
    c.ok(
        &k1,
        b,
        "dispatch",
        json!({"department_id": c.housing, "deadline": now_millis() + 2 * HOUR}),
    )
    .await;
    c.ok(&k1, d, "dispatch", dispatch_body(&c.municipal)).await;

    assert_eq!(
        c.queue_ids(&k1, "status=received").await,
        vec![a.to_string()]
    );
    let mut g2 = c.queue_ids(&k1, "unit=g-2").await;
    g2.sort();
    let mut want = vec![b.to_string(), d.to_string()];
    want.sort();
    assert_eq!(g2, want);
    assert_eq!(
        c.queue_ids(&k1, &format!("department={}", c.housing)).await,
        vec![b.to_string()]
    );
    assert_eq!(
        c.queue_ids(&k1, "category=collapsed_manhole").await.len(),
        3
    );
    assert!(c.queue_ids(&k1, "category=rental").await.is_empty());
    assert_eq!(
        c.queue_ids(&k1, "q=%E4%BA%95%E7%9B%96").await.len(),
        3,
        "井盖 in the description"
    );
    assert!(
        c.queue_ids(&k1, "q=100%25").await.is_empty(),
        "% is plain text"
    );
    assert!(c.queue_ids(&k1, "overdue=true").await.is_empty());
    // The nearest deadline first.
    assert_eq!(c.queue_ids(&k1, "").await[0], b.to_string());

    let (_, page) = c.get(&k1, "/v1/centre/cases?per_page=2&page=2").await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["cases"].as_array().unwrap().len(), 1);
    assert_eq!(page["page"], 2);
    let (_, first) = c.get(&k1, "/v1/centre/cases?per_page=1").await;
    let row = &first["cases"][0];
    assert_eq!(row["department_name"], "住建");
    assert_eq!(row["grid_id"], "g-2");
    assert_eq!(row["overdue"], false);
    let (status, depts) = c.get(&k1, "/v1/centre/departments").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(depts.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_case_page_lists_photos_the_reader_may_download() {
    use crate::common::{attach, photo_bytes, photo_ref};
    let c = Centre::start().await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let k2 = c.dispatcher("k2", "k-2").await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    let (photo, thumb) = (photo_bytes(1, 50_000), photo_bytes(2, 5_000));
    c.server.upload(&leader, &photo).await;
    c.server.upload(&leader, &thumb).await;
    let r = photo_ref(&photo, &thumb);
    assert_accepted(
        &c.server
            .push(&leader, &[attach(&leader, case, r.clone())])
            .await,
    );

    let (_, view) = c.case(&k1, case).await;
    assert_eq!(view["photos"][0]["sha256"], r.sha256.as_str());
    for sha in [&r.sha256, &r.thumb_sha256] {
        let path = format!("/v1/centre/cases/{case}/photos/{sha}");
        let resp = c
            .server
            .http
            .get(c.server.url(&path))
            .header("cookie", &k1.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = resp.bytes().await.unwrap();
        assert!(bytes == photo || bytes == thumb);
        // Another county's dispatcher, and a photo not of this case: not found.
        assert_eq!(c.get(&k2, &path).await.0, StatusCode::NOT_FOUND);
    }
    let other = "0".repeat(64);
    let (status, _) = c
        .get(&k1, &format!("/v1/centre/cases/{case}/photos/{other}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = c
        .get(&k1, &format!("/v1/centre/cases/{case}/photos/nope"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "sha256");
}

#[tokio::test]
async fn a_new_map_without_the_queue_unit_hands_the_case_to_a_centre_still_above_it() {
    let c = Centre::start().await;
    let t1 = c.dispatcher("t1", "t-1").await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    let (_, view) = c.case(&t1, case).await;
    assert_eq!(view["desk"]["queue_unit_id"], "t-1");

    // The township is merged away: g-1 now hangs under the county.
    let merged = crate::centre_support::COUNTIES
        .replace(
            r#""id": "g-1", "name": "一网格", "level": "grid", "parent": "t-1""#,
            r#""id": "g-1", "name": "一网格", "level": "grid", "parent": "k-1""#,
        )
        .replace(
            r#""id": "t-1", "name": "向阳街道""#,
            r#""id": "t-9", "name": "向阳街道""#,
        )
        .replace(r#""parent": "t-1""#, r#""parent": "t-9""#);
    c.server.admin().import_grids(&merged).unwrap();
    let (_, view) = c.case(&k1, case).await;
    assert_eq!(view["desk"]["queue_unit_id"], "k-1");
    assert!(view["actions"]
        .as_array()
        .unwrap()
        .contains(&json!("dispatch")));
}

#[tokio::test]
async fn a_case_offers_only_the_departments_that_serve_its_area() {
    let c = Centre::start().await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    let (status, all) = c.get(&k1, "/v1/centre/departments").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        all.as_array().unwrap().len(),
        3,
        "the filter lists every one"
    );
    let (status, serving) = c
        .get(&k1, &format!("/v1/centre/departments?case={case}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut ids: Vec<&str> = serving
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![c.municipal.as_str(), c.housing.as_str()];
    want.sort();
    assert_eq!(ids, want, "not the other county's water department");
    // And one the reader may not see answers like one that does not exist.
    let k2 = c.dispatcher("k2", "k-2").await;
    let (status, _) = c
        .get(&k2, &format!("/v1/centre/departments?case={case}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = c
        .act(&k1, case, "dispatch", json!({"department_id": c.k2_water}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["reason"], "department_not_serving");
    // A deadline as the page's picker gives it, on the deployment's clock.
    let out = c
        .ok(
            &k1,
            case,
            "dispatch",
            json!({"department_id": c.municipal, "deadline_local": "2199-12-01T18:00"}),
        )
        .await;
    assert_eq!(out["status"], "dispatched");
    let zone = gridcase_core::zone::Zone::default();
    assert_eq!(
        c.stored(case).deadline.map(|d| zone.format_minute(d)),
        Some("2199-12-01 18:00".to_string())
    );
}
