//! Staff login, sessions and CSRF; who sees which case and who may do what.

use std::io::Write;
use std::process::{Command, Stdio};

use gridcase_server::centre::staff::StaffRole;
use reqwest::StatusCode;
use serde_json::json;

use crate::centre_support::{dispatch_body, in_g3, session_cookie, Centre, PASSWORD};
use crate::common::{in_g1, in_g2};

#[tokio::test]
async fn login_me_logout_and_wrong_passwords() {
    let c = Centre::start().await;
    c.create_staff("wang", StaffRole::Dispatcher, Some("k-1"), None);

    for (login, password) in [("wang", "wrong password!"), ("nobody", PASSWORD)] {
        let resp = c.login(login, password).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(session_cookie(&resp).is_none());
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "login_failed");
        // The same words whether the login exists or not, and no names.
        assert_eq!(body["message"], "wrong login or password");
    }

    let resp = c.login(" WANG ", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(
        !set_cookie.contains("Secure"),
        "plain http in tests: {set_cookie}"
    );
    let me = c.logged_in("wang").await;

    let (status, body) = c.get(&me, "/v1/centre/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["staff"]["role"], "dispatcher");
    assert_eq!(body["staff"]["unit_id"], "k-1");
    assert_eq!(body["csrf_token"], me.csrf.as_str());
    assert!(body["staff"].get("password_hash").is_none());

    // No cookie, a made-up cookie.
    let (status, body) = c
        .server
        .send(c.server.http.get(c.server.url("/v1/centre/me")))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let mut forged = me.clone();
    forged.cookie = "gridcase_session=00ff".into();
    assert_eq!(
        c.get(&forged, "/v1/centre/me").await.0,
        StatusCode::UNAUTHORIZED
    );

    // Logging out needs the CSRF token too, then the cookie is worthless.
    let mut no_csrf = me.clone();
    no_csrf.csrf = String::new();
    let (status, body) = c.post(&no_csrf, "/v1/centre/logout", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "csrf_failed");
    let (status, _) = c.post(&me, "/v1/centre/logout", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = c.get(&me, "/v1/centre/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn sessions_expire() {
    let c = Centre::start_with(|cfg| cfg.session_ttl = 1_000).await;
    let me = c.dispatcher("li", "k-1").await;
    assert_eq!(c.get(&me, "/v1/centre/me").await.0, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let (status, body) = c.get(&me, "/v1/centre/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "session_expired");
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_login_for_a_while() {
    let c = Centre::start_with(|cfg| cfg.login_max_failures = 3).await;
    c.create_staff("zhao", StaffRole::Supervisor, Some("c"), None);
    for _ in 0..3 {
        assert_eq!(
            c.login("zhao", "not the password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let resp = c.login("zhao", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "too_many_attempts");
}

#[tokio::test]
async fn csrf_token_and_origin_guard_every_post() {
    let c = Centre::start().await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    let me = c.dispatcher("wang", "k-1").await;
    let path = format!("/v1/centre/cases/{case}/chase");

    let mut wrong = me.clone();
    wrong.csrf = "0".repeat(64);
    let (status, body) = c.post(&wrong, &path, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "csrf_failed");

    // The right token from another site's page is still refused.
    let (status, body) = c
        .server
        .send(
            c.server
                .http
                .post(c.server.url(&path))
                .header("cookie", &me.cookie)
                .header("x-csrf-token", &me.csrf)
                .header("origin", "https://evil.example")
                .json(&json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "csrf_failed");
    // A login from another site too.
    let (status, _) = c
        .server
        .send(
            c.server
                .http
                .post(c.server.url("/v1/centre/login"))
                .header("origin", "https://evil.example")
                .json(&json!({"login": "wang", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Same origin, with the token in a form field, as an HTML form posts it.
    let origin = c.server.url.clone();
    let (status, body) = c
        .server
        .send(
            c.server
                .http
                .post(c.server.url(&path))
                .header("cookie", &me.cookie)
                .header("origin", origin)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("csrf_token={}&note=%E8%AF%B7%E5%8A%9E", me.csrf)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(c.stored(case).chase_count, 1);
    // Nothing was recorded by the refused ones.
    let (_, view) = c.case(&me, case).await;
    let chases = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "chase")
        .count();
    assert_eq!(chases, 1);
}

#[tokio::test]
async fn a_dispatcher_sees_only_their_county_and_a_handler_only_their_department() {
    let c = Centre::start().await;
    let leader1 = c.leader("一二网格长", &["g-1", "g-2"]).await;
    let leader3 = c.leader("三网格长", &["g-3"]).await;
    let a = c.report(&leader1, in_g1()).await;
    let b = c.report(&leader1, in_g2()).await;
    let x = c.report(&leader3, in_g3()).await;

    let k1 = c.dispatcher("k1", "k-1").await;
    let k2 = c.dispatcher("k2", "k-2").await;
    let city = c.dispatcher("city", "c").await;
    let sup1 = c.supervisor("sup1", "k-1").await;
    let municipal = c.handler("shizheng", &c.municipal).await;
    let housing = c.handler("zhujian", &c.housing).await;

    let mut in_k1 = vec![a.to_string(), b.to_string()];
    in_k1.sort();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(c.queue_ids(&k1, "").await), in_k1);
    assert_eq!(c.queue_ids(&k2, "").await, vec![x.to_string()]);
    assert_eq!(c.queue_ids(&city, "").await.len(), 3);
    assert_eq!(sorted(c.queue_ids(&sup1, "").await), in_k1);
    assert!(c.queue_ids(&municipal, "").await.is_empty());

    // Another county's case: not found, whether read or acted on.
    assert_eq!(c.case(&k1, x).await.0, StatusCode::NOT_FOUND);
    assert_eq!(c.case(&k2, a).await.0, StatusCode::NOT_FOUND);
    let (status, body) = c.act(&k2, a, "dispatch", dispatch_body(&c.housing)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = c.act(&k1, x, "chase", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(c.stored(x).chase_count, 0);

    // A handler sees a case once it is dispatched to their department.
    c.ok(&k1, a, "dispatch", dispatch_body(&c.municipal)).await;
    assert_eq!(c.queue_ids(&municipal, "").await, vec![a.to_string()]);
    assert!(c.queue_ids(&housing, "").await.is_empty());
    assert_eq!(c.case(&housing, a).await.0, StatusCode::NOT_FOUND);
    let (status, view) = c.case(&municipal, a).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["actions"], json!(["accept", "resolve"]));
    assert_eq!(c.case(&municipal, b).await.0, StatusCode::NOT_FOUND);

    // The supervisor reads, and may do nothing.
    let (_, view) = c.case(&sup1, a).await;
    assert_eq!(view["actions"], json!([]));
    for action in ["chase", "accept", "cancel"] {
        let (status, body) = c.act(&sup1, a, action, json!({"reason": "x"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}: {body}");
    }
}

#[tokio::test]
async fn each_role_may_only_take_its_own_steps() {
    let c = Centre::start().await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let a = c.report(&leader, in_g1()).await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let municipal = c.handler("shizheng", &c.municipal).await;
    let housing = c.handler("zhujian", &c.housing).await;

    let (_, view) = c.case(&k1, a).await;
    assert_eq!(
        view["actions"],
        json!(["dispatch", "chase", "cancel"]),
        "no centre above k-1 has a dispatcher to escalate to"
    );
    // A department of another county does not serve this case.
    let (status, body) = c.act(&k1, a, "dispatch", dispatch_body(&c.k2_water)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "department_id");
    let (status, body) = c
        .act(&k1, a, "dispatch", json!({"department_id": "no-such"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "department_id");

    c.ok(&k1, a, "dispatch", dispatch_body(&c.municipal)).await;
    // Handlers do not dispatch; dispatchers do not accept or resolve; the
    // other department does not touch it.
    let (status, _) = c
        .act(&municipal, a, "dispatch", dispatch_body(&c.housing))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for action in ["accept", "progress", "resolve"] {
        let (status, _) = c.act(&k1, a, action, json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}");
    }
    let (status, _) = c.act(&housing, a, "resolve", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = c.act(&municipal, a, "close", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The rules still decide the order: progress needs an accepted case.
    let (status, body) = c.act(&municipal, a, "progress", json!({"note": "x"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "not_allowed");
    c.ok(&municipal, a, "accept", json!({})).await;
    c.ok(&municipal, a, "progress", json!({"note": "已设置围挡"}))
        .await;
    let status = c
        .ok(&municipal, a, "resolve", json!({"note": "已修复"}))
        .await;
    assert_eq!(status["status"], "resolved");
}

#[tokio::test]
async fn bad_ids_and_unknown_actions_are_named() {
    let c = Centre::start().await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let (status, body) = c
        .post(&k1, "/v1/centre/cases/not-a-case/chase", json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "case_id");
    let id = gridcase_core::ids::CaseId::new();
    let (status, _) = c.act(&k1, id, "explode", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = c.act(&k1, id, "chase", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = c.get(&k1, "/v1/centre/cases?status=lost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "status");
    let (status, body) = c.get(&k1, "/v1/centre/cases?overdue=perhaps").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn admin_commands_create_departments_and_staff_for_scripts() {
    let c = Centre::start().await;
    let run = |args: &[&str], stdin: Option<&str>, env_password: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gridcase-server"));
        cmd.env("GRIDCASE_DATA_DIR", c.server.dir.path())
            .env_remove("GRIDCASE_STAFF_PASSWORD")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(p) = env_password {
            cmd.env("GRIDCASE_STAFF_PASSWORD", p);
        }
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    };
    let out = run(
        &[
            "admin",
            "create-department",
            "--name",
            "环保",
            "--unit",
            "k-2",
            "--json",
        ],
        None,
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dept: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dept_id = dept["id"].as_str().unwrap().to_string();

    let out = run(
        &[
            "admin",
            "create-staff",
            "--login",
            "huanbao",
            "--name",
            "环保 小李",
            "--role",
            "department",
            "--department",
            &dept_id,
            "--json",
        ],
        Some("a long enough password\n"),
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        c.login("huanbao", "a long enough password").await.status(),
        StatusCode::OK
    );
    let out = run(
        &[
            "admin",
            "create-staff",
            "--login",
            "k2",
            "--name",
            "调度员",
            "--role",
            "dispatcher",
            "--unit",
            "k-2",
        ],
        None,
        Some("another long password"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("staff "));
    assert_eq!(
        c.login("k2", "another long password").await.status(),
        StatusCode::OK
    );

    // Refusals name the field, and record nothing.
    let out = run(
        &[
            "admin",
            "create-staff",
            "--login",
            "x",
            "--name",
            "x",
            "--role",
            "dispatcher",
            "--unit",
            "nowhere",
        ],
        None,
        Some("a long enough password"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unit"));
    let out = run(
        &[
            "admin",
            "create-staff",
            "--login",
            "y",
            "--name",
            "y",
            "--role",
            "supervisor",
            "--unit",
            "c",
        ],
        None,
        Some("short"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));
    let staff = c.server.admin().list_staff().unwrap();
    assert_eq!(staff.len(), 2);
}

#[tokio::test]
async fn staff_get_the_part_of_the_map_they_work_in() {
    let c = Centre::start().await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let housing = c.handler("zhujian", &c.housing).await;
    let ids = |v: &serde_json::Value| -> Vec<String> {
        let mut ids: Vec<String> = v["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["properties"]["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let (status, map) = c.get(&k1, "/v1/centre/grids").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&map), ["c", "g-1", "g-2", "k-1", "t-1"]);
    let (_, map) = c.get(&housing, "/v1/centre/grids").await;
    assert_eq!(ids(&map).len(), 8, "a department serving everywhere");
}

#[tokio::test]
async fn a_new_password_ends_the_old_sessions_and_lifts_a_lockout() {
    let c = Centre::start_with(|cfg| cfg.login_max_failures = 2).await;
    let me = c.dispatcher("wang", "k-1").await;
    for _ in 0..2 {
        c.login("wang", "not the password").await;
    }
    assert_eq!(
        c.login("wang", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    c.server
        .admin()
        .reset_password("Wang", "a brand new password")
        .unwrap();
    assert_eq!(
        c.get(&me, "/v1/centre/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.login("wang", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.login("wang", "a brand new password").await.status(),
        StatusCode::OK
    );
    let err = c
        .server
        .admin()
        .reset_password("nobody", "a brand new password");
    assert_eq!(err.unwrap_err().field(), Some("login"));
}

/// The defaults, as a centre gets them without configuring anything: five
/// wrong passwords in a row lock the login for fifteen minutes, and a
/// success in between starts the count again.
#[tokio::test]
async fn the_lockout_defaults_are_five_tries_fifteen_minutes_and_a_success_resets_them() {
    let defaults = gridcase_server::centre::CentreConfig::default();
    assert_eq!(defaults.login_max_failures, 5);
    assert_eq!(defaults.login_lockout, 15 * gridcase_core::time::MINUTE);
    let c = Centre::start().await;
    c.create_staff("li", StaffRole::Supervisor, Some("c"), None);
    async fn wrong(c: &Centre) {
        assert_eq!(
            c.login("li", "not the password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Four wrong, then right: still let in, and the count starts over.
    for _ in 0..4 {
        wrong(&c).await;
    }
    assert_eq!(c.login("li", PASSWORD).await.status(), StatusCode::OK);
    for _ in 0..4 {
        wrong(&c).await;
    }
    assert_eq!(
        c.login("li", PASSWORD).await.status(),
        StatusCode::OK,
        "four after a success do not lock"
    );
    // Five in a row lock it, for fifteen minutes.
    for _ in 0..5 {
        wrong(&c).await;
    }
    let before = gridcase_core::time::now_millis();
    let resp = c.login("li", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "too_many_attempts");
    assert!(
        body["message"].as_str().unwrap().contains("15 minutes"),
        "{body}"
    );
    let db = rusqlite::Connection::open(c.server.dir.path().join("gridcase.db")).unwrap();
    let until: i64 = db
        .query_row(
            "SELECT locked_until FROM staff WHERE login = 'li'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let lockout = until - before;
    assert!(
        (14 * 60_000..=15 * 60_000).contains(&lockout),
        "locked for {lockout} ms"
    );
}

/// Behind https (the public address the server is configured with), the
/// session cookie is marked Secure, so a browser never sends it in the clear.
#[tokio::test]
async fn the_session_cookie_is_secure_over_https() {
    let c =
        Centre::start_with(|cfg| cfg.public_url = Some("https://centre.example.cn".into())).await;
    c.create_staff("zhou", StaffRole::Supervisor, Some("c"), None);
    let resp = c.login("zhou", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
}
