//! The store's conformance suite: every test here runs against every
//! backend, as matrix-rust-sdk's `statestore_integration_tests!` runs one
//! suite against each of its stores. [`store_conformance_tests!`] expands the
//! list once per backend: SQLite always, PostgreSQL on the test binary's
//! throwaway cluster ([`gridcase_test_support::postgres::PgCluster`], started
//! on first use; installed from Debian's packages when missing).
//!
//! A test is an `async fn name(s: &TestStore)` below, going through the
//! store's typed methods only (never a connection), and its name in the list
//! inside the macro. A behaviour a user would notice, on both backends.

use std::collections::BTreeSet;
use std::time::Duration;

use gridcase_core::case::{Case, CaseDraft, CaseStatus, Category};
use gridcase_core::ids::{CaseId, OpId, PhotoId};
use gridcase_core::location::{GeoPoint, Location as Place};
use gridcase_core::op::{apply, Actor, Op, OpKind, PhotoRef, Role};
use gridcase_core::time::{now_millis, DAY};

use super::departments::Department;
use super::desk::NewDesk;
use super::devices::{NewAccount, NewDevice};
use super::ledger::{NewOutcome, PullQuery};
use super::rating_links::RatingLinkRow;
use super::staff::{Reach, SessionRow, StaffRow};
use super::{Location, ReadTx, Seq, Store, StoreError, Tx, TxFuture};

/// A store of one test, on one backend, and where it is (to open a second
/// handle on it: another instance).
pub(crate) struct TestStore {
    pub store: Store,
    pub location: Location,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    /// Another handle on the same database, as a second server instance has.
    async fn another_instance(&self) -> Store {
        Store::open(&self.location).await.unwrap()
    }
}

pub(crate) async fn sqlite_store(_name: &str) -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Sqlite {
        path: dir.path().join("gridcase.db"),
        read_connections: 4,
    };
    TestStore {
        store: Store::open(&location).await.unwrap(),
        location,
        _dir: Some(dir),
    }
}

pub(crate) async fn postgres_store(name: &str) -> TestStore {
    let url = gridcase_test_support::postgres::PgCluster::shared()
        .and_then(|pg| pg.fresh_database(name))
        .expect("a database on the test binary's PostgreSQL cluster");
    let location = Location::Postgres {
        url,
        max_connections: 8,
    };
    TestStore {
        store: Store::open(&location).await.unwrap(),
        location,
        _dir: None,
    }
}

/// Expands every conformance test for the backend `$make` opens.
macro_rules! store_conformance_tests {
    ($make:path) => {
        store_conformance_tests!(@each $make;
            a_case_is_inserted_once_loaded_updated_and_listed,
            ops_are_numbered_in_order_and_the_horizon_follows,
            a_failed_write_leaves_nothing,
            renumbering_moves_a_case_to_the_end_in_its_order,
            departures_reach_only_the_accounts_that_lost_the_case,
            a_pull_serves_what_the_account_sees_up_to_the_horizon,
            push_answers_are_remembered_once_with_the_number_the_op_got,
            photos_are_visible_to_whoever_sees_their_case,
            placements_and_scopes_are_kept,
            the_history_id_is_one_and_stays,
            accounts_codes_and_devices_round_trip,
            a_repeated_enrolment_works_within_the_window_and_not_after,
            a_map_import_grows_the_version_and_every_instance_sees_it,
            names_come_from_accounts_and_departments,
            departments_are_found_by_id_and_name_and_serve_their_area,
            the_desk_follows_the_centres_steps,
            a_pull_never_serves_past_a_writer_still_open,
            two_instances_racing_on_one_op_id_record_it_once,
            staff_sessions_and_lockouts_round_trip,
            wrong_passwords_counted_on_two_instances_at_once_lock_once,
            two_instances_creating_one_login_store_it_once,
            a_rating_link_is_found_by_its_hash_and_used_once,
            staff_reach_cases_at_the_centre_by_unit_or_department,
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = $make(stringify!($name)).await;
                super::$name(&store).await;
            }
        )*
    };
}

mod sqlite {
    store_conformance_tests!(super::sqlite_store);
}

mod postgres {
    store_conformance_tests!(super::postgres_store);
}

// --- helpers ---

async fn write<T, F>(store: &Store, f: F) -> T
where
    T: Send + 'static,
    F: for<'t, 'c> FnMut(&'t mut Tx<'c>) -> TxFuture<'t, Result<T, StoreError>> + Send + 'static,
{
    store.write(f).await.unwrap()
}

async fn read<T, F>(store: &Store, f: F) -> T
where
    T: Send + 'static,
    F: for<'t, 'c> FnMut(&'t mut ReadTx<'c>) -> TxFuture<'t, Result<T, StoreError>>
        + Send
        + 'static,
{
    store.read(f).await.unwrap()
}

fn actor(id: &str) -> Actor {
    Actor {
        role: Role::GridLeader,
        id: id.to_string(),
    }
}

fn op(case_id: CaseId, by: &str, kind: OpKind) -> Op {
    Op {
        id: OpId::new(),
        case_id,
        actor: actor(by),
        device_time: now_millis(),
        at: None,
        recorded_before_enrolment_as: None,
        kind,
    }
}

/// A case `by` just created (a draft), and the op that made it.
fn created(by: &str) -> (Case, Op) {
    let now = now_millis();
    let point = GeoPoint::new(42.87, 125.07, 5.0).unwrap();
    let create = op(
        CaseId::new(),
        by,
        OpKind::Create {
            draft: CaseDraft {
                category: Category::CollapsedManhole,
                title: "下水井塌陷".into(),
                description: "暴雨后人民大街井盖塌陷".into(),
                location: Some(Place {
                    point,
                    address: None,
                    source: gridcase_core::location::LocationSource::Typed,
                }),
                occurred_at: now,
                proposed_deadline: Some(now + DAY),
            },
        },
    );
    let case = apply(None, &create).unwrap();
    (case, create)
}

/// The case after `kind` by its reporter.
fn then(case: &Case, kind: OpKind) -> (Case, Op) {
    let o = op(case.id, &case.reported_by, kind);
    (apply(Some(case), &o).unwrap(), o)
}

fn scopes(units: &[&str]) -> BTreeSet<String> {
    units.iter().map(|u| u.to_string()).collect()
}

/// Stores `case` with `units` as its scopes and `ops` appended; answers the
/// numbers the ops got.
async fn stored(store: &Store, case: &Case, units: &[&str], ops: &[Op]) -> Vec<u64> {
    let (case, units, ops) = (case.clone(), scopes(units), ops.to_vec());
    write(store, move |tx| {
        let (case, units, ops) = (case.clone(), units.clone(), ops.clone());
        Box::pin(async move {
            if tx.load_case(&case.id).await?.is_none() {
                tx.insert_case(&case, 1).await?;
            } else {
                tx.update_case(&case, 2).await?;
            }
            tx.set_case_scopes(&case.id, &units).await?;
            let mut seqs = Vec::new();
            for o in &ops {
                seqs.push(tx.append_op(o, None).await?);
            }
            let numbering = tx.number().await?;
            seqs.into_iter().map(|s| numbering.of(s)).collect()
        })
    })
    .await
}

async fn horizon(store: &Store) -> u64 {
    read(store, |tx| Box::pin(async move { tx.horizon().await })).await
}

/// The ops `account` (on device `device`) pulls in `after ..= horizon`.
async fn pulled(store: &Store, account: &str, device: &str, after: u64) -> (Vec<(u64, OpId)>, u64) {
    let (account, device) = (account.to_string(), device.to_string());
    read(store, move |tx| {
        let (account, device) = (account.clone(), device.clone());
        Box::pin(async move {
            let upto = tx.horizon().await?;
            let ops = tx
                .pull_ops(&PullQuery {
                    account_id: &account,
                    device_id: &device,
                    after,
                    upto,
                    limit: 1000,
                })
                .await?;
            Ok((ops.iter().map(|p| (p.server_seq, p.op.id)).collect(), upto))
        })
    })
    .await
}

/// An account answering for `grids`, with one device; answers (account,
/// device) ids.
async fn account_with_device(store: &Store, grids: &[&str]) -> (String, String) {
    let account = crate::accounts::new_id();
    let device = crate::accounts::new_id();
    let grids: Vec<String> = grids.iter().map(|g| g.to_string()).collect();
    let (a, d) = (account.clone(), device.clone());
    write(store, move |tx| {
        let (a, d, grids) = (a.clone(), d.clone(), grids.clone());
        Box::pin(async move {
            tx.insert_account(
                &NewAccount {
                    id: &a,
                    name: "张三",
                    grid_ids: &grids,
                },
                1,
            )
            .await?;
            tx.insert_device(&NewDevice {
                id: &d,
                account_id: &a,
                name: "手持终端",
                token_hash: &crate::accounts::sha256(d.as_bytes()),
                enrolment_key_hash: None,
                created_at: 1,
            })
            .await
        })
    })
    .await;
    (account, device)
}

// --- the ledger ---

async fn a_case_is_inserted_once_loaded_updated_and_listed(s: &TestStore) {
    let (case, _) = created("reporter");
    let c = case.clone();
    write(&s.store, move |tx| {
        let c = c.clone();
        Box::pin(async move { tx.insert_case(&c, 10).await })
    })
    .await;
    let c = case.clone();
    let twice = s
        .store
        .write(move |tx| {
            let c = c.clone();
            Box::pin(async move { tx.insert_case(&c, 11).await })
        })
        .await;
    assert!(
        matches!(
            twice,
            Err(StoreError::Conflict { .. }) | Err(StoreError::Unavailable(_))
        ),
        "a second case of one id is refused by the database: {twice:?}"
    );
    let (submitted, _) = then(&case, OpKind::Submit);
    let c = submitted.clone();
    write(&s.store, move |tx| {
        let c = c.clone();
        Box::pin(async move { tx.update_case(&c, 12).await })
    })
    .await;
    let id = case.id;
    let (loaded, exists, listed, by_prefix, none) = read(&s.store, move |tx| {
        Box::pin(async move {
            Ok((
                tx.load_case(&id).await?,
                tx.case_exists(&id).await?,
                tx.list_cases().await?,
                tx.case_ids_starting(&id.to_string()[..8], 2).await?,
                tx.load_case(&CaseId::new()).await?,
            ))
        })
    })
    .await;
    assert_eq!(loaded.unwrap().status, CaseStatus::Submitted);
    assert!(exists);
    assert!(none.is_none());
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].updated_at, 12);
    assert_eq!(listed[0].case.id, id);
    assert_eq!(by_prefix, vec![id]);
    let missing = s
        .store
        .write(|tx| {
            let (ghost, _) = created("nobody");
            Box::pin(async move { tx.update_case(&ghost, 1).await })
        })
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
}

async fn ops_are_numbered_in_order_and_the_horizon_follows(s: &TestStore) {
    assert_eq!(horizon(&s.store).await, 0);
    let (case, create) = created("reporter");
    let (submitted, submit) = then(&case, OpKind::Submit);
    let first = stored(&s.store, &case, &["g-1"], std::slice::from_ref(&create)).await;
    let next = stored(
        &s.store,
        &submitted,
        &["g-1"],
        std::slice::from_ref(&submit),
    )
    .await;
    assert_eq!(first, [1]);
    assert_eq!(next, [2]);
    assert_eq!(horizon(&s.store).await, 2);
    let id = case.id;
    let (ops, exists, unknown) = read(&s.store, move |tx| {
        let (a, b) = (create.id, OpId::new());
        Box::pin(async move {
            Ok((
                tx.case_ops(&id).await?,
                tx.op_exists(&a).await?,
                tx.op_exists(&b).await?,
            ))
        })
    })
    .await;
    let numbered: Vec<u64> = ops.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbered, [1, 2]);
    assert!(matches!(ops[1].1.kind, OpKind::Submit));
    assert!(exists && !unknown);
    // An op id is recorded once; the second is the database's to refuse.
    let again = submit.clone();
    let twice = s
        .store
        .write(move |tx| {
            let again = again.clone();
            Box::pin(async move { tx.append_op(&again, None).await.map(drop) })
        })
        .await;
    assert!(twice.is_err());
    assert_eq!(horizon(&s.store).await, 2);
}

async fn a_failed_write_leaves_nothing(s: &TestStore) {
    let (case, create) = created("reporter");
    let failed: Result<(), StoreError> = s
        .store
        .write(move |tx| {
            let (case, create) = (case.clone(), create.clone());
            Box::pin(async move {
                tx.insert_case(&case, 1).await?;
                tx.append_op(&create, None).await?;
                Err(StoreError::Backend("the rules refused something".into()))
            })
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(horizon(&s.store).await, 0);
    let listed = read(&s.store, |tx| {
        Box::pin(async move { tx.list_cases().await })
    })
    .await;
    assert!(listed.is_empty(), "one write, one outcome: nothing of it");
}

async fn renumbering_moves_a_case_to_the_end_in_its_order(s: &TestStore) {
    let (a, a1) = created("reporter");
    let (a_sub, a2) = then(&a, OpKind::Submit);
    let (b, b1) = created("reporter");
    stored(&s.store, &a, &["g-1"], std::slice::from_ref(&a1)).await;
    stored(&s.store, &a_sub, &["g-1"], std::slice::from_ref(&a2)).await;
    stored(&s.store, &b, &["g-1"], std::slice::from_ref(&b1)).await;
    // In one write: an op of A pending, then A renumbered whole, then B's.
    let a3 = op(a.id, "reporter", OpKind::Chase { note: "a".into() });
    let b2 = op(b.id, "reporter", OpKind::Chase { note: "b".into() });
    let (a_id, b_id) = (a.id, b.id);
    let (a3c, b2c) = (a3.clone(), b2.clone());
    write(&s.store, move |tx| {
        let (a3, b2) = (a3c.clone(), b2c.clone());
        Box::pin(async move {
            tx.append_op(&a3, None).await?;
            tx.renumber_case(&a_id).await?;
            tx.append_op(&b2, None).await?;
            Ok(())
        })
    })
    .await;
    let (a_ops, b_ops, h) = read(&s.store, move |tx| {
        Box::pin(async move {
            Ok((
                tx.case_ops(&a_id).await?,
                tx.case_ops(&b_id).await?,
                tx.horizon().await?,
            ))
        })
    })
    .await;
    let a_ids: Vec<OpId> = a_ops.iter().map(|(_, o)| o.id).collect();
    assert_eq!(a_ids, [a1.id, a2.id, a3.id], "a case keeps its order");
    let a_seqs: Vec<u64> = a_ops.iter().map(|(n, _)| *n).collect();
    assert!(a_seqs.windows(2).all(|w| w[0] < w[1]));
    assert!(
        a_seqs[0] > b_ops[0].0,
        "A's history now comes after B's first op: {a_seqs:?} vs {b_ops:?}"
    );
    assert!(b_ops[1].0 > a_seqs[2], "B's new op after A's moved ones");
    assert_eq!(h, b_ops[1].0);
}

async fn departures_reach_only_the_accounts_that_lost_the_case(s: &TestStore) {
    let (left_behind, _) = account_with_device(&s.store, &["g-1"]).await;
    let (still_sees, _) = account_with_device(&s.store, &["t-1"]).await;
    let (case, create) = created("reporter");
    let (case, submit) = {
        let (c, s2) = then(&case, OpKind::Submit);
        (c, s2)
    };
    stored(&s.store, &case, &["g-1", "t-1"], &[create, submit]).await;
    let id = case.id;
    let seq = write(&s.store, move |tx| {
        Box::pin(async move {
            tx.set_case_scopes(&id, &scopes(&["g-2", "t-1"])).await?;
            let seq = tx.add_departures(&id, &["g-1"]).await?;
            tx.number().await?.of(seq)
        })
    })
    .await;
    assert_eq!(
        horizon(&s.store).await,
        seq,
        "departures share the numbering"
    );
    for (account, expect) in [(left_behind, true), (still_sees, false)] {
        let left = read(&s.store, move |tx| {
            let account = account.clone();
            Box::pin(async move {
                let upto = tx.horizon().await?;
                tx.pull_departures(&PullQuery {
                    account_id: &account,
                    device_id: "",
                    after: 0,
                    upto,
                    limit: 10,
                })
                .await
            })
        })
        .await;
        assert_eq!(
            left.iter().any(|l| l.case_id == id && l.server_seq == seq),
            expect,
            "{left:?}"
        );
    }
}

async fn a_pull_serves_what_the_account_sees_up_to_the_horizon(s: &TestStore) {
    let (reporter, reporter_device) = account_with_device(&s.store, &["g-1"]).await;
    let (neighbour, neighbour_device) = account_with_device(&s.store, &["g-1"]).await;
    let (elsewhere, elsewhere_device) = account_with_device(&s.store, &["g-9"]).await;
    let (draft, create_draft) = created(&reporter);
    stored(
        &s.store,
        &draft,
        &["g-1", "t-1"],
        std::slice::from_ref(&create_draft),
    )
    .await;
    let (case, create) = created(&reporter);
    let (case, submit) = then(&case, OpKind::Submit);
    // The reporter's own device pushed these two.
    let (c, ops, dev) = (
        case.clone(),
        vec![create.clone(), submit.clone()],
        reporter_device.clone(),
    );
    write(&s.store, move |tx| {
        let (c, ops, dev) = (c.clone(), ops.clone(), dev.clone());
        Box::pin(async move {
            tx.insert_case(&c, 1).await?;
            tx.set_case_scopes(&c.id, &scopes(&["g-1", "t-1"])).await?;
            for o in &ops {
                tx.append_op(o, Some(&dev)).await?;
            }
            Ok(())
        })
    })
    .await;
    let (mine, h) = pulled(&s.store, &reporter, &reporter_device, 0).await;
    assert_eq!(
        mine.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
        [create_draft.id],
        "its own device's ops are not sent back; its own draft it sees"
    );
    assert_eq!(h, 3);
    let (theirs, _) = pulled(&s.store, &neighbour, &neighbour_device, 0).await;
    assert_eq!(
        theirs.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
        [create.id, submit.id],
        "a neighbour sees the submitted case, not the draft"
    );
    let (nothing, _) = pulled(&s.store, &elsewhere, &elsewhere_device, 0).await;
    assert!(nothing.is_empty());
    let (after, _) = pulled(&s.store, &neighbour, &neighbour_device, 2).await;
    assert_eq!(after.len(), 1, "only what is after the cursor");
    // A page is bounded by its limit and by the horizon it is given.
    let n = neighbour.clone();
    let page = read(&s.store, move |tx| {
        let n = n.clone();
        Box::pin(async move {
            tx.pull_ops(&PullQuery {
                account_id: &n,
                device_id: "",
                after: 0,
                upto: 2,
                limit: 1,
            })
            .await
        })
    })
    .await;
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].server_seq, 2);
    assert_eq!(page[0].grid_id, case.grid_id);
}

async fn push_answers_are_remembered_once_with_the_number_the_op_got(s: &TestStore) {
    let (_, device) = account_with_device(&s.store, &["g-1"]).await;
    let (case, create) = created("reporter");
    let refused_id = OpId::new();
    let (c, o, d) = (case.clone(), create.clone(), device.clone());
    let seq = write(&s.store, move |tx| {
        let (c, o, d) = (c.clone(), o.clone(), d.clone());
        Box::pin(async move {
            tx.insert_case(&c, 1).await?;
            let seq = tx.append_op(&o, Some(&d)).await?;
            tx.remember_outcome(&NewOutcome {
                op_id: o.id,
                device_id: &d,
                accepted: true,
                seq: Some(seq),
                code: None,
                reason: None,
                decided_at: 5,
            })
            .await?;
            // Read back in the same write: the number is still to be taken
            // on PostgreSQL, and reads as the op's own.
            let again = tx.stored_outcome(&o.id).await?.unwrap();
            assert_eq!(again.seq, Some(seq));
            tx.remember_outcome(&NewOutcome {
                op_id: refused_id,
                device_id: &d,
                accepted: false,
                seq: None,
                code: Some("not_allowed"),
                reason: Some("not now"),
                decided_at: 5,
            })
            .await?;
            tx.number().await?.of(seq)
        })
    })
    .await;
    let id = create.id;
    let (accepted, refused, none) = read(&s.store, move |tx| {
        Box::pin(async move {
            Ok((
                tx.stored_outcome(&id).await?.unwrap(),
                tx.stored_outcome(&refused_id).await?.unwrap(),
                tx.stored_outcome(&OpId::new()).await?,
            ))
        })
    })
    .await;
    assert!(accepted.accepted);
    assert_eq!(accepted.device_id, device);
    assert_eq!(accepted.seq, Some(Seq::numbered(seq)));
    assert!(!refused.accepted);
    assert_eq!(refused.seq, None);
    assert_eq!(refused.code.as_deref(), Some("not_allowed"));
    assert_eq!(refused.reason.as_deref(), Some("not now"));
    assert!(none.is_none());
    let d = device.clone();
    let twice = s
        .store
        .write(move |tx| {
            let d = d.clone();
            Box::pin(async move {
                tx.remember_outcome(&NewOutcome {
                    op_id: id,
                    device_id: &d,
                    accepted: false,
                    seq: None,
                    code: Some("x"),
                    reason: None,
                    decided_at: 6,
                })
                .await
            })
        })
        .await;
    assert!(twice.is_err(), "one answer per op id");
}

async fn photos_are_visible_to_whoever_sees_their_case(s: &TestStore) {
    let (reporter, _) = account_with_device(&s.store, &["g-1"]).await;
    let (other, _) = account_with_device(&s.store, &["g-2"]).await;
    let (case, create) = created(&reporter);
    let photo = PhotoRef {
        id: PhotoId::new(),
        sha256: "ab".repeat(32),
        bytes: 10,
        width: 1,
        height: 1,
        thumb_sha256: "cd".repeat(32),
        thumb_bytes: 5,
        captured_at: None,
        captured_at_point: None,
    };
    let (case2, attach) = then(
        &case,
        OpKind::AttachPhoto {
            photo,
            location: None,
        },
    );
    stored(&s.store, &case, &["g-1"], &[create]).await;
    stored(&s.store, &case2, &["g-1"], &[attach]).await;
    let id = case.id;
    write(&s.store, move |tx| {
        Box::pin(async move {
            let (a, b) = ("ab".repeat(32), "cd".repeat(32));
            tx.add_case_photos(&id, &[&a, &b]).await?;
            // Once each, however often.
            tx.add_case_photos(&id, &[&a]).await
        })
    })
    .await;
    let (r, o) = (reporter.clone(), other.clone());
    let seen = read(&s.store, move |tx| {
        let (r, o) = (r.clone(), o.clone());
        Box::pin(async move {
            Ok((
                tx.photo_visible_to(&"ab".repeat(32), &r).await?,
                tx.photo_visible_to(&"cd".repeat(32), &r).await?,
                tx.photo_visible_to(&"ab".repeat(32), &o).await?,
                tx.photo_visible_to(&"ef".repeat(32), &r).await?,
                tx.photo_visible_to("not a sha", &r).await?,
            ))
        })
    })
    .await;
    assert_eq!(seen, (true, true, false, false, false));
}

async fn placements_and_scopes_are_kept(s: &TestStore) {
    let (case, create) = created("reporter");
    stored(&s.store, &case, &["c-1"], &[create]).await;
    let id = case.id;
    write(&s.store, move |tx| {
        Box::pin(async move {
            tx.set_placement(&id, "g-1", 1).await?;
            tx.set_placement(&id, "g-2", 2).await?;
            tx.set_case_scopes(&id, &scopes(&["g-2", "t-1", "c-1"]))
                .await
        })
    })
    .await;
    let (placed, units, in_t1, in_g1) = read(&s.store, move |tx| {
        Box::pin(async move {
            Ok((
                tx.placement_of(&id).await?,
                tx.case_scopes(&id).await?,
                tx.case_in_unit(&id, "t-1").await?,
                tx.case_in_unit(&id, "g-1").await?,
            ))
        })
    })
    .await;
    assert_eq!(placed.as_deref(), Some("g-2"), "the last filing wins");
    assert_eq!(units, scopes(&["c-1", "g-2", "t-1"]));
    assert!(in_t1 && !in_g1);
}

async fn the_history_id_is_one_and_stays(s: &TestStore) {
    let first = read(&s.store, |tx| {
        Box::pin(async move { tx.history_id().await })
    })
    .await;
    assert_eq!(first.len(), 32);
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
    let again = read(&s.store, |tx| {
        Box::pin(async move { tx.history_id().await })
    })
    .await;
    assert_eq!(first, again);
}

// --- accounts, codes, devices ---

async fn accounts_codes_and_devices_round_trip(s: &TestStore) {
    let account = crate::accounts::new_id();
    let (device, newer) = (crate::accounts::new_id(), crate::accounts::new_id());
    let code = crate::accounts::sha256(b"code");
    let key = crate::accounts::sha256(b"terminal key");
    let (a, d, n, c, k) = (
        account.clone(),
        device.clone(),
        newer.clone(),
        code.clone(),
        key.clone(),
    );
    let (found, used) = write(&s.store, move |tx| {
        let (a, d, n, c, k) = (a.clone(), d.clone(), n.clone(), c.clone(), k.clone());
        Box::pin(async move {
            let grids = vec!["g-2".to_string(), "g-1".to_string()];
            tx.insert_account(
                &NewAccount {
                    id: &a,
                    name: "张三",
                    grid_ids: &grids,
                },
                1,
            )
            .await?;
            tx.insert_enrol_code(&c, &a, 1, 100).await?;
            let found = tx.lock_enrol_code(&c).await?;
            for (id, token) in [(&d, b"token-1"), (&n, b"token-2")] {
                tx.insert_device(&NewDevice {
                    id,
                    account_id: &a,
                    name: "终端",
                    token_hash: &crate::accounts::sha256(token),
                    enrolment_key_hash: Some(&k),
                    created_at: 2,
                })
                .await?;
            }
            tx.mark_code_used(&c, &d, Some(&k), 3).await?;
            let used = tx.lock_enrol_code(&c).await?;
            Ok((found, used))
        })
    })
    .await;
    let found = found.unwrap();
    assert_eq!(found.account_id, account);
    assert_eq!((found.expires_at, found.used_at), (100, None));
    let used = used.unwrap();
    assert_eq!(used.used_at, Some(3));
    assert_eq!(used.device_id.as_deref(), Some(device.as_str()));
    assert_eq!(used.enrolment_key_hash.as_deref(), Some(key.as_slice()));

    let (a, d, n, k) = (account.clone(), device.clone(), newer.clone(), key.clone());
    let (renewed, retired, revoked, revoked_again, renew_revoked) = write(&s.store, move |tx| {
        let (_a, d, n, k) = (a.clone(), d.clone(), n.clone(), k.clone());
        Box::pin(async move {
            let renewed = tx
                .renew_device_token(&d, &crate::accounts::sha256(b"token-3"), "新名字")
                .await?;
            tx.touch_device_push(&d, 9).await?;
            // The newer device of the same terminal retires the older.
            let retired = tx.retire_devices(&k, &n, 10).await?;
            let revoked = tx.revoke_device(&n, 11).await?;
            let revoked_again = tx.revoke_device(&n, 12).await?;
            let renew_revoked = tx
                .renew_device_token(&d, &crate::accounts::sha256(b"token-4"), "x")
                .await?;
            Ok((renewed, retired, revoked, revoked_again, renew_revoked))
        })
    })
    .await;
    assert!(renewed);
    assert_eq!(retired, 1);
    assert!(revoked && !revoked_again);
    assert!(!renew_revoked, "a retired device's token is not renewed");
    let (a, d, n) = (account.clone(), device.clone(), newer.clone());
    let (grids, name, old_token, by_token, same, listed, one, unknown) =
        read(&s.store, move |tx| {
            let (a, d, n) = (a.clone(), d.clone(), n.clone());
            Box::pin(async move {
                Ok((
                    tx.account_grids(&a).await?,
                    tx.account_name(&a).await?,
                    tx.device_by_token(&crate::accounts::sha256(b"token-1"))
                        .await?,
                    tx.device_by_token(&crate::accounts::sha256(b"token-3"))
                        .await?,
                    tx.same_terminal(&d, &n).await?,
                    tx.list_devices().await?,
                    tx.load_device(&d).await?,
                    tx.load_device("no-such-device").await?,
                ))
            })
        })
        .await;
    assert_eq!(grids, ["g-1", "g-2"], "sorted");
    assert_eq!(name.as_deref(), Some("张三"));
    assert!(old_token.is_none(), "a renewed token replaces the old");
    let by_token = by_token.unwrap();
    assert_eq!(by_token.device_id, device);
    assert_eq!(by_token.account_id, account);
    assert_eq!(by_token.revoked_at, Some(10));
    assert_eq!(by_token.replaced_by.as_deref(), Some(newer.as_str()));
    assert!(same);
    assert_eq!(listed.len(), 2);
    let one = one.unwrap();
    assert_eq!(one.device_name, "新名字");
    assert_eq!(one.last_push_at, Some(9));
    assert_eq!(one.account_name, "张三");
    assert!(unknown.is_none());
}

/// The same terminal may repeat its enrolment (its answer may have been
/// lost) for the repeat window after the first, and not a moment later.
async fn a_repeated_enrolment_works_within_the_window_and_not_after(s: &TestStore) {
    use gridcase_core::protocol::ENROL_REPEAT_WINDOW_MS;
    let account = crate::accounts::new_id();
    let a = account.clone();
    let code = write(&s.store, move |tx| {
        let a = a.clone();
        Box::pin(async move {
            let grids = vec!["g-1".to_string()];
            tx.insert_account(
                &NewAccount {
                    id: &a,
                    name: "张三",
                    grid_ids: &grids,
                },
                1,
            )
            .await?;
            Ok(crate::accounts::issue_code(tx, &a, 7 * DAY, now_millis())
                .await
                .unwrap()
                .code)
        })
    })
    .await;
    let enrol = |key: &'static str, at: i64| {
        let code = code.clone();
        s.store.write(move |tx| {
            let code = code.clone();
            Box::pin(async move {
                crate::accounts::enrol(tx, &code, "t", Some(key), at, &Default::default()).await
            })
        })
    };
    let t0 = now_millis();
    let first = enrol("key-1", t0).await.unwrap();
    assert_eq!(first.account_id, account);
    assert_eq!(first.grid_ids, ["g-1"]);
    // Another terminal never may; the same one may, up to the window's end.
    let other = enrol("key-2", t0 + 1).await.unwrap_err();
    assert_eq!(other.body.code, crate::error::codes::ENROL_CODE_USED);
    let again = enrol("key-1", t0 + ENROL_REPEAT_WINDOW_MS).await.unwrap();
    assert_eq!(again.device_id, first.device_id);
    assert_ne!(
        again.token, first.token,
        "a fresh token retires the lost one"
    );
    let late = enrol("key-1", t0 + ENROL_REPEAT_WINDOW_MS + 1)
        .await
        .unwrap_err();
    assert_eq!(late.body.code, crate::error::codes::ENROL_CODE_USED);
    let devices = read(&s.store, |tx| {
        Box::pin(async move { tx.list_devices().await })
    })
    .await;
    assert_eq!(devices.len(), 1);
}

// --- the grid map ---

const MAP: &str = r#"{ "type": "FeatureCollection", "features": [
  { "type": "Feature", "properties": { "id": "c-1", "name": "辽源市", "level": "city", "parent": null }, "geometry": null },
  { "type": "Feature", "properties": { "id": "g-1", "name": "一网格", "level": "grid", "parent": "c-1" },
    "geometry": { "type": "Polygon", "coordinates": [[[125.0, 42.8], [125.1, 42.8], [125.1, 42.9], [125.0, 42.9], [125.0, 42.8]]] } }
]}"#;

async fn a_map_import_grows_the_version_and_every_instance_sees_it(s: &TestStore) {
    let other = s.another_instance().await;
    let cache = std::sync::Arc::new(crate::grids::GridCache::default());
    let current = |store: Store| {
        let cache = cache.clone();
        async move {
            store
                .read(move |tx| {
                    let cache = cache.clone();
                    Box::pin(async move { cache.current(tx).await })
                })
                .await
                .unwrap()
        }
    };
    assert!(current(s.store.clone()).await.is_empty());
    let none = read(&s.store, |tx| {
        Box::pin(async move { tx.grid_map_version().await })
    })
    .await;
    assert_eq!(none, None);
    let v1 = write(&s.store, |tx| {
        Box::pin(async move { tx.store_grid_map(MAP, 2, 1).await })
    })
    .await;
    assert_eq!(v1, 1);
    assert_eq!(current(s.store.clone()).await.len(), 2);
    // Another instance imports a map of one unit more: this one's cache,
    // keyed by the version in the database, follows.
    let bigger = MAP.replace(
        "\n]}",
        r#",
  { "type": "Feature", "properties": { "id": "g-2", "name": "二网格", "level": "grid", "parent": "c-1" },
    "geometry": { "type": "Polygon", "coordinates": [[[125.1, 42.8], [125.2, 42.8], [125.2, 42.9], [125.1, 42.9], [125.1, 42.8]]] } }
]}"#,
    );
    let v2 = write(&other, move |tx| {
        let bigger = bigger.clone();
        Box::pin(async move { tx.store_grid_map(&bigger, 3, 2).await })
    })
    .await;
    assert_eq!(v2, 2);
    assert_eq!(current(s.store.clone()).await.len(), 3);
    let (version, loaded) = read(&s.store, |tx| {
        Box::pin(async move { Ok((tx.grid_map_version().await?, tx.load_grid_map().await?)) })
    })
    .await;
    assert_eq!(version, Some(2));
    assert!(loaded.unwrap().1.contains("二网格"));
}

// --- names ---

async fn names_come_from_accounts_and_departments(s: &TestStore) {
    let (account, _) = account_with_device(&s.store, &["g-1"]).await;
    let department = Department {
        id: crate::accounts::new_id(),
        name: "市政管理处".into(),
        unit_id: None,
    };
    let d = department.clone();
    write(&s.store, move |tx| {
        let d = d.clone();
        Box::pin(async move { tx.insert_department(&d, 1).await })
    })
    .await;
    let (a, dep) = (account.clone(), department.id.clone());
    let names = read(&s.store, move |tx| {
        let (a, dep) = (a.clone(), dep.clone());
        Box::pin(async move {
            let by_department = format!("{}{dep}", crate::names::DEPARTMENT_ACTOR_PREFIX);
            let ids = [
                a.as_str(),
                "server",
                by_department.as_str(),
                "open311:0190d5a0-0000-7000-8000-000000000000",
            ];
            Ok((
                crate::names::actor_names(tx, &ids).await?,
                tx.staff_names(&ids).await?,
                tx.open311_key_names(&["not-a-uuid"]).await?,
            ))
        })
    })
    .await;
    let (actors, staff, keys) = names;
    assert_eq!(actors.get(&account).map(String::as_str), Some("张三"));
    assert_eq!(
        actors
            .get(&format!(
                "{}{}",
                crate::names::DEPARTMENT_ACTOR_PREFIX,
                department.id
            ))
            .map(String::as_str),
        Some("市政管理处")
    );
    assert!(!actors.contains_key("server"), "the server has no name");
    assert_eq!(actors.len(), 2);
    assert!(staff.is_empty() && keys.is_empty());
}

// --- departments and the desk ---

async fn departments_are_found_by_id_and_name_and_serve_their_area(s: &TestStore) {
    let (case, create) = created("reporter");
    stored(&s.store, &case, &["g-1", "t-1", "c-1"], &[create]).await;
    let everywhere = Department {
        id: crate::accounts::new_id(),
        name: "乙 全市".into(),
        unit_id: None,
    };
    let township = Department {
        id: crate::accounts::new_id(),
        name: "甲 街道".into(),
        unit_id: Some("t-1".into()),
    };
    let elsewhere = Department {
        id: crate::accounts::new_id(),
        name: "丙 别处".into(),
        unit_id: Some("t-2".into()),
    };
    let all = vec![everywhere.clone(), township.clone(), elsewhere.clone()];
    write(&s.store, move |tx| {
        let all = all.clone();
        Box::pin(async move {
            for d in &all {
                tx.insert_department(d, 1).await?;
            }
            Ok(())
        })
    })
    .await;
    let taken = township.clone();
    let twice = s
        .store
        .write(move |tx| {
            let d = Department {
                id: crate::accounts::new_id(),
                ..taken.clone()
            };
            Box::pin(async move { tx.insert_department(&d, 2).await })
        })
        .await;
    assert!(twice.is_err(), "names are unique");
    let (id, name) = (township.id.clone(), township.name.clone());
    let case_id = case.id;
    let (listed, serving, by_id, by_name, neither) = read(&s.store, move |tx| {
        let (id, name) = (id.clone(), name.clone());
        Box::pin(async move {
            Ok((
                tx.list_departments().await?,
                tx.departments_serving(&case_id).await?,
                tx.load_department(&id).await?,
                tx.department_named(&name).await?,
                tx.load_department(&name).await?,
            ))
        })
    })
    .await;
    let names = |ds: &[Department]| ds.iter().map(|d| d.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&listed), ["丙 别处", "乙 全市", "甲 街道"], "by name");
    assert_eq!(names(&serving), ["乙 全市", "甲 街道"]);
    assert_eq!(by_id.as_ref(), Some(&township));
    assert_eq!(by_name.as_ref(), Some(&township));
    assert!(neither.is_none(), "a name is not an id");
}

async fn the_desk_follows_the_centres_steps(s: &TestStore) {
    let (case, create) = created("reporter");
    stored(&s.store, &case, &["g-1"], &[create]).await;
    let department = Department {
        id: crate::accounts::new_id(),
        name: "市政管理处".into(),
        unit_id: None,
    };
    let (id, dep) = (case.id, department.clone());
    let now = now_millis();
    let steps = write(&s.store, move |tx| {
        let dep = dep.clone();
        Box::pin(async move {
            tx.insert_department(&dep, 1).await?;
            let new = NewDesk {
                case_id: &id,
                queue_unit_id: Some("g-1"),
                category: "collapsed_manhole",
                title: "下水井塌陷",
                deadline: None,
                received_at: 5,
            };
            tx.insert_desk(&new).await?;
            // Received once: a second changes nothing.
            tx.insert_desk(&NewDesk {
                queue_unit_id: Some("c-1"),
                received_at: 6,
                ..new
            })
            .await?;
            let received = tx.load_desk(&id).await?;
            // Dispatched by name (as ops written before ids name it), due in
            // the past: a chase now counts as overdue.
            tx.desk_dispatched(&id, &dep.name, Some(now - 1), now - 10)
                .await?;
            tx.desk_chased(&id, now).await?;
            let by_name = tx.load_desk(&id).await?;
            // Dispatched again by id with a deadline ahead: the count starts
            // over, and a chase before the deadline does not count.
            tx.desk_dispatched(&id, &dep.id, Some(now + DAY), now)
                .await?;
            tx.desk_chased(&id, now).await?;
            let by_id = tx.load_desk(&id).await?;
            tx.set_desk_reopen_reason(&id, "群众评价：不满意").await?;
            tx.set_desk_queue(&id, Some("t-1")).await?;
            let queued = tx.load_desk(&id).await?;
            tx.desk_escalated(&id, Some("c-1")).await?;
            let escalated = tx.load_desk(&id).await?;
            Ok([received, by_name, by_id, queued, escalated])
        })
    })
    .await;
    let [received, by_name, by_id, queued, escalated] = steps.map(Option::unwrap);
    assert_eq!(received.queue_unit_id.as_deref(), Some("g-1"));
    assert_eq!(received.received_at, 5);
    assert_eq!(
        by_name.department_id.as_deref(),
        Some(department.id.as_str())
    );
    assert_eq!(by_name.overdue_chases, 1);
    assert_eq!(by_id.overdue_chases, 0);
    assert_eq!(queued.reopen_reason.as_deref(), Some("群众评价：不满意"));
    assert_eq!(queued.queue_unit_id.as_deref(), Some("t-1"));
    assert_eq!(
        queued.department_id.as_deref(),
        Some(department.id.as_str())
    );
    assert_eq!(escalated.queue_unit_id.as_deref(), Some("c-1"));
    assert_eq!(escalated.department_id, None, "the department lets go");
    let (unread, staffed, unit) = read(&s.store, |tx| {
        Box::pin(async move {
            Ok((
                tx.unread_desks().await?,
                tx.has_dispatcher("c-1").await?,
                tx.staff_unit(&crate::accounts::new_id()).await?,
            ))
        })
    })
    .await;
    assert_eq!(unread.len(), 1, "nobody reads c-1's queue: {unread:?}");
    assert_eq!(unread[0].case_id, case.id);
    assert!(!staffed);
    assert!(unit.is_none());
}

// --- staff, sessions, lockouts ---

fn dispatcher_row(login: &str) -> StaffRow {
    StaffRow {
        id: crate::accounts::new_id(),
        login: login.to_string(),
        name: "王调度".to_string(),
        role: "dispatcher".to_string(),
        unit_id: Some("t-1".to_string()),
        department_id: None,
    }
}

async fn with_staff(store: &Store, row: &StaffRow) {
    let row = row.clone();
    write(store, move |tx| {
        let row = row.clone();
        Box::pin(async move { tx.insert_staff(&row, "phc-1", 1).await })
    })
    .await;
}

async fn staff_sessions_and_lockouts_round_trip(s: &TestStore) {
    let row = dispatcher_row("wang");
    with_staff(&s.store, &row).await;
    let (id, login) = (row.id.clone(), row.login.clone());
    let (by_id, by_login, all, creds) = read(&s.store, move |tx| {
        let (id, login) = (id.clone(), login.clone());
        Box::pin(async move {
            Ok((
                tx.load_staff(&id).await?,
                tx.staff_by_login(&login).await?,
                tx.list_staff().await?,
                tx.staff_credentials(&login).await?,
            ))
        })
    })
    .await;
    assert_eq!(by_id.as_ref(), Some(&row));
    assert_eq!(by_login.as_ref(), Some(&row));
    assert_eq!(all, std::slice::from_ref(&row));
    let creds = creds.unwrap();
    assert_eq!(
        (creds.password_hash.as_str(), creds.locked_until),
        ("phc-1", None)
    );
    let unknown = read(&s.store, |tx| {
        Box::pin(async move {
            Ok((
                tx.load_staff("not-an-id").await?,
                tx.staff_by_login("nobody").await?,
                tx.staff_session(b"no such token").await?,
            ))
        })
    })
    .await;
    assert_eq!(unknown, (None, None, None));

    // Two wrong passwords of three: counted, not locked; the third locks.
    let id = row.id.clone();
    let locks = |store: Store| {
        let id = id.clone();
        async move {
            write(&store, move |tx| {
                let id = id.clone();
                Box::pin(async move { tx.count_wrong_password(&id, 3, 5_000).await })
            })
            .await
        }
    };
    assert!(!locks(s.store.clone()).await);
    assert!(!locks(s.store.clone()).await);
    assert!(
        locks(s.store.clone()).await,
        "the third wrong password locks"
    );
    let login = row.login.clone();
    let creds = read(&s.store, move |tx| {
        let login = login.clone();
        Box::pin(async move { tx.staff_credentials(&login).await })
    })
    .await
    .unwrap();
    assert_eq!(creds.locked_until, Some(5_000));
    assert!(!locks(s.store.clone()).await, "the count started again");

    // A login: the lockout and the count are forgotten, the session found.
    let session = SessionRow {
        staff_id: row.id.clone(),
        csrf_token: "csrf".into(),
        expires_at: 10_000,
    };
    let old = SessionRow {
        expires_at: 50,
        ..session.clone()
    };
    let (sess, o) = (session.clone(), old.clone());
    write(&s.store, move |tx| {
        let (sess, o) = (sess.clone(), o.clone());
        Box::pin(async move {
            tx.start_session(b"old", &o, 10).await?;
            tx.start_session(b"token", &sess, 100).await
        })
    })
    .await;
    let login = row.login.clone();
    let (found, gone, creds) = read(&s.store, move |tx| {
        let login = login.clone();
        Box::pin(async move {
            Ok((
                tx.staff_session(b"token").await?,
                tx.staff_session(b"old").await?,
                tx.staff_credentials(&login).await?,
            ))
        })
    })
    .await;
    assert_eq!(found, Some(session.clone()));
    assert_eq!(gone, None, "an ended session is dropped at the next login");
    assert_eq!(creds.unwrap().locked_until, None);
    assert!(!locks(s.store.clone()).await);
    assert!(!locks(s.store.clone()).await, "the login reset the count");

    // A new password ends every session; logging out ends one.
    let id = row.id.clone();
    write(&s.store, move |tx| {
        let id = id.clone();
        Box::pin(async move {
            tx.set_staff_unit(&id, "c-1").await?;
            tx.set_staff_password(&id, "phc-2").await
        })
    })
    .await;
    let (id, login) = (row.id.clone(), row.login.clone());
    let (found, creds, moved) = read(&s.store, move |tx| {
        let (id, login) = (id.clone(), login.clone());
        Box::pin(async move {
            Ok((
                tx.staff_session(b"token").await?,
                tx.staff_credentials(&login).await?,
                tx.load_staff(&id).await?,
            ))
        })
    })
    .await;
    assert_eq!(found, None);
    assert_eq!(creds.unwrap().password_hash, "phc-2");
    assert_eq!(moved.unwrap().unit_id.as_deref(), Some("c-1"));
    let sess = session.clone();
    write(&s.store, move |tx| {
        let sess = sess.clone();
        Box::pin(async move {
            tx.start_session(b"again", &sess, 100).await?;
            tx.end_session(b"again").await
        })
    })
    .await;
    let found = read(&s.store, |tx| {
        Box::pin(async move { tx.staff_session(b"again").await })
    })
    .await;
    assert_eq!(found, None);
    let missing = s
        .store
        .write(|tx| {
            Box::pin(async move { tx.set_staff_password(&crate::accounts::new_id(), "x").await })
        })
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

/// Instances counting one member's wrong passwords at once lose no count:
/// of as many tries as the limit, exactly one locks the login.
async fn wrong_passwords_counted_on_two_instances_at_once_lock_once(s: &TestStore) {
    let row = dispatcher_row("li");
    with_staff(&s.store, &row).await;
    let other = s.another_instance().await;
    let mut tries = Vec::new();
    for i in 0..12 {
        let store = if i % 2 == 0 {
            s.store.clone()
        } else {
            other.clone()
        };
        let id = row.id.clone();
        tries.push(tokio::spawn(async move {
            write(&store, move |tx| {
                let id = id.clone();
                Box::pin(async move { tx.count_wrong_password(&id, 12, 9_000).await })
            })
            .await
        }));
    }
    let mut locked = 0;
    for t in tries {
        locked += usize::from(t.await.unwrap());
    }
    assert_eq!(locked, 1, "twelve tries at a limit of twelve lock once");
}

/// Two instances creating the same login at once: the unique login decides,
/// the loser runs again and sees it taken.
async fn two_instances_creating_one_login_store_it_once(s: &TestStore) {
    let other = s.another_instance().await;
    let create = |store: Store| {
        tokio::spawn(async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        if tx.staff_by_login("zhao").await?.is_some() {
                            return Ok::<_, StoreError>(false);
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        tx.insert_staff(&dispatcher_row("zhao"), "phc", 1).await?;
                        Ok(true)
                    })
                })
                .await
        })
    };
    let (a, b) = (create(s.store.clone()), create(other));
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    assert!(a ^ b, "exactly one of them created it: {a} {b}");
    let all = read(&s.store, |tx| {
        Box::pin(async move { tx.list_staff().await })
    })
    .await;
    assert_eq!(all.len(), 1);
}

/// A unit sees the cases seen from it, a department those dispatched to
/// it; neither sees a case that has not reached the centre (no desk row).
async fn staff_reach_cases_at_the_centre_by_unit_or_department(s: &TestStore) {
    let (case, create) = created("reporter");
    stored(&s.store, &case, &["g-1", "t-1"], &[create]).await;
    let (early, create) = created("reporter");
    stored(&s.store, &early, &["g-1"], &[create]).await;
    let department = Department {
        id: crate::accounts::new_id(),
        name: "市政管理处".into(),
        unit_id: None,
    };
    let (id, early_id, dep) = (case.id, early.id, department.clone());
    let seen = write(&s.store, move |tx| {
        let dep = dep.clone();
        Box::pin(async move {
            tx.insert_department(&dep, 1).await?;
            tx.insert_desk(&NewDesk {
                case_id: &id,
                queue_unit_id: Some("g-1"),
                category: "collapsed_manhole",
                title: "下水井塌陷",
                deadline: None,
                received_at: 5,
            })
            .await?;
            let before = tx.case_within(&id, Reach::Department(&dep.id)).await?;
            tx.desk_dispatched(&id, &dep.id, None, 6).await?;
            Ok((
                tx.case_within(&id, Reach::Unit("t-1")).await?,
                tx.case_within(&id, Reach::Unit("t-2")).await?,
                before,
                tx.case_within(&id, Reach::Department(&dep.id)).await?,
                tx.case_within(&id, Reach::Department("not-a-department"))
                    .await?,
                tx.case_within(&early_id, Reach::Unit("g-1")).await?,
            ))
        })
    })
    .await;
    assert_eq!(seen, (true, false, false, true, false, false));
}

// --- rating links ---

/// A link is found by its token's hash (by a read, and locked by a write),
/// and once used says so; another hash finds nothing. While one instance
/// holds the link locked, another's lock waits for it and then sees it used.
async fn a_rating_link_is_found_by_its_hash_and_used_once(s: &TestStore) {
    let (account, device) = account_with_device(&s.store, &["g-1"]).await;
    let (case, create) = created(&account);
    stored(&s.store, &case, &["g-1"], &[create]).await;
    let id = case.id;
    write(&s.store, move |tx| {
        let device = device.clone();
        Box::pin(async move {
            tx.insert_rating_link(b"hash-1", &id, &device, 10, 1_000)
                .await
        })
    })
    .await;
    let (found, none) = read(&s.store, |tx| {
        Box::pin(async move {
            Ok((
                tx.rating_link(b"hash-1").await?,
                tx.rating_link(b"hash-2").await?,
            ))
        })
    })
    .await;
    let open = RatingLinkRow {
        case_id: id,
        expires_at: 1_000,
        used_at: None,
    };
    assert_eq!(found, Some(open.clone()));
    assert_eq!(none, None);

    let other = s.another_instance().await;
    let (locked_tx, locked) = tokio::sync::oneshot::channel::<()>();
    let mut once = Some(locked_tx);
    let first = tokio::spawn({
        let store = s.store.clone();
        async move {
            store
                .write(move |tx| {
                    let signal = once.take();
                    Box::pin(async move {
                        let row = tx.lock_rating_link(b"hash-1").await?;
                        if let Some(signal) = signal {
                            let _ = signal.send(());
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        tx.use_rating_link(b"hash-1", 20).await?;
                        Ok::<_, StoreError>(row)
                    })
                })
                .await
        }
    });
    locked.await.unwrap();
    let second = other
        .write(|tx| Box::pin(async move { tx.lock_rating_link(b"hash-1").await }))
        .await
        .unwrap();
    assert_eq!(first.await.unwrap().unwrap(), Some(open.clone()));
    assert_eq!(
        second,
        Some(RatingLinkRow {
            used_at: Some(20),
            ..open
        }),
        "the second instance waited for the first and saw the link used"
    );
}

// --- several writers ---

/// The commit horizon: a writer that has taken its numbers holds the next
/// writer's numbering until it commits, and a pull meanwhile serves nothing
/// past the last committed number. A cursor therefore never skips an op that
/// commits late with a lower number.
async fn a_pull_never_serves_past_a_writer_still_open(s: &TestStore) {
    use tokio::sync::oneshot;
    let (account, _) = account_with_device(&s.store, &["g-1"]).await;
    let (case, create) = created(&account);
    let (case, submit) = then(&case, OpKind::Submit);
    stored(&s.store, &case, &["g-1"], &[create, submit]).await;
    let before = horizon(&s.store).await;
    let x = op(case.id, &account, OpKind::Chase { note: "x".into() });
    let y = op(case.id, &account, OpKind::Chase { note: "y".into() });

    // A lower-numbered writer, held open after numbering.
    let (numbered_1, wait_numbered_1) = oneshot::channel::<u64>();
    let (release_1, released_1) = oneshot::channel::<()>();
    let first = {
        let store = s.store.clone();
        let mut once = Some((numbered_1, released_1));
        let x = x.clone();
        tokio::spawn(async move {
            store
                .write(move |tx| {
                    let x = x.clone();
                    let hold = once.take();
                    Box::pin(async move {
                        let seq = tx.append_op(&x, None).await?;
                        let n = tx.number().await?.of(seq)?;
                        if let Some((numbered, released)) = hold {
                            let _ = numbered.send(n);
                            let _ = released.await;
                        }
                        Ok::<_, StoreError>(n)
                    })
                })
                .await
        })
    };
    let n1 = tokio::time::timeout(Duration::from_secs(10), wait_numbered_1)
        .await
        .unwrap()
        .unwrap();

    // A higher one, trying to number and commit meanwhile.
    let (numbered_2, mut wait_numbered_2) = oneshot::channel::<u64>();
    let (release_2, released_2) = oneshot::channel::<()>();
    let second = {
        let store = s.store.clone();
        let mut once = Some((numbered_2, released_2));
        let y = y.clone();
        tokio::spawn(async move {
            store
                .write(move |tx| {
                    let y = y.clone();
                    let hold = once.take();
                    Box::pin(async move {
                        let seq = tx.append_op(&y, None).await?;
                        let n = tx.number().await?.of(seq)?;
                        if let Some((numbered, released)) = hold {
                            let _ = numbered.send(n);
                            let _ = released.await;
                        }
                        Ok::<_, StoreError>(n)
                    })
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        wait_numbered_2.try_recv().is_err(),
        "the second writer must wait for the first to commit before it numbers"
    );
    let (seen, cursor) = pulled(&s.store, &account, "", before).await;
    assert!(seen.is_empty(), "nothing past the open writer: {seen:?}");
    assert_eq!(cursor, before);

    let _ = release_1.send(());
    assert_eq!(first.await.unwrap().unwrap(), n1);
    let n2 = tokio::time::timeout(Duration::from_secs(10), wait_numbered_2)
        .await
        .unwrap()
        .unwrap();
    assert!(n1 < n2, "numbers follow commit order: {n1} then {n2}");
    let (seen, cursor) = pulled(&s.store, &account, "", before).await;
    assert_eq!(
        seen,
        [(n1, x.id)],
        "the first writer's op, not yet the second's"
    );
    assert_eq!(cursor, n1);

    let _ = release_2.send(());
    assert_eq!(second.await.unwrap().unwrap(), n2);
    let (rest, end) = pulled(&s.store, &account, "", cursor).await;
    assert_eq!(
        rest,
        [(n2, y.id)],
        "the pull from the cursor misses nothing"
    );
    assert_eq!(end, n2);
}

/// Two instances deciding the same op at once: the database's constraints
/// decide, the loser runs again and finds the winner's op.
async fn two_instances_racing_on_one_op_id_record_it_once(s: &TestStore) {
    let (case, create) = created("reporter");
    stored(&s.store, &case, &["g-1"], &[create]).await;
    let (_, submit) = then(&case, OpKind::Submit);
    let other = s.another_instance().await;
    let record = |store: Store| {
        let submit = submit.clone();
        tokio::spawn(async move {
            store
                .write(move |tx| {
                    let submit = submit.clone();
                    Box::pin(async move {
                        if tx.op_exists(&submit.id).await? {
                            return Ok::<_, StoreError>(false);
                        }
                        // Both look before either writes.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        tx.append_op(&submit, None).await?;
                        Ok(true)
                    })
                })
                .await
        })
    };
    // SQLite's one writer never lets them overlap: the sleep above is the
    // only await a SQLite closure may see, and it completes in place.
    let (a, b) = (record(s.store.clone()), record(other));
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    assert!(a ^ b, "exactly one of them recorded it: {a} {b}");
    let id = case.id;
    let ops = read(&s.store, move |tx| {
        Box::pin(async move { tx.case_ops(&id).await })
    })
    .await;
    assert_eq!(ops.len(), 2);
}

/// What the PostgreSQL schema adds to SQLite's, table by table: the numbering
/// (`ledger_clock`, `pending`), a key for departures, the migration record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_schema_holds_every_table_and_column_of_sqlites() {
    let lite = rusqlite::Connection::open_in_memory().unwrap();
    let mut lite = lite;
    super::sqlite::migrations::run(&mut lite).unwrap();
    let mut sqlite_columns = BTreeSet::new();
    {
        let mut tables = lite
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        let names: Vec<String> = tables
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for t in names {
            let mut cols = lite
                .prepare(&format!("SELECT name FROM pragma_table_xinfo('{t}')"))
                .unwrap();
            for c in cols.query_map([], |r| r.get::<_, String>(0)).unwrap() {
                sqlite_columns.insert(format!("{t}.{}", c.unwrap()));
            }
        }
    }
    let pg = postgres_store("schema_of_sqlite").await;
    let crate::store::Backend::Postgres(p) = pg.store.backend() else {
        unreachable!()
    };
    let client = p.client().await.unwrap();
    let rows = client
        .query(
            "SELECT table_name || '.' || column_name FROM information_schema.columns
             WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap();
    let pg_columns: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
    let missing: Vec<&String> = sqlite_columns.difference(&pg_columns).collect();
    assert!(missing.is_empty(), "PostgreSQL lacks {missing:?}");
    let extra: BTreeSet<&str> = pg_columns
        .difference(&sqlite_columns)
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = [
        "ledger_clock.id",
        "ledger_clock.last",
        "ops.pending",
        "case_departures.id",
        "case_departures.pending",
        "push_outcomes.pending",
        "schema_migrations.version",
        "schema_migrations.name",
        "schema_migrations.applied_at",
    ]
    .into_iter()
    .collect();
    assert_eq!(extra, expected);
}
