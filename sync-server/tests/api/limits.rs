use gridcase_core::ids::CaseId;
use gridcase_core::protocol::{PushStatus, SyncResponse, MAX_PUSH_OPS};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

async fn post_sync(
    server: &Server,
    dev: &Device,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, serde_json::Value) {
    server
        .send(
            server
                .http
                .post(server.url("/v1/sync"))
                .bearer_auth(&dev.token)
                .header("content-type", "application/json")
                .body(body),
        )
        .await
}

#[tokio::test]
async fn malformed_requests_get_clear_errors_and_change_nothing() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;

    for (body, field) in [
        ("{not json", None),
        ("", None),
        (r#"{"cursor": -1}"#, Some("cursor")),
        (r#"{"cursor": "张三家漏水"}"#, Some("cursor")),
        (r#"{"pull_limit": 1e99}"#, Some("pull_limit")),
        (r#"{"push": {}}"#, Some("push")),
        (r#"{"push": [{"kind": "create"}]}"#, Some("push[0].id")),
        (r#"{"push": []} trailing"#, None),
    ] {
        let (status, err) = post_sync(&server, &dev, body.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_eq!(err["code"], "invalid_request", "{body}");
        if let Some(field) = field {
            assert_eq!(err["field"], field, "{body}: {err}");
        }
        assert!(!err["message"].as_str().unwrap().contains("张三"), "{err}");
    }

    // Deeply nested JSON is refused without harm (serde_json stops at 128).
    let deep = format!(
        r#"{{"push": [{}{}]}}"#,
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let (status, err) = post_sync(&server, &dev, deep).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["code"], "invalid_request");
    let deep_in_op = format!(
        r#"{{"push": [{{"id": "{}", "x": {}{}}}]}}"#,
        gridcase_core::ids::OpId::new(),
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    // With a readable id, the op alone is refused.
    let (status, resp) = post_sync(&server, &dev, deep_in_op).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["results"][0]["status"], "rejected");
    assert_eq!(resp["results"][0]["code"], "invalid_input");

    // An op this server cannot read is rejected alone; the rest goes on.
    let id = CaseId::new();
    let good = serde_json::to_value(create(&dev, id, Some(in_g1()))).unwrap();
    let mut unknown_kind = serde_json::to_value(submit(&dev, id)).unwrap();
    unknown_kind["kind"] = json!("teleport");
    let mut huge_title = serde_json::to_value(create(&dev, CaseId::new(), Some(in_g1()))).unwrap();
    huge_title["draft"]["title"] = json!("井".repeat(1_000_000));
    let (status, resp) = post_sync(
        &server,
        &dev,
        json!({"push": [good, unknown_kind, huge_title, serde_json::to_value(submit(&dev, id)).unwrap()]}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let resp: SyncResponse = serde_json::from_value(resp).unwrap();
    let statuses: Vec<PushStatus> = resp.results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            PushStatus::Accepted,
            PushStatus::Rejected,
            PushStatus::Rejected,
            PushStatus::Accepted
        ]
    );
    assert_eq!(resp.results[1].code.as_deref(), Some("invalid_input"));
    assert_eq!(resp.results[2].code.as_deref(), Some("invalid_input"));
    assert!(resp.results[2]
        .reason
        .as_deref()
        .unwrap()
        .starts_with("title"));

    // Nothing of the refused requests was stored.
    let cases = server.admin().list_cases().unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].status, "received");
}

#[tokio::test]
async fn bodies_are_bounded() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;

    let big = format!(
        r#"{{"cursor": 0, "pad": "{}"}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    let (status, err) = post_sync(&server, &dev, big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(err["code"], "too_large");

    let ops: Vec<_> = (0..=MAX_PUSH_OPS)
        .map(|_| create(&dev, CaseId::new(), Some(in_g1())))
        .collect();
    let (status, err) = post_sync(&server, &dev, json!({"push": ops}).to_string()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(err["code"], "too_large");
    assert_eq!(err["field"], "push");
    assert!(server.admin().list_cases().unwrap().is_empty());

    let (status, err) = server
        .send(
            server
                .http
                .post(server.url("/v1/enrol"))
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"code": "{}", "device_name": "x"}}"#,
                    "A".repeat(100_000)
                )),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(err["code"], "too_large");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_json() {
    let server = Server::start().await;
    let (status, err) = server
        .send(server.http.get(server.url("/v2/nothing")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["code"], "not_found");
    let (status, err) = server.send(server.http.get(server.url("/v1/sync"))).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(err["code"], "method_not_allowed");
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let mut server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let data = photo_bytes(5, 100_000);
    let sha = sha256_hex(&data);
    let (head, tail) = (data[..50_000].to_vec(), data[50_000..].to_vec());
    let (go_on, wait) = tokio::sync::oneshot::channel::<()>();
    let stream = futures_util::stream::unfold(
        (Some(head), Some(tail), Some(wait)),
        |(head, tail, wait)| async move {
            if let Some(head) = head {
                return Some((Ok::<_, std::io::Error>(head), (None, tail, wait)));
            }
            let tail = tail?;
            let _ = wait?.await;
            Some((Ok(tail), (None, None, None)))
        },
    );
    let request = server
        .http
        .put(server.url(&format!("/v1/photos/{sha}?offset=0&total=100000")))
        .bearer_auth(&dev.token)
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let request = tokio::spawn(request);
    // Wait until the first half is on the server, then ask it to stop.
    for _ in 0..200 {
        if server.upload_status(&dev, &sha).await.received > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let stopped = server.begin_shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!stopped.is_finished(), "the server waits for the request");
    go_on.send(()).unwrap();
    let resp = request.await.unwrap().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let status: gridcase_core::protocol::UploadStatus = resp.json().await.unwrap();
    assert!(status.complete);
    stopped.await.unwrap().unwrap();
}
