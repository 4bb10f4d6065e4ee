//! Open311 GeoReport v2 over HTTP: every endpoint in JSON and XML, errors in
//! the spec's format, and a POSTed request reaching a grid leader's terminal.

use gridcase_core::case::Category;
use gridcase_core::ids::CaseId;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

fn key(server: &Server) -> String {
    server
        .admin()
        .issue_open311_key("市民热线 App")
        .unwrap()
        .api_key
}

async fn get(server: &Server, path: &str) -> (StatusCode, String, String) {
    let resp = server.http.get(server.url(path)).send().await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ctype, resp.text().await.unwrap())
}

async fn get_json(server: &Server, path: &str) -> (StatusCode, Value) {
    let (status, ctype, body) = get(server, path).await;
    assert!(ctype.starts_with("application/json"), "{ctype}");
    (status, serde_json::from_str(&body).unwrap())
}

async fn post(server: &Server, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
    let resp = server
        .http
        .post(server.url(path))
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

fn manhole(key: &str) -> Vec<(&str, &str)> {
    vec![
        ("api_key", key),
        ("service_code", "collapsed_manhole"),
        ("lat", "42.87"),
        ("long", "125.07"),
        ("address_string", "人民大街与长安路交口"),
        ("description", "井盖塌陷 <危险> & 车掉进去了"),
        ("email", "resident@example.org"),
        ("first_name", "王"),
        ("last_name", "小明"),
        ("phone", "13800000000"),
    ]
}

/// Asserts a spec error: `[{"code": status, "description": "<field>: …"}]`.
fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, field: &str) {
    assert_eq!(status, expected, "{body}");
    let errors = body.as_array().expect("an array of errors");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["code"], expected.as_u16());
    let description = errors[0]["description"].as_str().unwrap();
    assert!(description.starts_with(field), "{description}");
}

#[tokio::test]
async fn services_and_definitions_in_json_and_xml() {
    let server = Server::start().await;
    let (status, services) = get_json(&server, "/open311/v2/services.json").await;
    assert_eq!(status, StatusCode::OK);
    let services = services.as_array().unwrap();
    assert_eq!(services.len(), Category::ALL.len());
    let manhole = services
        .iter()
        .find(|s| s["service_code"] == "collapsed_manhole")
        .unwrap();
    assert_eq!(manhole["service_name"], "下水井塌陷");
    assert_eq!(manhole["type"], "realtime");
    assert_eq!(manhole["metadata"], true);
    assert!(manhole["keywords"]
        .as_str()
        .unwrap()
        .contains("Collapsed manhole"));
    assert!(manhole["group"].as_str().unwrap().contains("Public safety"));

    let (status, ctype, xml) = get(&server, "/open311/v2/services.xml").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/xml"), "{ctype}");
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?><services><service>"));
    assert!(xml.contains("<service_code>collapsed_manhole</service_code>"));
    assert_eq!(xml.matches("<service>").count(), Category::ALL.len());

    let (status, def) = get_json(&server, "/open311/v2/services/collapsed_manhole.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(def["service_code"], "collapsed_manhole");
    let codes: Vec<&str> = def["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["title", "occurred_at"]);
    assert_eq!(def["attributes"][1]["datatype"], "datetime");
    assert_eq!(def["attributes"][0]["required"], false);
    let (_, _, xml) = get(&server, "/open311/v2/services/collapsed_manhole.xml").await;
    assert!(xml.contains("<service_definition><service_code>collapsed_manhole</service_code><attributes><attribute><variable>true</variable><code>title</code>"));

    let (status, body) = get_json(&server, "/open311/v2/services/potholes.json").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "service_code");
    let (status, _, xml) = get(&server, "/open311/v2/services/potholes.xml").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(xml.contains("<errors><error><code>404</code><description>service_code: "));
    let (status, body) = get_json(&server, "/open311/v2/services.html").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "the format");
}

#[tokio::test]
async fn a_posted_request_is_a_case_the_grid_leader_pulls() {
    let server = Server::start().await;
    let key = key(&server);
    let leader = server.leader("张三", &["g-1"]).await;
    let elsewhere = server.leader("李四", &["g-2"]).await;

    let (status, body) = post(&server, "/open311/v2/requests.json", &manhole(&key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let id = answer[0]["service_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(answer[0]["service_notice"].is_null());
    let case_id = CaseId::parse(&id).unwrap();

    // The grid leader of g-1 pulls the whole history: the resident's Create
    // and Submit and the server's Receive; nothing of the resident's contact.
    let (ops, _) = server.pull_all(&leader, 0).await;
    let kinds: Vec<&str> = ops
        .iter()
        .filter(|o| o.op.case_id == case_id)
        .map(|o| kind_name(&o.op))
        .collect();
    assert_eq!(kinds, ["create", "submit", "receive"]);
    assert_eq!(ops[0].grid_id.as_deref(), Some("g-1"));
    assert_eq!(ops[0].op.actor.role, gridcase_core::op::Role::Resident);
    let pulled = serde_json::to_string(&ops).unwrap();
    for private in ["resident@example.org", "小明", "13800000000", &key] {
        assert!(
            !pulled.contains(private),
            "{private} leaked to the terminal"
        );
    }
    let (ops, _) = server.pull_all(&elsewhere, 0).await;
    assert!(ops.iter().all(|o| o.op.case_id != case_id));

    // GET by id, JSON and XML, shows the public fields only.
    let (status, got) = get_json(&server, &format!("/open311/v2/requests/{id}.json")).await;
    assert_eq!(status, StatusCode::OK);
    let r = &got[0];
    assert_eq!(r["service_request_id"], id.as_str());
    assert_eq!(r["status"], "open");
    assert_eq!(r["service_code"], "collapsed_manhole");
    assert_eq!(r["service_name"], "下水井塌陷");
    assert_eq!(r["description"], "井盖塌陷 <危险> & 车掉进去了");
    assert_eq!(r["address"], "人民大街与长安路交口");
    assert_eq!(r["lat"], 42.87);
    assert_eq!(r["long"], 125.07);
    assert!(r["agency_responsible"].is_null() && r["expected_datetime"].is_null());
    assert!(r["requested_datetime"]
        .as_str()
        .unwrap()
        .ends_with("+08:00"));
    for field in [
        "status_notes",
        "service_notice",
        "updated_datetime",
        "address_id",
        "zipcode",
        "media_url",
    ] {
        assert!(r.get(field).is_some(), "{field} is missing");
    }
    let text = got.to_string();
    for private in ["resident@example.org", "小明", "13800000000", "open311:"] {
        assert!(!text.contains(private), "{private} leaked");
    }
    let (_, _, xml) = get(&server, &format!("/open311/v2/requests/{id}.xml")).await;
    assert!(xml.contains("<service_requests><request><service_request_id>"));
    assert!(
        xml.contains("<description>井盖塌陷 &lt;危险&gt; &amp; 车掉进去了</description>"),
        "{xml}"
    );
    assert!(xml.contains("<agency_responsible/>"));

    // Dispatched: the department and deadline show; checked on site: closed.
    server.admin().create_department("市政局", None).unwrap();
    server.admin().dispatch(&id, "市政局", 48, "").unwrap();
    let (_, got) = get_json(&server, &format!("/open311/v2/requests/{id}.json")).await;
    assert_eq!(got[0]["agency_responsible"], "市政局");
    assert!(got[0]["expected_datetime"]
        .as_str()
        .unwrap()
        .ends_with("+08:00"));
    server.admin().resolve(&id, "已修复").unwrap();
    assert_accepted(
        &server
            .push(&leader, &[verify(&leader, case_id, true)])
            .await,
    );
    let (_, got) = get_json(&server, &format!("/open311/v2/requests/{id}.json")).await;
    assert_eq!(got[0]["status"], "closed");

    // A POST answered in XML.
    let (status, xml) = post(&server, "/open311/v2/requests.xml", &manhole(&key)).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert!(
        xml.contains("<service_requests><request><service_request_id>"),
        "{xml}"
    );
}

#[tokio::test]
async fn a_post_without_a_valid_key_or_with_bad_fields_writes_nothing() {
    let server = Server::start().await;
    let key = key(&server);
    let count = |server: &Server| server.admin().list_cases().unwrap().len();

    let mut no_key = manhole(&key);
    no_key.retain(|(k, _)| *k != "api_key");
    let (status, body) = post(&server, "/open311/v2/requests.json", &no_key).await;
    assert_error(
        status,
        &serde_json::from_str(&body).unwrap(),
        StatusCode::FORBIDDEN,
        "api_key",
    );
    let (status, body) = post(&server, "/open311/v2/requests.json", &manhole("o311_guess")).await;
    assert_error(
        status,
        &serde_json::from_str(&body).unwrap(),
        StatusCode::FORBIDDEN,
        "api_key",
    );
    let (status, xml) = post(&server, "/open311/v2/requests.xml", &manhole("o311_guess")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        xml.contains("<errors><error><code>403</code><description>api_key"),
        "{xml}"
    );

    let cases: &[(&str, &str, &str)] = &[
        ("service_code", "potholes", "service_code"),
        ("lat", "north", "lat"),
        ("lat", "91", "lat"),
        ("long", "", "long"),
        ("attribute[colour]", "red", "attribute[colour]"),
        (
            "attribute[occurred_at]",
            "last week",
            "attribute[occurred_at]",
        ),
        ("email", "a\u{7}b", "email"),
    ];
    for (field, value, named) in cases {
        let mut form = manhole(&key);
        form.retain(|(k, _)| k != field);
        form.push((field, value));
        let (status, body) = post(&server, "/open311/v2/requests.json", &form).await;
        assert_error(
            status,
            &serde_json::from_str(&body).unwrap(),
            StatusCode::BAD_REQUEST,
            named,
        );
    }
    // A point in no grid of ours (g-3's township has none there).
    let mut far = manhole(&key);
    far.retain(|(k, _)| *k != "lat" && *k != "long");
    far.extend([("lat", "30.0"), ("long", "110.0")]);
    let (status, body) = post(&server, "/open311/v2/requests.json", &far).await;
    assert_error(
        status,
        &serde_json::from_str(&body).unwrap(),
        StatusCode::BAD_REQUEST,
        "lat",
    );
    assert_eq!(count(&server), 0, "nothing was written");

    // A revoked key stops working at once.
    let issued = server.admin().issue_open311_key("旧 App").unwrap();
    assert!(server.admin().revoke_open311_key(&issued.key_id).unwrap());
    let (status, _) = post(
        &server,
        "/open311/v2/requests.json",
        &manhole(&issued.api_key),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(count(&server), 0);
}

#[tokio::test]
async fn requests_search_by_code_status_dates_and_ids() {
    let server = Server::start().await;
    let key = key(&server);
    let leader = server.leader("张三", &["g-1"]).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (_, body) = post(&server, "/open311/v2/requests.json", &manhole(&key)).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        ids.push(v[0]["service_request_id"].as_str().unwrap().to_string());
    }
    // A family dispute from the terminal: listed, without words or place.
    let family = CaseId::new();
    let mut create_op = create(&leader, family, Some(in_g1()));
    if let gridcase_core::op::OpKind::Create { draft } = &mut create_op.kind {
        draft.category = Category::FamilyDispute;
        draft.title = "张家兄弟分家".into();
    }
    assert_accepted(
        &server
            .push(&leader, &[create_op, submit(&leader, family)])
            .await,
    );
    // A draft is nobody's business but its grid leader's.
    let draft = CaseId::new();
    assert_accepted(
        &server
            .push(&leader, &[create(&leader, draft, Some(in_g1()))])
            .await,
    );
    // The grid leader withdraws the second as a duplicate: closed in Open311.
    let second = CaseId::parse(&ids[1]).unwrap();
    let cancel = gridcase_core::op::OpKind::Cancel {
        reason: "重复".into(),
    };
    assert_accepted(&server.push(&leader, &[op(&leader, second, cancel)]).await);

    let (status, all) = get_json(&server, "/open311/v2/requests.json").await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["service_request_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 3, "newest first, no draft: {listed:?}");
    assert!(!listed.contains(&draft.to_string().as_str()));
    let fam = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service_code"] == "family_dispute")
        .unwrap();
    assert!(fam["description"].is_null() && fam["address"].is_null() && fam["lat"].is_null());
    assert!(!all.to_string().contains("张家兄弟"));

    let (_, found) = get_json(
        &server,
        "/open311/v2/requests.json?service_code=family_dispute",
    )
    .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (_, found) = get_json(&server, "/open311/v2/requests.json?status=closed").await;
    assert_eq!(found.as_array().unwrap().len(), 1, "the cancelled one");
    assert_eq!(found[0]["service_request_id"], ids[1].as_str());
    let (_, found) = get_json(&server, "/open311/v2/requests.json?status=open,closed").await;
    assert_eq!(found.as_array().unwrap().len(), 3);
    let (_, found) = get_json(
        &server,
        &format!(
            "/open311/v2/requests.json?service_request_id={},{}&status=closed",
            ids[0], draft
        ),
    )
    .await;
    assert_eq!(
        found.as_array().unwrap().len(),
        1,
        "ids override the rest; no draft"
    );
    let (_, found) = get_json(
        &server,
        "/open311/v2/requests.json?start_date=2020-01-01T00:00:00Z&end_date=2020-02-01T00:00:00Z",
    )
    .await;
    assert_eq!(found.as_array().unwrap().len(), 0);
    let (_, _, xml) = get(
        &server,
        "/open311/v2/requests.xml?service_code=collapsed_manhole",
    )
    .await;
    assert_eq!(xml.matches("<request>").count(), 2);

    let (status, body) = get_json(&server, "/open311/v2/requests.json?start_date=monday").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "start_date");
    let (status, body) = get_json(
        &server,
        "/open311/v2/requests.json?start_date=2025-01-01T00:00:00Z&end_date=2025-06-01T00:00:00Z",
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "end_date");
    let (status, body) = get_json(&server, "/open311/v2/requests.json?status=pending").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "status");
    let (status, _, xml) = get(&server, "/open311/v2/requests.xml?service_code=potholes").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(xml.contains("<errors><error><code>400</code><description>service_code"));
    let (status, body) = get_json(&server, &format!("/open311/v2/requests/{draft}.json")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "service_request_id");
    let (status, body) = get_json(&server, "/open311/v2/requests/not-an-id.json").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "service_request_id");
}
