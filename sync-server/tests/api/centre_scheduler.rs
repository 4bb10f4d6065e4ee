//! The deadline scheduler: near and overdue chases, once each, pulled by the
//! grid leader's terminal; "near" as the last quarter of the time given
//! (at most the configured hours); escalation after enough overdue chases.

use std::time::Duration;

use gridcase_core::op::{OpKind, Role};
use gridcase_core::time::{now_millis, HOUR, MINUTE};
use gridcase_server::centre::CentreConfig;
use serde_json::json;

use crate::centre_support::Centre;
use crate::common::in_g1;

fn chases(pulled: &[gridcase_core::protocol::PulledOp]) -> Vec<String> {
    pulled
        .iter()
        .filter_map(|p| match &p.op.kind {
            OpKind::Chase { note } => {
                assert_eq!(p.op.actor.role, Role::System);
                Some(note.clone())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn near_and_overdue_are_each_chased_once_and_reach_the_terminal() {
    let c = Centre::start().await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    let now = now_millis();
    let deadline = now + 30 * HOUR;
    c.ok(
        &k1,
        case,
        "dispatch",
        json!({"department_id": c.municipal, "deadline": deadline}),
    )
    .await;
    let (_, cursor) = c.server.pull_all(&leader, 0).await;
    let config = CentreConfig {
        escalate_after_chases: 0,
        ..CentreConfig::default()
    };

    assert_eq!(
        c.run_deadlines(&config, now),
        (0, 0, 0),
        "30 h away is not near"
    );
    assert_eq!(
        c.run_deadlines(&config, deadline - 23 * HOUR),
        (0, 0, 0),
        "near is the last quarter of the 30 h given: 7.5 h"
    );
    assert_eq!(c.run_deadlines(&config, deadline - 7 * HOUR), (1, 0, 0));
    assert_eq!(
        c.run_deadlines(&config, deadline - 6 * HOUR),
        (0, 0, 0),
        "once"
    );
    assert_eq!(c.run_deadlines(&config, deadline - MINUTE), (0, 0, 0));
    assert_eq!(c.run_deadlines(&config, deadline + MINUTE), (0, 1, 0));
    assert_eq!(
        c.run_deadlines(&config, deadline + 5 * HOUR),
        (0, 0, 0),
        "once"
    );

    let (pulled, _) = c.server.pull_all(&leader, cursor).await;
    assert_eq!(
        chases(&pulled),
        vec!["临近办结时限，请抓紧办理", "已超过办结时限，请尽快办结"]
    );
    assert_eq!(c.stored(case).chase_count, 2);
    let (_, view) = c.case(&k1, case).await;
    assert_eq!(
        view["desk"]["overdue"], false,
        "the real clock is before the deadline"
    );
    assert_eq!(
        c.queue_ids(&k1, "overdue=true").await.len(),
        0,
        "overdue is judged by the real clock"
    );

    // A new deadline arms both chases again.
    let new_deadline = deadline + 48 * HOUR;
    c.ok(
        &k1,
        case,
        "dispatch",
        json!({"department_id": c.housing, "deadline": new_deadline}),
    )
    .await;
    assert_eq!(c.run_deadlines(&config, new_deadline - HOUR), (1, 0, 0));
    // A case found already past its deadline is chased as overdue only.
    let newer = new_deadline + 10 * HOUR;
    c.ok(
        &k1,
        case,
        "dispatch",
        json!({"department_id": c.housing, "deadline": newer}),
    )
    .await;
    assert_eq!(c.run_deadlines(&config, newer + HOUR), (0, 1, 0));
    assert_eq!(c.run_deadlines(&config, newer + 2 * HOUR), (0, 0, 0));
}

#[tokio::test]
async fn resolved_and_closed_cases_are_not_chased() {
    let c = Centre::start().await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let municipal = c.handler("shizheng", &c.municipal).await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    c.ok(&k1, case, "dispatch", json!({"department_id": c.municipal}))
        .await;
    c.ok(&municipal, case, "resolve", json!({})).await;
    let far = now_millis() + 100 * HOUR;
    assert_eq!(c.run_deadlines(&CentreConfig::default(), far), (0, 0, 0));
}

#[tokio::test]
async fn a_case_chased_often_enough_goes_to_the_level_above() {
    let c = Centre::start().await;
    let t1 = c.dispatcher("t1", "t-1").await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    let deadline = now_millis() + 2 * HOUR;
    c.ok(
        &t1,
        case,
        "dispatch",
        json!({"department_id": c.municipal, "deadline": deadline}),
    )
    .await;
    let config = CentreConfig {
        escalate_after_chases: 1,
        ..CentreConfig::default()
    };
    // Near its deadline: chased, but a reminder is not a failure to act.
    assert_eq!(c.run_deadlines(&config, deadline - 20 * MINUTE), (1, 0, 0));
    assert_eq!(c.stored(case).status.as_str(), "dispatched");
    assert_eq!(c.run_deadlines(&config, deadline + HOUR), (0, 1, 1));
    let (_, view) = c.case(&k1, case).await;
    assert_eq!(view["case"]["status"], "escalated");
    assert_eq!(view["desk"]["queue_unit_id"], "k-1");
    let last = view["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "escalate");
    assert_eq!(last["actor"]["role"], "system");
    assert_eq!(c.queue_ids(&k1, "mine=true").await, vec![case.to_string()]);
    assert!(c.queue_ids(&t1, "mine=true").await.is_empty());

    // Chases before the deadline never escalate, however many (the city has
    // a dispatcher to take it, and the default is three).
    c.dispatcher("city", "c").await;
    c.ok(&k1, case, "dispatch", json!({"department_id": c.municipal}))
        .await;
    for note in ["请加快", "再催", "三催"] {
        let out = c.ok(&k1, case, "chase", json!({ "note": note })).await;
        assert_eq!(out["escalated"], false, "{note}: before the deadline");
    }
    assert_eq!(c.stored(case).status.as_str(), "dispatched");
    assert_eq!(c.stored(case).chase_count, 3);
}

#[tokio::test]
async fn a_days_deadline_is_not_chased_a_minute_after_dispatch() {
    let c = Centre::start().await;
    let t1 = c.dispatcher("t1", "t-1").await;
    c.dispatcher("k1", "k-1").await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    let now = now_millis();
    let deadline = now + 24 * HOUR;
    c.ok(
        &t1,
        case,
        "dispatch",
        json!({"department_id": c.municipal, "deadline": deadline}),
    )
    .await;
    // The README's own example: 24 h given, the default 24 h threshold.
    let config = CentreConfig {
        escalate_after_chases: 1,
        ..CentreConfig::default()
    };
    assert_eq!(
        c.run_deadlines(&config, now + MINUTE),
        (0, 0, 0),
        "a minute after dispatch is not near"
    );
    assert_eq!(c.run_deadlines(&config, now + 17 * HOUR), (0, 0, 0));
    assert_eq!(
        c.run_deadlines(&config, now + 18 * HOUR + MINUTE),
        (1, 0, 0),
        "its last quarter is near"
    );
    assert_eq!(
        c.stored(case).status.as_str(),
        "dispatched",
        "not escalated"
    );
    assert_eq!(c.run_deadlines(&config, deadline + MINUTE), (0, 1, 1));
    assert_eq!(c.stored(case).status.as_str(), "escalated");

    // A week's deadline is near in its last day, not its last quarter.
    let other = c.report(&leader, in_g1()).await;
    let week = now + 7 * 24 * HOUR;
    c.ok(
        &t1,
        other,
        "dispatch",
        json!({"department_id": c.municipal, "deadline": week}),
    )
    .await;
    assert_eq!(c.run_deadlines(&config, week - 25 * HOUR), (0, 0, 0));
    assert_eq!(c.run_deadlines(&config, week - 23 * HOUR), (1, 0, 0));
}

#[tokio::test]
async fn the_running_server_chases_on_its_own() {
    let c = Centre::start_with(|cfg| {
        cfg.scheduler_period = Some(Duration::from_millis(50));
    })
    .await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    // A deadline a moment ahead: the running scheduler chases it once past.
    c.ok(
        &k1,
        case,
        "dispatch",
        json!({"department_id": c.municipal, "deadline": now_millis() + 1_500}),
    )
    .await;
    let overdue = |pulled: &[gridcase_core::protocol::PulledOp]| {
        chases(pulled)
            .iter()
            .filter(|n| n.contains("已超过"))
            .count()
    };
    let mut seen = 0;
    for _ in 0..200 {
        let (pulled, _) = c.server.pull_all(&leader, 0).await;
        seen = overdue(&pulled);
        if seen > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, 1, "chased once past its deadline");
    let before = c.stored(case).chase_count;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(c.stored(case).chase_count, before, "not again");
    let (pulled, _) = c.server.pull_all(&leader, 0).await;
    assert_eq!(overdue(&pulled), 1);
    assert!(
        chases(&pulled).len() <= 2,
        "near at most once, overdue once"
    );
}

#[tokio::test]
async fn a_case_waiting_for_dispatch_is_not_chased_its_queue_shows_the_proposed_deadline() {
    let c = Centre::start().await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    let proposed = c.stored(case).proposed_deadline.unwrap();
    let config = CentreConfig::default();
    assert_eq!(c.run_deadlines(&config, proposed - HOUR), (0, 0, 0));
    assert_eq!(c.run_deadlines(&config, proposed + HOUR), (0, 0, 0));
    assert_eq!(c.stored(case).chase_count, 0);
    let (_, page) = c.get(&k1, "/v1/centre/cases").await;
    assert_eq!(page["cases"][0]["deadline"], proposed);
}
