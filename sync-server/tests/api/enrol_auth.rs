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
    let db = std::fs::read(gridcase_server::database_path(server.dir.path())).unwrap();
    let wal = std::fs::read(server.dir.path().join("gridcase.db-wal")).unwrap_or_default();
    for secret in [enrolled.token.as_bytes(), code.as_bytes()] {
        for file in [&db, &wal] {
            assert!(!file.windows(secret.len()).any(|w| w == secret));
        }
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
