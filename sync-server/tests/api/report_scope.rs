//! Figures and exports are the centre's, and each member of staff gets those
//! of what they answer for: a county's dispatcher or supervisor their county,
//! a department handler the cases dispatched to their department.

use gridcase_core::ids::CaseId;
use reqwest::StatusCode;
use serde_json::Value;

use crate::centre_support::*;
use crate::common::in_g1;

async fn cases_in_csv(centre: &Centre, who: &StaffClient, query: &str) -> (StatusCode, String) {
    let resp = centre
        .server
        .http
        .get(centre.server.url(&format!("/v1/export/cases.csv{query}")))
        .header("cookie", &who.cookie)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn total(centre: &Centre, who: &StaffClient, query: &str) -> (StatusCode, Value) {
    let (status, body) = centre.get(who, &format!("/v1/figures{query}")).await;
    (status, body["total"]["cases"].clone())
}

fn has(csv: &str, case: CaseId) -> bool {
    csv.contains(&case.to_string())
}

#[tokio::test]
async fn figures_and_exports_need_a_staff_session() {
    let centre = Centre::start().await;
    for path in [
        "/v1/figures",
        "/v1/export/cases.csv",
        "/v1/export/cases.geojson",
    ] {
        let (status, body) = centre
            .server
            .send(centre.server.http.get(centre.server.url(path)))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["code"], "unauthorised", "{path}: {body}");
    }
}

#[tokio::test]
async fn a_county_gets_its_own_figures_and_exports_only() {
    let centre = Centre::start().await;
    let leader_1 = centre.leader("张三", &["g-1"]).await;
    let leader_3 = centre.leader("李四", &["g-3"]).await;
    let in_k1 = centre.report(&leader_1, in_g1()).await;
    let in_k2 = centre.report(&leader_3, in_g3()).await;
    let k1 = centre.dispatcher("wang", "k-1").await;
    let k2 = centre.supervisor("zhao", "k-2").await;

    assert_eq!(total(&centre, &k1, "").await, (StatusCode::OK, 1.into()));
    assert_eq!(total(&centre, &k1, "?unit=g-1").await.1, 1);
    assert_eq!(total(&centre, &k2, "").await.1, 1);
    let (status, body) = centre.get(&k1, "/v1/figures?unit=k-2").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["field"], "unit");
    let (status, _) = centre.get(&k1, "/v1/figures?unit=c").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the city is above the county"
    );

    let (status, csv) = cases_in_csv(&centre, &k1, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(has(&csv, in_k1) && !has(&csv, in_k2));
    let (status, _) = cases_in_csv(&centre, &k1, "?unit=t-3").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, csv) = cases_in_csv(&centre, &k2, "").await;
    assert!(has(&csv, in_k2) && !has(&csv, in_k1));
    let (status, geojson) = centre.get(&k2, "/v1/export/cases.geojson?unit=k-1").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{geojson}");
}

#[tokio::test]
async fn a_department_gets_the_cases_dispatched_to_it() {
    let centre = Centre::start().await;
    let leader = centre.leader("张三", &["g-1", "g-2"]).await;
    let ours = centre.report(&leader, in_g1()).await;
    let theirs = centre.report(&leader, in_g1()).await;
    let waiting = centre.report(&leader, in_g1()).await;
    let k1 = centre.dispatcher("wang", "k-1").await;
    centre
        .ok(&k1, ours, "dispatch", dispatch_body(&centre.municipal))
        .await;
    centre
        .ok(&k1, theirs, "dispatch", dispatch_body(&centre.housing))
        .await;
    let municipal = centre.handler("shizheng", &centre.municipal).await;

    assert_eq!(total(&centre, &k1, "").await.1, 3);
    assert_eq!(
        total(&centre, &municipal, "").await,
        (StatusCode::OK, 1.into())
    );
    assert_eq!(total(&centre, &municipal, "?unit=g-1").await.1, 1);
    let (_, csv) = cases_in_csv(&centre, &municipal, "").await;
    assert!(has(&csv, ours) && !has(&csv, theirs) && !has(&csv, waiting));
    let (status, _) = cases_in_csv(&centre, &municipal, "?unit=nowhere").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
