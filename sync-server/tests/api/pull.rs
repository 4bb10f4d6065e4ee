use std::collections::HashSet;

use gridcase_core::ids::CaseId;
use gridcase_core::protocol::SyncRequest;

use crate::common::*;

#[tokio::test]
async fn pull_pages_in_server_order_within_the_device_grids() {
    let server = Server::start().await;
    let a1 = server.leader("张三", &["g-1"]).await;
    let a2 = server.second_device(&a1).await;
    let b = server.leader("李四", &["g-2"]).await;
    let township = server.leader("街道", &["t-1"]).await;

    // A reports three cases in g-1 and one that lies in g-2; B one in g-2.
    let mut a_cases = Vec::new();
    for _ in 0..3 {
        a_cases.push(reported_case(&server, &a1, in_g1()).await);
    }
    let a_in_g2 = reported_case(&server, &a1, in_g2()).await;
    let b_case = reported_case(&server, &b, in_g2()).await;

    // A's second device: all of A's cases (reported, or in g-1), 3 ops each,
    // page by page, numbers increasing, cursors moving on.
    let mut cursor = 0;
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    loop {
        let page = server.pull(&a2, cursor, 5).await;
        assert!(page.ops.len() <= 5);
        if page.more {
            assert_eq!(page.ops.len(), 5);
            assert_eq!(page.cursor, page.ops.last().unwrap().server_seq);
        }
        for op in &page.ops {
            assert!(op.server_seq > cursor);
        }
        pages.push(page.ops.len());
        seen.extend(page.ops);
        cursor = page.cursor;
        if !page.more {
            break;
        }
    }
    assert_eq!(pages, [5, 5, 2]);
    assert!(seen.windows(2).all(|w| w[0].server_seq < w[1].server_seq));
    let cases: HashSet<CaseId> = seen.iter().map(|o| o.op.case_id).collect();
    let mut expected: HashSet<CaseId> = a_cases.iter().copied().collect();
    expected.insert(a_in_g2);
    assert_eq!(cases, expected, "A sees its own reports, not B's case");

    // Nothing more, and the cursor holds.
    let page = server.pull(&a2, cursor, 5).await;
    assert!(page.ops.is_empty() && !page.more);
    assert_eq!(page.cursor, cursor);

    // A's first device made those ops: it gets only the server's Receives.
    let (ops, _) = server.pull_all(&a1, 0).await;
    assert_eq!(ops.len(), 4);
    assert!(ops.iter().all(|o| kind_name(&o.op) == "receive"));

    // B sees its own case's Receive and all of A's case placed in g-2.
    let (ops, _) = server.pull_all(&b, 0).await;
    let kinds: Vec<(CaseId, &str)> = ops
        .iter()
        .map(|o| (o.op.case_id, kind_name(&o.op)))
        .collect();
    assert_eq!(
        kinds,
        [
            (a_in_g2, "create"),
            (a_in_g2, "submit"),
            (a_in_g2, "receive"),
            (b_case, "receive"),
        ]
    );
    assert!(ops.iter().all(|o| o.grid_id.as_deref() == Some("g-2")));

    // The township above both grids sees everything.
    let (ops, _) = server.pull_all(&township, 0).await;
    assert_eq!(ops.len(), 15);

    // A pull limited to 0 pushes only, and says whether more is waiting.
    let resp = server
        .sync_req(
            &township,
            &SyncRequest {
                push: vec![],
                cursor: 0,
                pull_limit: 0,
                history: None,
            },
        )
        .await;
    assert!(resp.ops.is_empty());
    assert!(resp.more);
    assert_eq!(resp.cursor, 0);
}

#[tokio::test]
async fn a_cursor_past_the_end_starts_over() {
    let server = Server::start().await;
    let a = server.leader("张三", &["g-1"]).await;
    let b = server.leader("李四", &["g-1"]).await;
    reported_case(&server, &b, in_g1()).await;
    let page = server.pull(&a, 1_000_000, 10).await;
    assert!(page.ops.is_empty());
    // Not brought back to the horizon: the numbers below it may be new.
    assert!(page.reset);
    assert_eq!(page.cursor, 0);
    let page = server.pull(&a, page.cursor, 10).await;
    // create (renumbered on submit), submit, receive
    assert_eq!((page.ops.len(), page.cursor), (3, 4));
}

#[tokio::test]
async fn a_case_moved_into_a_grid_arrives_there_whole() {
    let server = Server::start().await;
    let a = server.leader("张三", &["g-1"]).await;
    let b = server.leader("李四", &["g-2"]).await;
    let id = CaseId::new();
    let create_op = create(&a, id, Some(in_g1()));
    assert_accepted(&server.push(&a, std::slice::from_ref(&create_op)).await);
    // B is up to date, and sees nothing of A's draft in g-1.
    let (ops, b_cursor) = server.pull_all(&b, 0).await;
    assert!(ops.is_empty());
    assert!(b_cursor > 0);

    // A moves the draft's place into g-2 and submits it.
    let first = server
        .push(&a, &[edit_location(&a, id, in_g2()), submit(&a, id)])
        .await;
    assert_accepted(&first);
    let (ops, _) = server.pull_all(&b, b_cursor).await;
    let kinds: Vec<&str> = ops.iter().map(|o| kind_name(&o.op)).collect();
    assert_eq!(
        kinds,
        ["create", "edit", "submit", "receive"],
        "the history comes along"
    );
    assert_eq!(ops[0].op.id, create_op.id);
    assert!(ops.iter().all(|o| o.grid_id.as_deref() == Some("g-2")));
    // A retry still answers as the first time.
    assert_eq!(
        server.push(&a, &[create_op]).await[0].status,
        gridcase_core::protocol::PushStatus::Accepted
    );

    // A re-imported map that moves g-2's area into g-3 hands the case on.
    let c = server.leader("王五", &["g-3"]).await;
    let moved = super::common::GRIDS
        .replace(
            "[[[125.1, 42.8], [125.2, 42.8], [125.2, 42.9], [125.1, 42.9], [125.1, 42.8]]]",
            "[[[125.9, 42.8], [125.95, 42.8], [125.95, 42.9], [125.9, 42.9], [125.9, 42.8]]]",
        )
        .replace(
            "[[[126.0, 42.8], [126.1, 42.8], [126.1, 42.9], [126.0, 42.9], [126.0, 42.8]]]",
            "[[[125.1, 42.8], [125.2, 42.8], [125.2, 42.9], [125.1, 42.9], [125.1, 42.8]]]",
        );
    let summary = server.admin().import_grids(&moved).unwrap();
    assert_eq!(summary.cases_moved, 1);
    let (ops, _) = server.pull_all(&c, 0).await;
    assert_eq!(ops.len(), 4);
    assert!(ops.iter().all(|o| o.grid_id.as_deref() == Some("g-3")));
}

#[tokio::test]
async fn a_draft_is_its_grid_leaders_own_until_submitted() {
    let server = Server::start().await;
    let a = server.leader("张三", &["g-1"]).await;
    let b = server.leader("李四", &["g-1"]).await;
    let id = CaseId::new();
    assert_accepted(&server.push(&b, &[create(&b, id, Some(in_g1()))]).await);
    let page = server.pull(&a, 0, 100).await;
    assert!(page.ops.is_empty(), "a colleague's draft is not shown");
    let cursor = page.cursor;

    assert_accepted(&server.push(&b, &[submit(&b, id)]).await);
    let page = server.pull(&a, cursor, 100).await;
    let kinds: Vec<_> = page.ops.iter().map(|p| kind_name(&p.op)).collect();
    assert_eq!(
        kinds,
        vec!["create", "submit", "receive"],
        "the whole history arrives"
    );
}
