//! Every case sits in a queue a person reads: a case outside every grid
//! waits at the top-level centre (unplaced) until it is placed in a grid or
//! cancelled, and cases that arrived before any dispatcher move to one when
//! staff are appointed or moved.

use gridcase_core::location::GeoPoint;
use gridcase_server::centre::staff::StaffRole;
use reqwest::StatusCode;
use serde_json::json;

use crate::centre_support::{supervisor_cookie, Centre, COUNTIES};
use crate::common::in_g1;

/// Tian'anmen: no grid of Liaoyuan's map.
fn in_beijing() -> GeoPoint {
    GeoPoint::new(39.9087, 116.3975, 8.0).unwrap()
}

/// The county map, with a courtyard cut out of g-1 (a hole of its polygon),
/// still inside township t-1.
fn counties_with_a_hole() -> String {
    let g1 = r#"[[[125.0, 42.8], [125.1, 42.8], [125.1, 42.9], [125.0, 42.9], [125.0, 42.8]]]"#;
    let holed = r#"[[[125.0, 42.8], [125.1, 42.8], [125.1, 42.9], [125.0, 42.9], [125.0, 42.8]],
        [[125.04, 42.84], [125.06, 42.84], [125.06, 42.86], [125.04, 42.86], [125.04, 42.84]]]"#;
    assert!(COUNTIES.contains(g1));
    COUNTIES.replacen(g1, holed, 1)
}

fn in_the_hole() -> GeoPoint {
    GeoPoint::new(42.85, 125.05, 5.0).unwrap()
}

#[tokio::test]
async fn a_case_outside_every_grid_waits_at_the_top_until_placed_or_cancelled() {
    let c = Centre::start().await;
    c.server
        .admin()
        .import_grids(&counties_with_a_hole())
        .unwrap();
    let city = c.dispatcher("city", "c").await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let boss = c.supervisor("zhao", "c").await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let neighbour = c.leader("二网格长", &["g-2"]).await;
    let far = c.report(&leader, in_beijing()).await;
    let hole = c.report(&leader, in_the_hole()).await;

    // The top-level centre holds both, in the unplaced filter, with a badge.
    let unplaced = c.queue_ids(&city, "unplaced=true").await;
    assert_eq!(unplaced.len(), 2, "{unplaced:?}");
    assert!(unplaced.contains(&far.to_string()) && unplaced.contains(&hole.to_string()));
    let (_, page) = c.get(&city, "/v1/centre/cases?unplaced=true").await;
    assert!(page["cases"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["unplaced"] == true && r["queue_unit_id"] == "c"));
    assert_eq!(c.queue_ids(&boss, "unplaced=true").await.len(), 2);
    assert_eq!(c.queue_ids(&city, "mine=true").await.len(), 2);
    // A county does not answer for a place in no grid.
    assert!(c.queue_ids(&k1, "").await.is_empty());
    assert_eq!(c.case(&k1, far).await.0, StatusCode::NOT_FOUND);

    // The figures of the city count them, as unplaced.
    let cookie = supervisor_cookie(&c.server, "c").await;
    let (_, f) = c
        .server
        .send(
            c.server
                .http
                .get(c.server.url("/v1/figures?unit=c"))
                .header("cookie", &cookie),
        )
        .await;
    assert_eq!(f["total"]["cases"], 2, "{f}");
    assert_eq!(f["unplaced"]["cases"], 2);

    // The dispatcher places the far one in g-2 (say the leader recorded it
    // from a photo taken elsewhere): it goes to that grid's county and its
    // terminals, like any case of g-2.
    let (_, view) = c.case(&city, far).await;
    assert_eq!(view["desk"]["unplaced"], true);
    assert!(view["actions"]
        .as_array()
        .unwrap()
        .contains(&json!("place")));
    let (status, body) = c.act(&city, far, "place", json!({"grid_id": "t-1"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["reason"], "not_a_grid");
    c.ok(
        &city,
        far,
        "place",
        json!({"grid_id": "g-2", "note": "照片拍于二网格"}),
    )
    .await;
    let (_, view) = c.case(&k1, far).await;
    assert_eq!(view["case"]["grid_id"], "g-2");
    assert_eq!(view["desk"]["unplaced"], false);
    assert_eq!(view["desk"]["queue_unit_id"], "k-1");
    assert!(view["actions"]
        .as_array()
        .unwrap()
        .contains(&json!("dispatch")));
    let kinds: Vec<&str> = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.last(), Some(&"place"));
    let (pulled, _) = c.server.pull_all(&neighbour, 0).await;
    let mine: Vec<_> = pulled.iter().filter(|p| p.op.case_id == far).collect();
    assert!(
        mine.iter().any(|p| p.op.kind.code() == "create"),
        "the whole history"
    );
    assert!(mine.iter().all(|p| p.grid_id.as_deref() == Some("g-2")));
    // Placed, it no longer waits unplaced; a case the map places is not placed by hand.
    assert_eq!(
        c.queue_ids(&city, "unplaced=true").await,
        vec![hole.to_string()]
    );
    let inside = c.report(&leader, in_g1()).await;
    let (status, body) = c
        .act(&city, inside, "place", json!({"grid_id": "g-2"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["reason"], "already_placed");

    // The one in the courtyard is a mistaken report: cancelled.
    c.ok(
        &city,
        hole,
        "cancel",
        json!({"reason": "位置有误，重复上报"}),
    )
    .await;
    assert!(c
        .queue_ids(&city, "unplaced=true&mine=true")
        .await
        .is_empty());
}

#[tokio::test]
async fn cases_that_arrived_before_any_dispatcher_move_to_the_first_one() {
    let c = Centre::start().await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    let far = c.report(&leader, in_beijing()).await;
    let queue = |c: &Centre, id| {
        let conn = rusqlite::Connection::open(c.server.dir.path().join("gridcase.db")).unwrap();
        conn.query_row(
            "SELECT queue_unit_id FROM case_desk WHERE case_id = ?1",
            [id],
            |r| r.get::<_, Option<String>>(0),
        )
        .unwrap()
    };
    assert_eq!(queue(&c, case.to_string()).as_deref(), Some("g-1"));

    // A county dispatcher is appointed: the waiting case is theirs now.
    let k1 = c.dispatcher("k1", "k-1").await;
    let (_, view) = c.case(&k1, case).await;
    assert_eq!(view["desk"]["queue_unit_id"], "k-1", "{view}");
    assert_eq!(view["desk"]["queue_unit_name"], "龙山区");
    assert_eq!(
        c.queue_ids(&k1, "queue_unit=k-1").await,
        vec![case.to_string()]
    );

    // The county's dispatcher moves to the township: cases go with the
    // nearest unit someone reads.
    c.create_staff("city", StaffRole::Dispatcher, Some("c"), None);
    assert_eq!(queue(&c, far.to_string()).as_deref(), Some("c"));
    c.server.admin().move_staff("k1", "t-1").unwrap();
    assert_eq!(
        queue(&c, case.to_string()).as_deref(),
        Some("c"),
        "k-1 has nobody now: up to the city"
    );
    let err = c.server.admin().move_staff("nobody", "t-1").unwrap_err();
    assert_eq!(err.reason(), Some("no_such_login"));
    let err = c.server.admin().move_staff("city", "nowhere").unwrap_err();
    assert_eq!(err.reason(), Some("not_a_unit"));
}
