use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::case::{CaseDraft, CaseStatus, Category};
use crate::ids::{OpId, PhotoId};
use crate::location::{GeoPoint, Location};
use crate::op::{Actor, OpKind, PhotoRef, Role};
use crate::time::{now_millis, DAY, HOUR};

fn leader() -> Actor {
    Actor {
        role: Role::GridLeader,
        id: "leader-1".into(),
    }
}

fn op(case_id: CaseId, kind: OpKind) -> Op {
    Op {
        id: OpId::new(),
        case_id,
        actor: leader(),
        device_time: now_millis(),
        at: None,
        recorded_before_enrolment_as: None,
        kind,
    }
}

fn create(title: &str, deadline: Option<Millis>, located: bool) -> Op {
    op(
        CaseId::new(),
        OpKind::Create {
            draft: CaseDraft {
                category: Category::LeakingHouse,
                title: title.into(),
                description: "三楼卫生间漏水到二楼".into(),
                location: located.then(|| Location {
                    point: GeoPoint::new(42.88, 125.14, 5.0).unwrap(),
                    address: Some("龙山区福民街12号".into()),
                    source: crate::location::LocationSource::Typed,
                }),
                occurred_at: now_millis(),
                proposed_deadline: deadline,
            },
        },
    )
}

fn no_grid(_: &Case) -> Option<String> {
    None
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn record(store: &Store, op: Op) -> Result<Recorded, StoreError> {
    store.record(op, &no_grid, |_| Ok(()))
}

#[test]
fn a_recorded_case_is_in_the_store_the_timeline_and_the_outbox() {
    let (_dir, store) = open();
    let r = record(&store, create("房屋漏水", None, true)).unwrap();
    let case = store.case(&r.case.id).unwrap().unwrap();
    assert_eq!(case.status, CaseStatus::Draft);
    let timeline = store.timeline(&case.id).unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].sync, OpSyncState::Pending);
    assert_eq!(store.outbox_len().unwrap(), 1);
}

#[test]
fn a_refused_op_writes_nothing() {
    let (_dir, store) = open();
    let r = record(&store, create("没有位置的草稿", None, false)).unwrap();
    let err = record(&store, op(r.case.id, OpKind::Submit)).unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(ref e) if e.field == "location"),
        "{err:?}"
    );
    assert_eq!(
        store.case(&r.case.id).unwrap().unwrap().status,
        CaseStatus::Draft
    );
    assert_eq!(store.timeline(&r.case.id).unwrap().len(), 1);
    assert_eq!(store.outbox_len().unwrap(), 1);
}

#[test]
fn a_failure_late_in_the_transaction_rolls_back_the_op_too() {
    let (_dir, store) = open();
    let r = record(&store, create("井盖", None, true)).unwrap();
    let photo = PhotoRef {
        id: PhotoId::new(),
        sha256: "a".repeat(64),
        bytes: 1,
        width: 1,
        height: 1,
        thumb_sha256: "b".repeat(64),
        thumb_bytes: 1,
        captured_at: None,
        captured_at_point: None,
    };
    let attach = op(
        r.case.id,
        OpKind::AttachPhoto {
            photo: photo.clone(),
            location: None,
        },
    );
    // A photo row pointing at a case that does not exist violates a foreign key.
    let bad_row = PhotoRow {
        photo,
        case_id: CaseId::new(),
        op_id: attach.id,
        added_at: 0,
    };
    assert!(store
        .record(attach, &no_grid, |tx| bad_row.insert(tx))
        .is_err());
    assert_eq!(store.timeline(&r.case.id).unwrap().len(), 1);
    assert!(store
        .case(&r.case.id)
        .unwrap()
        .unwrap()
        .photo_ids
        .is_empty());
    assert!(store.photos_of(&r.case.id).unwrap().is_empty());
}

#[test]
fn readers_are_not_blocked_by_an_open_write() {
    let (_dir, store) = open();
    let store = std::sync::Arc::new(store);
    record(&store, create("楼道杂物", None, true)).unwrap();
    let (in_tx, wait_in_tx) = mpsc::channel();
    let (release, wait_release) = mpsc::channel::<()>();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            store
                .write(|tx| {
                    tx.execute("UPDATE cases SET title = 'changing'", [])?;
                    in_tx.send(()).unwrap();
                    wait_release.recv().unwrap();
                    Ok(())
                })
                .unwrap();
        })
    };
    wait_in_tx.recv().unwrap();
    // The writer holds its transaction open; a read still answers at once with
    // the last committed state.
    let page = store
        .list_cases(&CaseQuery::default(), now_millis())
        .unwrap();
    assert_eq!(page.cases[0].title, "楼道杂物");
    release.send(()).unwrap();
    writer.join().unwrap();
}

#[test]
fn closing_interrupts_long_work_and_refuses_more() {
    let (_dir, store) = open();
    let store = std::sync::Arc::new(store);
    let (started, wait_started) = mpsc::channel();
    let long = {
        let store = store.clone();
        std::thread::spawn(move || {
            store.read(|conn| {
                started.send(()).unwrap();
                let n: i64 = conn.query_row(
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
                     SELECT count(*) FROM c",
                    [],
                    |r| r.get(0),
                )?;
                Ok(n)
            })
        })
    };
    wait_started.recv().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    store.close();
    let result = long.join().unwrap();
    assert!(matches!(result, Err(StoreError::Interrupted)), "{result:?}");
    assert!(matches!(store.case_count(), Err(StoreError::Closed)));
}

#[test]
fn what_was_committed_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = Store::open(dir.path()).unwrap();
        let r = record(&store, create("邻里纠纷", None, true)).unwrap();
        record(&store, op(r.case.id, OpKind::Submit)).unwrap();
        r.case.id
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.case(&id).unwrap().unwrap().status,
        CaseStatus::Submitted
    );
    assert_eq!(store.timeline(&id).unwrap().len(), 2);
}

#[test]
fn cases_recorded_before_search_existed_become_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let mut conn = Connection::open(&path).unwrap();
        migrations::run_up_to(&mut conn, 1).unwrap();
        let r = create("拖欠农民工工资", None, true);
        let case = crate::op::apply(None, &r).unwrap();
        save_case(&conn, &case, true).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let q = CaseQuery {
        text: Some("农民工".into()),
        ..Default::default()
    };
    assert_eq!(store.list_cases(&q, now_millis()).unwrap().cases.len(), 1);
}

mod lists {
    use super::*;

    /// Ten cases: deadlines 1..10 days out (case 0 has none), half submitted,
    /// two in grid "g-2", titles numbered.
    fn ten() -> (tempfile::TempDir, Store, Vec<CaseId>) {
        let (dir, store) = open();
        let now = now_millis();
        let mut ids = Vec::new();
        for i in 0..10 {
            let deadline = (i > 0).then(|| now + i as i64 * DAY);
            let place = move |_: &Case| (i >= 8).then(|| "g-2".to_string());
            let r = store
                .record(
                    create(&format!("第{i}号 漏水"), deadline, true),
                    &place,
                    |_| Ok(()),
                )
                .unwrap();
            if i % 2 == 0 {
                record(&store, op(r.case.id, OpKind::Submit)).unwrap();
            }
            ids.push(r.case.id);
        }
        (dir, store, ids)
    }

    fn list(store: &Store, q: CaseQuery) -> Vec<String> {
        store
            .list_cases(&q, now_millis())
            .unwrap()
            .cases
            .into_iter()
            .map(|c| c.title)
            .collect()
    }

    #[test]
    fn by_status_grid_and_text() {
        let (_d, store, _) = ten();
        let drafts = list(
            &store,
            CaseQuery {
                statuses: vec![CaseStatus::Draft],
                ..Default::default()
            },
        );
        assert_eq!(drafts.len(), 5);
        let in_grid = list(
            &store,
            CaseQuery {
                grid_id: Some("g-2".into()),
                ..Default::default()
            },
        );
        assert_eq!(in_grid.len(), 2);
        let three_chars = list(
            &store,
            CaseQuery {
                text: Some("第3号".into()),
                ..Default::default()
            },
        );
        assert_eq!(three_chars, vec!["第3号 漏水"]);
        let two_chars = list(
            &store,
            CaseQuery {
                text: Some("漏水".into()),
                ..Default::default()
            },
        );
        assert_eq!(two_chars.len(), 10);
        let address = list(
            &store,
            CaseQuery {
                text: Some("福民街".into()),
                ..Default::default()
            },
        );
        assert_eq!(address.len(), 10);
        let syntax = list(
            &store,
            CaseQuery {
                text: Some("\"漏 OR *".into()),
                ..Default::default()
            },
        );
        assert!(syntax.is_empty(), "query syntax is searched as plain text");
    }

    #[test]
    fn ordered_by_deadline_with_no_deadline_last() {
        let (_d, store, _) = ten();
        let titles = list(
            &store,
            CaseQuery {
                order: CaseOrder::Deadline,
                ..Default::default()
            },
        );
        let expected: Vec<String> = (1..10)
            .chain([0])
            .map(|i| format!("第{i}号 漏水"))
            .collect();
        assert_eq!(titles, expected);
    }

    #[test]
    fn pages_cover_every_case_once_in_both_orders() {
        let (_d, store, ids) = ten();
        for order in [CaseOrder::LastChange, CaseOrder::Deadline] {
            let mut seen = Vec::new();
            let mut token = None;
            loop {
                let page = store
                    .list_cases(
                        &CaseQuery {
                            order,
                            page_size: 3,
                            page_token: token.clone(),
                            ..Default::default()
                        },
                        now_millis(),
                    )
                    .unwrap();
                assert!(page.cases.len() <= 3);
                seen.extend(page.cases.iter().map(|c| c.id));
                token = page.next_page_token;
                if token.is_none() {
                    break;
                }
            }
            let mut sorted = seen.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), ids.len(), "{order:?}");
            assert_eq!(seen.len(), ids.len(), "{order:?}");
        }
    }

    #[test]
    fn waiting_to_sync_and_overdue() {
        let (_d, store, ids) = ten();
        // Nothing has synced yet.
        let waiting = list(
            &store,
            CaseQuery {
                waiting_to_sync: true,
                ..Default::default()
            },
        );
        assert_eq!(waiting.len(), 10);
        // Two days from now, submitted cases with deadlines of 1 day are overdue
        // (drafts are not: nobody owes anything on a draft yet).
        let later = now_millis() + 2 * DAY + HOUR;
        let overdue = store
            .list_cases(
                &CaseQuery {
                    overdue: true,
                    ..Default::default()
                },
                later,
            )
            .unwrap();
        let titles: Vec<_> = overdue.cases.iter().map(|c| c.title.as_str()).collect();
        assert_eq!(titles, vec!["第2号 漏水"]);
        assert!(overdue.cases[0].overdue);
        let _ = ids;
    }

    #[test]
    fn a_forged_page_token_is_refused_by_name() {
        let (_d, store, _) = ten();
        let err = store
            .list_cases(
                &CaseQuery {
                    page_token: Some("1; DROP TABLE cases".into()),
                    ..Default::default()
                },
                now_millis(),
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(ref e) if e.field == "page_token"));
        let err = store
            .list_cases(
                &CaseQuery {
                    page_size: 100_000,
                    ..Default::default()
                },
                now_millis(),
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(ref e) if e.field == "page_size"));
    }
}

/// The durability settings, read from the store's own connections (they are
/// per connection, so a fresh connection would not show them): WAL, a full
/// sync at each commit (a commit that returned survives a dead battery), and
/// foreign keys enforced, on the writer and on the readers.
#[test]
fn the_store_runs_in_wal_with_full_sync_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (mode, sync, fk) = store
        .write(|tx| {
            let mode: String = tx.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
            let sync: i64 = tx.pragma_query_value(None, "synchronous", |r| r.get(0))?;
            let fk: bool = tx.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
            Ok((mode, sync, fk))
        })
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(sync, 2, "synchronous=FULL");
    assert!(fk, "foreign_keys=ON on the writer");
    let fk: bool = store
        .read(|c| Ok(c.pragma_query_value(None, "foreign_keys", |r| r.get(0))?))
        .unwrap();
    assert!(fk, "foreign_keys=ON on a reader");
}
