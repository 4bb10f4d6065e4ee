//! Recovering from what goes wrong: a lost enrolment answer, a cursor from a
//! history the server no longer has, a case leaving a grid, a new map.

use gridcase_core::ids::CaseId;
use gridcase_core::protocol::{
    EnrolRequest, EnrolResponse, SyncRequest, SyncResponse, GRID_MAP_VERSION_HEADER,
};
use reqwest::StatusCode;

use crate::common::*;

async fn enrol_with_key(server: &Server, code: &str, key: Option<&str>) -> (StatusCode, String) {
    let resp = server
        .http
        .post(server.url("/v1/enrol"))
        .json(&EnrolRequest {
            code: code.into(),
            device_name: "手持终端".into(),
            enrolment_key: key.map(Into::into),
        })
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn sync_status(server: &Server, token: &str) -> StatusCode {
    server
        .http
        .post(server.url("/v1/sync"))
        .bearer_auth(token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn the_same_terminal_may_ask_again_for_a_lost_enrolment_answer() {
    let server = Server::start().await;
    let (account_id, code) = server.new_code("张三", &["g-1"]);
    let (status, body) = enrol_with_key(&server, &code, Some("key-of-this-terminal")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let lost: EnrolResponse = serde_json::from_str(&body).unwrap();

    // The answer never arrived; the terminal asks again with the same key.
    let (status, body) = enrol_with_key(&server, &code, Some("key-of-this-terminal")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let again: EnrolResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(again.device_id, lost.device_id, "one device, not two");
    assert_eq!(again.account_id, account_id);
    assert_ne!(again.token, lost.token);
    assert_eq!(sync_status(&server, &again.token).await, StatusCode::OK);
    assert_eq!(
        sync_status(&server, &lost.token).await,
        StatusCode::UNAUTHORIZED,
        "the token nobody received no longer works"
    );
    assert_eq!(server.admin().list_devices().unwrap().len(), 1);

    // Anyone else holding the code gets nothing.
    for key in [Some("another-terminal"), None] {
        let (status, body) = enrol_with_key(&server, &code, key).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("enrol_code_used"), "{body}");
    }
    // Nor does the same terminal once its device is revoked.
    server.admin().revoke_device(&again.device_id).unwrap();
    let (status, body) = enrol_with_key(&server, &code, Some("key-of-this-terminal")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("enrol_code_used"), "{body}");
}

#[tokio::test]
async fn an_overlong_enrolment_key_is_refused_by_name() {
    let server = Server::start().await;
    let (_, code) = server.new_code("张三", &["g-1"]);
    let (status, body) = enrol_with_key(&server, &code, Some(&"k".repeat(10_000))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("enrolment_key"), "{body}");
    // Nothing was used up.
    let (status, _) = enrol_with_key(&server, &code, Some("k")).await;
    assert_eq!(status, StatusCode::OK);
}

async fn sync_with(
    server: &Server,
    dev: &Device,
    cursor: u64,
    history: Option<&str>,
    push: Vec<gridcase_core::op::Op>,
) -> SyncResponse {
    server
        .sync_req(
            dev,
            &SyncRequest {
                push,
                cursor,
                pull_limit: 100,
                history: history.map(Into::into),
            },
        )
        .await
}

#[tokio::test]
async fn a_cursor_from_another_history_starts_over_and_changes_nothing() {
    let server = Server::start().await;
    let a = server.leader("张三", &["g-1"]).await;
    let b = server.leader("李四", &["g-1"]).await;
    reported_case(&server, &b, in_g1()).await;
    let first = sync_with(&server, &a, 0, None, vec![]).await;
    assert!(!first.reset);
    assert_eq!(first.history.len(), 32, "a random id: {}", first.history);
    assert_eq!(first.ops.len(), 3);
    let same = sync_with(&server, &a, first.cursor, Some(&first.history), vec![]).await;
    assert!(!same.reset && same.ops.is_empty());
    assert_eq!(same.history, first.history);

    // A cursor from a history this server does not have (it was restored from
    // a backup): nothing pushed, nothing pulled, start over.
    let id = CaseId::new();
    let other = sync_with(
        &server,
        &a,
        2,
        Some("0123"),
        vec![create(&a, id, Some(in_g1()))],
    )
    .await;
    assert!(other.reset);
    assert!(other.results.is_empty() && other.ops.is_empty());
    assert_eq!(
        (other.cursor, other.history.as_str()),
        (0, first.history.as_str())
    );
    assert_eq!(
        server.admin().list_cases().unwrap().len(),
        1,
        "the push was not applied"
    );

    // A cursor past the last number (a database copied back by hand) too.
    let past = sync_with(&server, &a, 1_000, Some(&first.history), vec![]).await;
    assert!(past.reset && past.ops.is_empty());
    let past = server.pull(&a, 1_000, 10).await;
    assert!(past.reset, "also before the first answer");

    // Starting over works.
    let again = sync_with(&server, &a, 0, Some(&first.history), vec![]).await;
    assert!(!again.reset);
    assert_eq!(again.ops.len(), 3);
}

#[tokio::test]
async fn a_case_that_leaves_a_grid_is_announced_to_the_grid_it_left() {
    let server = Server::start().await;
    let reporter = server.leader("张三", &["g-1"]).await;
    let colleague = server.leader("李四", &["g-1"]).await;
    let township = server.leader("王五", &["t-1"]).await;
    let id = reported_case(&server, &reporter, in_g1()).await;
    let (_, colleague_cursor) = server.pull_all(&colleague, 0).await;
    let (_, township_cursor) = server.pull_all(&township, 0).await;

    // A new map gives g-1's area to g-2 (same township).
    let swapped = GRIDS
        .replace("\"id\": \"g-1\"", "\"id\": \"g-x\"")
        .replace("\"id\": \"g-2\"", "\"id\": \"g-1\"")
        .replace("\"id\": \"g-x\"", "\"id\": \"g-2\"")
        .replace("\"parent\": \"g-1\"", "\"parent\": \"g-2\"");
    let summary = server.admin().import_grids(&swapped).unwrap();
    assert_eq!(summary.cases_moved, 1);

    let page = server.pull(&colleague, colleague_cursor, 100).await;
    assert_eq!(page.left.len(), 1, "{page:?}");
    assert_eq!(page.left[0].case_id, id);
    assert!(page.ops.is_empty(), "nothing of the case any more");
    assert!(page.left[0].server_seq <= page.cursor);
    // Its reporter still sees it, and so does the township above both grids.
    let page = server.pull(&township, township_cursor, 100).await;
    assert!(page.left.is_empty(), "{page:?}");
    let page = server.pull(&reporter, 0, 100).await;
    assert!(page.left.is_empty());

    // Paging counts departures with ops, in number order.
    server.leader("赵六", &["g-1"]).await;
    let mut cursor = colleague_cursor;
    let mut seen = 0;
    loop {
        let page = server.pull(&colleague, cursor, 1).await;
        assert!(page.ops.len() + page.left.len() <= 1);
        seen += page.left.len();
        cursor = page.cursor;
        if !page.more {
            break;
        }
    }
    assert_eq!(seen, 1);
}

#[tokio::test]
async fn the_grid_map_version_comes_with_the_map_and_every_sync() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let version = |resp: &reqwest::Response| -> u64 {
        resp.headers()[GRID_MAP_VERSION_HEADER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let resp = server
        .http
        .get(server.url("/v1/grids"))
        .bearer_auth(&dev.token)
        .send()
        .await
        .unwrap();
    let first = version(&resp);
    assert!(first > 0);
    assert_eq!(server.pull(&dev, 0, 10).await.grid_map_version, first);
    server.admin().import_grids(GRIDS).unwrap();
    assert_eq!(server.pull(&dev, 0, 10).await.grid_map_version, first + 1);
}
