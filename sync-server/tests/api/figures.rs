//! `GET /v1/figures` over cases recorded by terminals and handled by the centre.

use reqwest::StatusCode;
use serde_json::Value;

use crate::centre_support::supervisor_cookie;
use crate::common::*;

async fn figures(server: &Server, cookie: &str, query: &str) -> (StatusCode, Value) {
    server
        .send(
            server
                .http
                .get(server.url(&format!("/v1/figures{query}")))
                .header("cookie", cookie),
        )
        .await
}

#[tokio::test]
async fn figures_count_what_terminals_and_the_centre_recorded() {
    let server = Server::start().await;
    let city = supervisor_cookie(&server, "c-1").await;
    let leader = server.leader("张三", &["g-1"]).await;
    let other = server.leader("李四", &["g-2"]).await;
    let done = reported_case(&server, &leader, in_g1()).await;
    let waiting = reported_case(&server, &leader, in_mg1a()).await;
    reported_case(&server, &other, in_g2()).await;

    // Dispatched with two days, resolved at once, checked, and a smiley.
    let mut admin = server.admin();
    let municipal = admin.create_department("市政局", None).unwrap().id;
    admin.create_department("环保局", None).unwrap();
    admin.dispatch(&done.to_string(), "市政局", 48, "").unwrap();
    admin.resolve(&done.to_string(), "已修复").unwrap();
    admin
        .dispatch(&waiting.to_string(), "环保局", 48, "")
        .unwrap();
    assert_accepted(
        &server
            .push(
                &leader,
                &[
                    verify(&leader, done, true),
                    rate(&leader, done, gridcase_core::case::Face::Smiley),
                ],
            )
            .await,
    );

    let (status, f) = figures(&server, &city, "?unit=t-1").await;
    assert_eq!(status, StatusCode::OK, "{f}");
    let t = &f["total"];
    assert_eq!(t["cases"], 3);
    assert_eq!(t["closed"], 1, "verified and rated");
    assert_eq!(t["on_time"], 1);
    assert_eq!(t["late"], 0, "the other is within its deadline");
    assert_eq!(t["on_time_rate"], 1.0);
    assert_eq!(t["smiley"], 1);
    assert_eq!(t["satisfaction_rate"], 1.0);
    let areas: Vec<(&str, u64)> = f["by_area"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["key"].as_str().unwrap(), l["cases"].as_u64().unwrap()))
        .collect();
    assert_eq!(areas, [("g-1", 2), ("g-2", 1)]);
    assert_eq!(f["department_ranking"][0]["department"], "市政局");
    assert_eq!(
        f["department_ranking"][0]["department_id"],
        municipal.as_str()
    );
    assert_eq!(f["department_ranking"][0]["rank"], 1);
    assert_eq!(f["by_month"].as_array().unwrap().len(), 1);
    assert_eq!(f["by_category"][0]["key"], "collapsed_manhole");
    assert_eq!(f["by_category"][0]["name"], "下水井塌陷");

    // A grid's own figures; a period before anything happened.
    let (_, f) = figures(&server, &city, "?unit=g-1").await;
    assert_eq!(f["total"]["cases"], 2);
    let (_, f) = figures(&server, &city, "?from=2020-01-01&to=2020-12-31").await;
    assert_eq!(f["total"]["cases"], 0);
    assert!(f["total"]["closure_rate"].is_null());

    for (query, field) in [
        ("?unit=nowhere", "unit"),
        ("?from=last-monday", "from"),
        ("?from=2025-02-01&to=2025-01-01", "to"),
        ("?rise_percent=lots", "rise_percent"),
        ("?unit=g-1&unit=g-2", "unit"),
    ] {
        let (status, body) = figures(&server, &city, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
}
