use gridcase_core::protocol::{EnrolResponse, SyncRequest};
use reqwest::StatusCode;

use crate::common::*;

#[tokio::test]
async fn a_code_enrols_one_device_once() {
    let server = Server::start().await;
    let (account_id, code) = server.new_code("张三", &["g-1", "g-2"]);

    let resp = server.enrol(&code, "张三的终端").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let enrolled: EnrolResponse = resp.json().await.unwrap();
    assert_eq!(enrolled.account_id, account_id);
    assert_eq!(
        enrolled.grid_ids,
        vec!["g-1".to_string(), "g-2".to_string()]
    );
    assert!(
        enrolled.token.len() >= 64,
        "a token carries at least 32 random bytes"
    );

    // The code as a person might type it again: lower case, spaces for dashes.
    let retyped = code.to_lowercase().replace('-', " ");
    let (status, body) = server
        .send(
            server
                .http
                .post(server.url("/v1/enrol"))
                .json(&serde_json::json!({"code": retyped, "device_name": "另一台"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "enrol_code_used");

    // Only hashes are stored: neither the code nor the token is in the database.
    let stored = server.database_bytes().await;
    assert!(!stored.is_empty());
    for secret in [enrolled.token.as_bytes(), code.as_bytes()] {
        assert!(!stored.windows(secret.len()).any(|w| w == secret));
    }
}

#[tokio::test]
async fn unknown_malformed_and_expired_codes_are_refused() {
    let server = Server::start().await;
    let (status, body) = server
        .send(
            server
                .http
                .post(server.url("/v1/enrol"))
                .json(&serde_json::json!({"code": "ABCD-EFGH-JKMN", "device_name": "终端"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "enrol_code_invalid");

    let (status, body) = server
        .send(
            server
                .http
                .post(server.url("/v1/enrol"))
                .json(&serde_json::json!({"code": "../../etc/passwd", "device_name": "终端"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "enrol_code_invalid");

    let leader = server
        .admin()
        .create_leader("李四", &["g-1".to_string()], 1)
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let resp = server.enrol(&leader.code, "终端").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "enrol_code_expired");

    // A blank device name is refused before the code is spent.
    let (_, code) = server.new_code("王五", &["g-1"]);
    let (status, body) = server
        .send(
            server
                .http
                .post(server.url("/v1/enrol"))
                .json(&serde_json::json!({"code": code, "device_name": "  "})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_request");
    assert_eq!(body["field"], "device_name");
    assert_eq!(server.enrol(&code, "终端").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_grids_are_refused_when_a_map_exists() {
    let server = Server::start().await;
    let err = server
        .admin()
        .create_leader("赵六", &["g-404".to_string()], 1000)
        .unwrap_err();
    assert!(err.to_string().contains("g-404"), "{err}");
}

#[tokio::test]
async fn requests_need_a_valid_unrevoked_token() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let sync = || {
        server.http.post(server.url("/v1/sync")).json(&SyncRequest {
            push: vec![],
            cursor: 0,
            pull_limit: 10,
            history: None,
        })
    };

    let (status, body) = server.send(sync()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "unauthorised");

    let (status, body) = server.send(sync().bearer_auth("gcd_0000")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "unauthorised");

    let (status, _) = server.send(sync().basic_auth("x", Some("y"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _) = server.send(sync().bearer_auth(&dev.token)).await;
    assert_eq!(status, StatusCode::OK);

    // The other endpoints are guarded too.
    for path in [
        "/v1/grids",
        &format!("/v1/photos/{}/upload", "a".repeat(64)),
    ] {
        let (status, body) = server.send(server.http.get(server.url(path))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["code"], "unauthorised");
    }

    let mut admin = server.admin();
    assert!(admin.revoke_device(&dev.device_id).unwrap());
    assert!(
        !admin.revoke_device(&dev.device_id).unwrap(),
        "revoking twice is harmless"
    );
    let listed = admin.list_devices().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked_at.is_some());

    let (status, body) = server.send(sync().bearer_auth(&dev.token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "unauthorised");
    assert!(body["message"].as_str().unwrap().contains("revoked"));

    // The healthz endpoint needs nothing.
    let (status, body) = server.send(server.http.get(server.url("/healthz"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

/// The fixture map is small: a terminal gets it whole, so a point in the
/// grid next door is named as the server names it (not "outside every grid").
#[tokio::test]
async fn a_device_gets_enough_of_the_map_to_name_the_grid_next_door() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let resp = server
        .http
        .get(server.url("/v1/grids"))
        .bearer_auth(&dev.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/geo+json");
    let map = gridcase_core::grid::GridMap::from_geojson(&resp.text().await.unwrap()).unwrap();
    let mut ids: Vec<&str> = map.units().iter().map(|u| u.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["c-1", "g-1", "g-2", "g-3", "mg-1a", "t-1", "t-2"]);
    // The device places points exactly as the server does, its own and others'.
    assert_eq!(map.grid_of(&in_mg1a()).unwrap().id, "g-1");
    assert_eq!(map.grid_of(&in_g2()).unwrap().id, "g-2");
}

async fn enrol_with_key(server: &Server, code: &str, key: &str) -> EnrolResponse {
    let resp = server
        .http
        .post(server.url("/v1/enrol"))
        .json(&gridcase_core::protocol::EnrolRequest {
            code: code.into(),
            device_name: "张三的终端".into(),
            enrolment_key: Some(key.into()),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn enrolling_the_same_terminal_again_retires_its_old_device() {
    let server = Server::start().await;
    let (account_id, code) = server.new_code("张三", &["g-1"]);
    let first = enrol_with_key(&server, &code, "terminal-secret-1").await;
    assert_eq!(first.account_name, "张三");
    assert_eq!(first.time_zone, "Asia/Shanghai");
    let sync = |token: String| {
        let server = &server;
        async move {
            server
                .http
                .post(server.url("/v1/sync"))
                .bearer_auth(token)
                .json(&SyncRequest {
                    push: vec![],
                    cursor: 0,
                    pull_limit: 10,
                    history: None,
                })
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(sync(first.token.clone()).await, StatusCode::OK);
    // A case pushed by the first enrolment...
    let dev = Device {
        token: first.token.clone(),
        device_id: first.device_id.clone(),
        account_id: account_id.clone(),
        grid_ids: first.grid_ids.clone(),
    };
    let id = gridcase_core::ids::CaseId::new();
    let create_op = create(&dev, id, Some(in_g1()));
    assert_accepted(&server.push(&dev, std::slice::from_ref(&create_op)).await);

    // The same terminal with a new code: a new device, and the old one retired.
    let code = server
        .admin()
        .issue_code(&account_id, 3_600_000)
        .unwrap()
        .code;
    let second = enrol_with_key(&server, &code, "terminal-secret-1").await;
    assert_ne!(second.device_id, first.device_id);
    assert_eq!(sync(first.token.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(sync(second.token.clone()).await, StatusCode::OK);
    let devices = server.admin().list_devices().unwrap();
    let old = devices
        .iter()
        .find(|d| d.device_id == first.device_id)
        .unwrap();
    assert_eq!(old.state.as_str(), "retired");
    assert_eq!(old.replaced_by.as_deref(), Some(second.device_id.as_str()));
    let new = devices
        .iter()
        .find(|d| d.device_id == second.device_id)
        .unwrap();
    assert_eq!(new.state.as_str(), "active");

    // ...pushed again by the new device (its outbox after the reset) is the
    // same op, not someone else's: it keeps its answer.
    let dev2 = Device {
        token: second.token,
        device_id: second.device_id,
        ..dev
    };
    let again = server.push(&dev2, &[create_op]).await;
    assert_accepted(&again);

    // Another terminal enrolling for the same account leaves this one alone.
    let code = server
        .admin()
        .issue_code(&account_id, 3_600_000)
        .unwrap()
        .code;
    enrol_with_key(&server, &code, "terminal-secret-2").await;
    assert_eq!(sync(dev2.token.clone()).await, StatusCode::OK);
}

#[tokio::test]
async fn sync_answers_carry_the_zone_and_the_names_of_whoever_the_ops_mention() {
    use crate::centre_support::Centre;
    let c = Centre::start_with(|_| {}).await;
    let k1 = c.dispatcher("wang", "k-1").await;
    let leader = c.leader("张网格", &["g-1"]).await;
    let colleague = c.leader("李网格", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    c.ok(
        &k1,
        case,
        "dispatch",
        crate::centre_support::dispatch_body(&c.municipal),
    )
    .await;
    let page = c.server.pull(&colleague, 0, 1000).await;
    assert_eq!(page.time_zone, "Asia/Shanghai");
    let name = |id: &str| {
        page.names
            .iter()
            .find(|n| n.id == id)
            .map(|n| (n.kind, n.name.as_str()))
    };
    use gridcase_core::protocol::NameKind;
    assert_eq!(name(&leader.account_id), Some((NameKind::Actor, "张网格")));
    assert_eq!(name(&k1.id), Some((NameKind::Actor, "wang 同志")));
    assert_eq!(name(&c.municipal), Some((NameKind::Department, "市政")));
    // Only the ids of this page: not the colleague, not other departments.
    assert_eq!(name(&colleague.account_id), None);
    assert_eq!(name(&c.housing), None);
    let empty = c.server.pull(&colleague, page.cursor, 1000).await;
    assert!(empty.names.is_empty());
}
